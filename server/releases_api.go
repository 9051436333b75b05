package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// The admin API of releases: create, pause, resume, pull (with its incident
// and the upgrade target's gates), promote, gates, holds and the product's
// status.

func (s *Server) listReleases(r *http.Request, _ release.Token) ([]release.Release, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListReleases(r.Context(), product)
}

func (s *Server) createRelease(r *http.Request, who release.Token, req api.NewRelease) (release.Release, error) {
	return s.store.CreateRelease(r.Context(), who.Actor(), release.Release{Product: r.PathValue("product"), Version: req.Version,
		NotesURL: req.NotesURL, RequiredStop: req.RequiredStop, RollbackSafeTo: req.RollbackSafeTo, Waives: req.Waives,
		RequiresPostgres: req.RequiresPostgres})
}

func (s *Server) getRelease(r *http.Request, _ release.Token) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.GetRelease(r.Context(), r.PathValue("product"), v)
}

// changeRelease applies a status transition to the release in the path,
// recording action with reason in the audit log.
func (s *Server) changeRelease(r *http.Request, who release.Token, action, reason string,
	change func(rel *release.Release, others []release.Release) error) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.ChangeRelease(r.Context(), who.Actor(), action, reason, r.PathValue("product"), v, change)
}

func (s *Server) pauseRelease(r *http.Request, who release.Token, req api.Pause) (release.Release, error) {
	return s.changeRelease(r, who, "release.pause", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Pause(who.Actor(), req.Reason, req.IncidentURL, storeTime())
	})
}

func (s *Server) resumeRelease(r *http.Request, who release.Token, req api.Resume) (release.Release, error) {
	return s.changeRelease(r, who, "release.resume", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Resume()
	})
}

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
	return api.PulledRelease{Release: out.Release, IncidentID: out.IncidentID, IncidentOpened: out.IncidentOpened}, err
}

// checkUpgradeTarget refuses a pull whose upgrade target has not passed
// its product's gates, unless the request forces it with a reason: a pull
// offers its target to every installation on the pulled release at once,
// past the rings.
func (s *Server) checkUpgradeTarget(r *http.Request, req api.PullRequest) error {
	if req.Action != release.ActionUpgrade || strings.TrimSpace(req.ForceReason) != "" {
		return nil
	}
	product := r.PathValue("product")
	if _, err := s.store.GetRelease(r.Context(), product, req.Target); release.ErrorCode(err) == release.ENOTFOUND {
		return nil // the pull itself says the target does not exist
	} else if err != nil {
		return err
	}
	p, err := s.store.GetProduct(r.Context(), product)
	if err != nil {
		return err
	}
	results, err := s.store.ListGateResults(r.Context(), product, req.Target)
	if err != nil {
		return err
	}
	if missing := release.GatesNotPassed(p, results); len(missing) > 0 {
		return release.Errorf(release.ECONFLICT, "upgrade target %s@%s has not passed the gates of %s (%s): pass them first, or force it with a reason (force_reason)",
			product, req.Target, product, strings.Join(missing, ", "))
	}
	return nil
}

func (s *Server) promoteRelease(r *http.Request, who release.Token, req api.Promote) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.ForcePromote(r.Context(), r.PathValue("product"), v, who.Role, req.Ring, who.Actor(), req.Reason)
}

func (s *Server) listGates(r *http.Request, _ release.Token) ([]release.GateResult, error) {
	v, err := s.existingRelease(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListGateResults(r.Context(), r.PathValue("product"), v)
}

func (s *Server) postGate(r *http.Request, who release.Token, req api.NewGateResult) (release.GateResult, error) {
	v, err := version(r)
	if err != nil {
		return release.GateResult{}, err
	}
	return s.store.PostGateResult(r.Context(), release.GateResult{Product: r.PathValue("product"), Version: v,
		Name: req.Name, Status: req.Status, URL: req.URL, PostedBy: who.Actor()})
}

func (s *Server) listHolds(r *http.Request, _ release.Token) ([]release.Hold, error) {
	v, err := s.existingRelease(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListHolds(r.Context(), r.PathValue("product"), v)
}

func (s *Server) raiseHold(r *http.Request, who release.Token, req api.NewHold) (release.Hold, error) {
	v, err := version(r)
	if err != nil {
		return release.Hold{}, err
	}
	return s.store.RaiseHold(r.Context(), release.Hold{Product: r.PathValue("product"), Version: v, Reason: req.Reason, RaisedBy: who.Actor()})
}

func (s *Server) resolveHold(r *http.Request, who release.Token, req api.HoldResolution) (release.Hold, error) {
	return s.store.ResolveHold(r.Context(), r.PathValue("product"), r.PathValue("id"), who.Actor(), req.Resolution)
}

func (s *Server) status(r *http.Request, _ release.Token) (api.Status, error) {
	product := r.PathValue("product")
	st, err := s.state.Load().snap.Status(product)
	if err != nil {
		return api.Status{}, err
	}
	// Newest first, as people read it.
	for i, j := 0, len(st)-1; i < j; i, j = i+1, j-1 {
		st[i], st[j] = st[j], st[i]
	}
	if st == nil {
		st = []release.ReleaseStatus{}
	}
	quotas := s.quotas.usage(product, s.state.Load().keyCustomers(), time.Now())
	return api.Status{Product: product, Releases: st, Quotas: quotas}, nil
}
