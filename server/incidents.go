package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// This file is the admin API of incidents, components, maintenance,
// templates and the severity configuration (role incident writes, viewer
// reads), and the maintenance scheduler. Every change goes through one store
// method that writes its audit entry and its subscriber notification in the
// same transaction.

// incidentRoutes are the incident routes of the route table.
func (s *Server) incidentRoutes() []Route {
	const (
		viewer = release.RoleViewer
		inc    = release.RoleIncident
		admin  = release.RoleAdmin
	)
	return []Route{
		{"GET", "/api/v1/components", viewer, incidentErrs(reply(s.listComponents))},
		{"POST", "/api/v1/components", inc, incidentErrs(apply(http.StatusCreated, nil, s.createComponent))},
		{"PATCH", "/api/v1/components/{name}", inc, incidentErrs(apply(http.StatusOK, nil, s.updateComponent))},
		{"POST", "/api/v1/components/{name}/status", inc, incidentErrs(apply(http.StatusOK, nil, s.setComponentStatus))},
		{"GET", "/api/v1/incidents", viewer, incidentErrs(reply(s.listIncidents))},
		{"POST", "/api/v1/incidents", inc, incidentErrs(create(s, s.declareIncident))},
		{"GET", "/api/v1/incidents/{id}", viewer, incidentErrs(reply(s.getIncident))},
		// An update may raise the severity and so pause releases: the snapshot is rebuilt before answering.
		{"POST", "/api/v1/incidents/{id}/updates", inc, incidentErrs(create(s, s.updateIncident))},
		{"POST", "/api/v1/incidents/{id}/resolve", inc, incidentErrs(apply(http.StatusOK, nil, s.resolveIncident))},
		{"POST", "/api/v1/incidents/{id}/publish", inc, incidentErrs(apply(http.StatusOK, nil, s.publishIncident))},
		{"PUT", "/api/v1/incidents/{id}/postmortem", inc, incidentErrs(apply(http.StatusOK, nil, s.setPostmortem))},
		{"GET", "/api/v1/incident-templates", viewer, incidentErrs(reply(s.listTemplates))},
		{"PUT", "/api/v1/incident-templates/{name}", inc, incidentErrs(apply(http.StatusOK, nil, s.saveTemplate))},
		{"GET", "/api/v1/incident-config", viewer, incidentErrs(reply(s.incidentConfig))},
		{"PUT", "/api/v1/incident-config", admin, incidentErrs(apply(http.StatusOK, nil, s.setIncidentConfig))},
		{"GET", "/api/v1/maintenances", viewer, incidentErrs(reply(s.listMaintenances))},
		{"POST", "/api/v1/maintenances", inc, incidentErrs(apply(http.StatusCreated, nil, s.scheduleMaintenance))},
		{"GET", "/api/v1/maintenances/{id}", viewer, incidentErrs(reply(s.getMaintenance))},
		{"POST", "/api/v1/maintenances/{id}/status", inc, incidentErrs(apply(http.StatusOK, nil, s.moveMaintenance))},
	}
}

// incidentErrs turns the incident package's domain errors into release's
// (the codes are the same), which the server answers as problems.
func incidentErrs(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, who release.Token) error {
		err := h(w, r, who)
		var ie *incident.Error
		if errors.As(err, &ie) && ie.Code != incident.EINTERNAL {
			return &release.Error{Code: ie.Code, Message: ie.Message}
		}
		return err
	}
}

// --- request bodies ---

// changesOf converts an API body's component statuses to the domain's
// changes.
func changesOf(cs []api.ComponentStatus) []incident.ComponentChange {
	out := make([]incident.ComponentChange, len(cs))
	for i, c := range cs {
		out[i] = incident.ComponentChange{Name: c.Name, NewStatus: c.Status}
	}
	return out
}

// orTrue reads an optional flag that defaults to true.
func orTrue(b *bool) bool { return b == nil || *b }

// --- handlers ---

func (s *Server) listComponents(r *http.Request, _ release.Token) ([]incident.Component, error) {
	return s.store.ListComponents(r.Context())
}

