package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// Components lists the status page's components in page order.
func (c *Client) Components(ctx context.Context) ([]incident.Component, error) {
	var out []incident.Component
	return out, c.do(ctx, http.MethodGet, "/api/v1/components", nil, nil, &out)
}

// CreateComponent adds a component (incident role).
func (c *Client) CreateComponent(ctx context.Context, nc NewComponent) (incident.Component, error) {
	var out incident.Component
	return out, c.do(ctx, http.MethodPost, "/api/v1/components", nil, nc, &out)
}

// UpdateComponent renames, describes, regroups or moves a component
// (incident role).
func (c *Client) UpdateComponent(ctx context.Context, name string, p ComponentPatch) (incident.Component, error) {
	var out incident.Component
	return out, c.do(ctx, http.MethodPatch, "/api/v1/components/"+esc(name), nil, p, &out)
}

// SetComponentStatus sets a component's status outside any incident
// (incident role); reason goes to the audit log.
func (c *Client) SetComponentStatus(ctx context.Context, name string, status incident.ComponentStatus, reason string) (incident.Component, error) {
	var out incident.Component
	return out, c.do(ctx, http.MethodPost, "/api/v1/components/"+esc(name)+"/status", nil,
		api.ComponentStatusChange{Status: status, Reason: reason}, &out)
}

// DeclareIncident opens an incident (incident role).
func (c *Client) DeclareIncident(ctx context.Context, d Declaration) (Declared, error) {
	var out Declared
	return out, c.do(ctx, http.MethodPost, "/api/v1/incidents", nil, d, &out)
}

// Incidents lists up to limit incidents, newest first (limit <= 0: the
// server's default); unresolved keeps the open ones.
func (c *Client) Incidents(ctx context.Context, unresolved bool, limit int) ([]incident.Incident, error) {
	var out []incident.Incident
	return out, c.do(ctx, http.MethodGet, "/api/v1/incidents", listQuery(limit, "unresolved", onlyTrue(unresolved)), nil, &out)
}

// Incident returns one incident; id may be "latest" (newest unresolved).
func (c *Client) Incident(ctx context.Context, id string) (incident.Incident, error) {
	var out incident.Incident
	return out, c.do(ctx, http.MethodGet, "/api/v1/incidents/"+esc(id), nil, nil, &out)
}

// UpdateIncident posts an update to incident id ("latest" allowed).
func (c *Client) UpdateIncident(ctx context.Context, id string, u IncidentUpdate) (incident.Incident, error) {
	var out incident.Incident
	return out, c.do(ctx, http.MethodPost, "/api/v1/incidents/"+esc(id)+"/updates", nil, u, &out)
}

// ResolveIncident resolves incident id ("latest" allowed) with a final
// message; u.Status is ignored.
func (c *Client) ResolveIncident(ctx context.Context, id string, u IncidentUpdate) (incident.Incident, error) {
	var out incident.Incident
	body := api.Resolution{Message: u.Message, Components: u.Components, Notify: u.Notify}
	return out, c.do(ctx, http.MethodPost, "/api/v1/incidents/"+esc(id)+"/resolve", nil, body, &out)
}

// PublishIncident makes a draft incident public.
func (c *Client) PublishIncident(ctx context.Context, id string) (incident.Incident, error) {
	var out incident.Incident
	return out, c.do(ctx, http.MethodPost, "/api/v1/incidents/"+esc(id)+"/publish", nil, api.Empty{}, &out)
}

// SetPostmortem records the postmortem of a resolved incident.
func (c *Client) SetPostmortem(ctx context.Context, id, text string) (incident.Incident, error) {
	var out incident.Incident
	return out, c.do(ctx, http.MethodPut, "/api/v1/incidents/"+esc(id)+"/postmortem", nil, api.Postmortem{Postmortem: text}, &out)
}

// AssignRole makes who the holder of role in the response to incident id.
func (c *Client) AssignRole(ctx context.Context, id string, role incident.Role, who string) (incident.Incident, error) {
	var out incident.Incident
	return out, c.do(ctx, http.MethodPut, "/api/v1/incidents/"+esc(id)+"/roles/"+esc(string(role)), nil, api.RoleHolder{Who: who}, &out)
}

// UnassignRole leaves role of incident id unassigned.
func (c *Client) UnassignRole(ctx context.Context, id string, role incident.Role) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/incidents/"+esc(id)+"/roles/"+esc(string(role)), nil, nil, nil)
}

// Templates lists the incident templates.
func (c *Client) Templates(ctx context.Context) ([]incident.Template, error) {
	var out []incident.Template
	return out, c.do(ctx, http.MethodGet, "/api/v1/incident-templates", nil, nil, &out)
}

// SaveTemplate creates or replaces a template (incident role).
func (c *Client) SaveTemplate(ctx context.Context, t incident.Template) (incident.Template, error) {
	var out incident.Template
	return out, c.do(ctx, http.MethodPut, "/api/v1/incident-templates/"+esc(t.Name), nil, t, &out)
}

// IncidentConfig returns the severity levels and policy in force.
func (c *Client) IncidentConfig(ctx context.Context) (incident.Config, error) {
	var out incident.Config
	return out, c.do(ctx, http.MethodGet, "/api/v1/incident-config", nil, nil, &out)
}

// SetIncidentConfig replaces the severity levels and policy (admin).
func (c *Client) SetIncidentConfig(ctx context.Context, cfg incident.Config) (incident.Config, error) {
	var out incident.Config
	return out, c.do(ctx, http.MethodPut, "/api/v1/incident-config", nil, cfg, &out)
}

// ScheduleMaintenance announces a maintenance (incident role).
func (c *Client) ScheduleMaintenance(ctx context.Context, m NewMaintenance) (incident.Maintenance, error) {
	var out incident.Maintenance
	return out, c.do(ctx, http.MethodPost, "/api/v1/maintenances", nil, m, &out)
}

// Maintenances lists up to limit maintenances, newest start first; pending
// keeps those not yet ended.
func (c *Client) Maintenances(ctx context.Context, pending bool, limit int) ([]incident.Maintenance, error) {
	var out []incident.Maintenance
	return out, c.do(ctx, http.MethodGet, "/api/v1/maintenances", listQuery(limit, "pending", onlyTrue(pending)), nil, &out)
}

// Maintenance returns one maintenance with its timeline.
func (c *Client) Maintenance(ctx context.Context, id int64) (incident.Maintenance, error) {
	var out incident.Maintenance
	return out, c.do(ctx, http.MethodGet, "/api/v1/maintenances/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// MoveMaintenance moves maintenance id to status (cancelled, in_progress,
// verifying, completed) with an optional message.
func (c *Client) MoveMaintenance(ctx context.Context, id int64, status incident.MaintenanceStatus, message string) (incident.Maintenance, error) {
	var out incident.Maintenance
	return out, c.do(ctx, http.MethodPost, "/api/v1/maintenances/"+strconv.FormatInt(id, 10)+"/status", nil,
		api.MaintenanceStatusChange{Status: status, Message: message}, &out)
}

// PullReleaseWithIncident pulls a release like PullRelease and reports the
// incident it linked (p.Incident) or opened.
func (c *Client) PullReleaseWithIncident(ctx context.Context, product string, v release.Version, p PullRequest) (PulledRelease, error) {
	var out PulledRelease
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/pull", nil, p, &out)
}
