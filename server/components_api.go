package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// The admin API of the status page's components.

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

// changesOf converts an API body's component statuses to the domain's
// changes.
func changesOf(cs []api.ComponentStatus) []incident.ComponentChange {
	out := make([]incident.ComponentChange, len(cs))
	for i, c := range cs {
		out[i] = incident.ComponentChange{Name: c.Name, NewStatus: c.Status}
	}
	return out
}