func (s *Server) createComponent(r *http.Request, who release.Token, req api.NewComponent) (incident.Component, error) {
	return s.store.CreateComponent(r.Context(), who.Actor(), incident.Component{Name: req.Name, Group: req.Group,
		Description: req.Description, Status: req.Status, OnlyShowIfDegraded: req.OnlyShowIfDegraded})
}

func (s *Server) updateComponent(r *http.Request, who release.Token, req api.ComponentPatch) (incident.Component, error) {
	return s.store.UpdateComponent(r.Context(), who.Actor(), r.PathValue("name"), func(c *incident.Component) error {
		set(&c.Name, req.Name)
		set(&c.Group, req.Group)
		set(&c.Description, req.Description)
		set(&c.Position, req.Position)
		set(&c.OnlyShowIfDegraded, req.OnlyShowIfDegraded)
		return nil
	})
}

// set copies *v into *dst when v is not nil (a field a patch sets).
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) setComponentStatus(r *http.Request, who release.Token, req api.ComponentStatusChange) (incident.Component, error) {
	return s.store.SetComponentStatus(r.Context(), who.Actor(), r.PathValue("name"), req.Status, req.Reason)
}

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

func (s *Server) listMaintenances(r *http.Request, _ release.Token) ([]incident.Maintenance, error) {
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		return nil, err
	}
	return s.store.ListMaintenances(r.Context(), r.URL.Query().Get("pending") == "true", limit)
}

// maintenanceID parses the {id} path value.
func maintenanceID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, release.Errorf(release.EINVALID, "maintenance id %q: use a positive integer", r.PathValue("id"))
	}
	return id, nil
}

func (s *Server) getMaintenance(r *http.Request, _ release.Token) (incident.Maintenance, error) {
	id, err := maintenanceID(r)
	if err != nil {
		return incident.Maintenance{}, err
	}
	return s.store.GetMaintenance(r.Context(), id)
}

func (s *Server) scheduleMaintenance(r *http.Request, who release.Token, req api.NewMaintenance) (incident.Maintenance, error) {
	return s.store.ScheduleMaintenance(r.Context(), who.Actor(), req.Title, req.Message, req.Start, req.End, req.Components)
}

func (s *Server) moveMaintenance(r *http.Request, who release.Token, req api.MaintenanceStatusChange) (incident.Maintenance, error) {
	id, err := maintenanceID(r)
	if err != nil {
		return incident.Maintenance{}, err
	}
	return s.store.MoveMaintenance(r.Context(), who.Actor(), id, req.Status, req.Message)
}

// --- release ties ---

// pullRelease pulls the release in the path and links the incident the body
// names, or opens one (see sqlstore.PullRelease).
func (s *Server) pullRelease(r *http.Request, who release.Token, req api.PullRequest) (api.PulledRelease, error) {
	v, err := version(r)
	if err != nil {
		return api.PulledRelease{}, err
	}
	if err := s.checkUpgradeTarget(r, req); err != nil {
		return api.PulledRelease{}, err
	}
	p := release.Pull{Reason: req.Reason, IncidentURL: req.IncidentURL, Action: req.Action, Target: req.Target, By: who.Actor(),
		ForcedPastGates: req.ForceReason}
	out, err := s.store.PullRelease(r.Context(), who.Actor(), r.PathValue("product"), v, p, req.Incident)
	var ie *incident.Error
	if errors.As(err, &ie) {
		err = &release.Error{Code: ie.Code, Message: ie.Message}
	}
	return api.PulledRelease{Release: out.Release, IncidentID: out.IncidentID, IncidentOpened: out.IncidentOpened}, err
}

// --- maintenance scheduler ---

// maintenanceLoop makes the transitions scheduled maintenance owes — start
// at the window's start, completion at its end — at start (so a window that
// began or ended while no server ran is caught up) and every
// MaintenanceInterval. Several servers may run it at once: the store's
// conditional updates let exactly one make each transition.
func (s *Server) maintenanceLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		n, err := s.store.RunMaintenanceSchedule(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("run the maintenance schedule", slog.Any("err", err))
		case n > 0:
			s.log.Info("moved maintenance on schedule", slog.Int("transitions", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
