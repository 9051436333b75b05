package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// The admin API of incidents, their templates and the severity
// configuration (role incident writes, viewer reads). Every change goes
// through one store method that writes its audit entry and its subscriber
// notification in the same transaction.

// orTrue reads an optional flag that defaults to true.
func orTrue(b *bool) bool { return b == nil || *b }

func (s *Server) listIncidents(r *http.Request, _ release.Token) ([]incident.Incident, error) {
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		return nil, err
	}
	return s.store.ListIncidents(r.Context(), r.URL.Query().Get("unresolved") == "true", limit)
}

// incidentID parses the {id} path value: an incident id, or "latest" for the
// newest unresolved incident.
func (s *Server) incidentID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	if v == "latest" {
		return s.store.LatestIncidentID(r.Context())
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, release.Errorf(release.EINVALID, "incident id %q: use a positive integer or latest", v)
	}
	return id, nil
}

func (s *Server) getIncident(r *http.Request, _ release.Token) (incident.Incident, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.Incident{}, err
	}
	return s.store.GetIncident(r.Context(), id)
}

func (s *Server) declareIncident(r *http.Request, who release.Token, req api.Declaration) (api.Declared, error) {
	d := incident.Declaration{Title: req.Title, Impact: req.Impact, Severity: req.Severity, Status: req.Status, Message: req.Message,
		Components: changesOf(req.Components), Draft: req.Draft, Notify: orTrue(req.Notify)}
	if req.Template != "" {
		t, err := s.store.GetTemplate(r.Context(), req.Template)
		if err != nil {
			return api.Declared{}, err
		}
		d = t.Fill(d)
	}
	if d.Status == "" {
		d.Status = incident.StatusInvestigating
	}
	var err error
	if d.Releases, err = releaseRefs(req.Releases); err != nil {
		return api.Declared{}, err
	}
	out, err := s.store.DeclareIncident(r.Context(), who.Actor(), d)
	return api.Declared{Incident: out.Incident, PausedReleases: out.PausedReleases}, err
}

// releaseRefs parses "product@version" strings.
func releaseRefs(refs []string) ([]incident.ReleaseRef, error) {
	var out []incident.ReleaseRef
	for _, ref := range refs {
		rr, err := incident.ParseReleaseRef(ref)
		if err != nil {
			return nil, err
		}
		out = append(out, rr)
	}
	return out, nil
}

func (s *Server) updateIncident(r *http.Request, who release.Token, req api.IncidentUpdate) (incident.Incident, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.Incident{}, err
	}
	refs, err := releaseRefs(req.Releases)
	if err != nil {
		return incident.Incident{}, err
	}
	return s.store.UpdateIncident(r.Context(), who.Actor(), id, incident.Change{Status: req.Status, Message: req.Message,
		Impact: req.Impact, Severity: req.Severity, Components: changesOf(req.Components), Releases: refs, Notify: orTrue(req.Notify)})
}

func (s *Server) resolveIncident(r *http.Request, who release.Token, req api.Resolution) (incident.Incident, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.Incident{}, err
	}
	return s.store.UpdateIncident(r.Context(), who.Actor(), id, incident.Change{Status: incident.StatusResolved, Message: req.Message,
		Components: changesOf(req.Components), Notify: orTrue(req.Notify)})
}

func (s *Server) publishIncident(r *http.Request, who release.Token, _ api.Empty) (incident.Incident, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.Incident{}, err
	}
	return s.store.PublishIncident(r.Context(), who.Actor(), id)
}

func (s *Server) setPostmortem(r *http.Request, who release.Token, req api.Postmortem) (incident.Incident, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.Incident{}, err
	}
	return s.store.SetPostmortem(r.Context(), who.Actor(), id, req.Postmortem)
}

// assignRole makes someone the holder of a role in the response to an
// incident; staff-only, so the status page is not re-rendered.
func (s *Server) assignRole(r *http.Request, who release.Token, req api.RoleHolder) (incident.Incident, error) {
	id, role, err := s.incidentRole(r)
	if err != nil {
		return incident.Incident{}, err
	}
	if strings.TrimSpace(req.Who) == "" {
		return incident.Incident{}, release.Errorf(release.EINVALID, "who is required (DELETE the role to leave it unassigned)")
	}
	return s.store.AssignRole(r.Context(), who.Actor(), id, role, req.Who)
}

// unassignRole leaves a role of an incident unassigned.
func (s *Server) unassignRole(r *http.Request, who release.Token) error {
	id, role, err := s.incidentRole(r)
	if err != nil {
		return err
	}
	_, err = s.store.AssignRole(r.Context(), who.Actor(), id, role, "")
	return err
}

// incidentRole reads the incident id and the role from the path.
func (s *Server) incidentRole(r *http.Request) (int64, incident.Role, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return 0, "", err
	}
	role, err := incident.ParseRole(r.PathValue("role"))
	return id, role, err
}

func (s *Server) listTemplates(r *http.Request, _ release.Token) ([]incident.Template, error) {
	return s.store.ListTemplates(r.Context())
}

func (s *Server) saveTemplate(r *http.Request, who release.Token, t incident.Template) (incident.Template, error) {
	name := r.PathValue("name")
	if t.Name != "" && t.Name != name {
		return incident.Template{}, release.Errorf(release.EINVALID, "template body names %q, the path %q", t.Name, name)
	}
	t.Name = name
	return s.store.SaveTemplate(r.Context(), who.Actor(), t)
}

func (s *Server) incidentConfig(r *http.Request, _ release.Token) (incident.Config, error) {
	return s.store.IncidentConfig(r.Context())
}

func (s *Server) setIncidentConfig(r *http.Request, who release.Token, c incident.Config) (incident.Config, error) {
	return s.store.SetIncidentConfig(r.Context(), who.Actor(), c)
}
