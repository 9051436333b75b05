package api

import (
	"time"

	"github.com/ringfence/ringfence/incident"
)

// NewComponent is the body of POST /api/v1/components: a component of the
// status page (its group is created if new).
type NewComponent struct {
	Name               string                   `json:"name"`
	Group              string                   `json:"group,omitempty"`
	Description        string                   `json:"description,omitempty"`
	Status             incident.ComponentStatus `json:"status,omitempty"`
	OnlyShowIfDegraded bool                     `json:"only_show_if_degraded,omitempty"`
}

// ComponentPatch is the body of PATCH /api/v1/components/{name}: it changes
// the fields it sets; an empty Group moves the component to the top level.
type ComponentPatch struct {
	Name               *string `json:"name,omitempty"`
	Group              *string `json:"group,omitempty"`
	Description        *string `json:"description,omitempty"`
	Position           *int    `json:"position,omitempty"`
	OnlyShowIfDegraded *bool   `json:"only_show_if_degraded,omitempty"`
}

// ComponentStatusChange is the body of POST /api/v1/components/{name}/status:
// a status set outside any incident, and why (for the audit log).
type ComponentStatusChange struct {
	Status incident.ComponentStatus `json:"status"`
	Reason string                   `json:"reason"`
}

// ComponentStatus names a component and the status an incident sets.
type ComponentStatus struct {
	Name   string                   `json:"name"`
	Status incident.ComponentStatus `json:"status"`
}

// Declaration is the body of POST /api/v1/incidents. Template names a
// template that fills the fields left empty; Notify nil means true.
type Declaration struct {
	Title      string            `json:"title"`
	Template   string            `json:"template,omitempty"`
	Impact     incident.Impact   `json:"impact,omitempty"`
	Severity   incident.Severity `json:"severity,omitempty"`
	Status     incident.Status   `json:"status,omitempty"`
	Message    string            `json:"message,omitempty"`
	Components []ComponentStatus `json:"components,omitempty"`
	// Releases are product@version.
	Releases []string `json:"releases,omitempty"`
	Draft    bool     `json:"draft,omitempty"`
	Notify   *bool    `json:"notify,omitempty"`
}

// Declared answers a declaration: the incident and the releases its
// severity paused.
type Declared struct {
	incident.Incident
	PausedReleases []string `json:"paused_releases"`
}

// IncidentUpdate is the body of POST /api/v1/incidents/{id}/updates;
// Notify nil means true.
type IncidentUpdate struct {
	Status     incident.Status   `json:"status,omitempty"`
	Message    string            `json:"message"`
	Impact     incident.Impact   `json:"impact,omitempty"`
	Severity   incident.Severity `json:"severity,omitempty"`
	Components []ComponentStatus `json:"components,omitempty"`
	// Releases (product@version) the incident now also concerns.
	Releases []string `json:"releases,omitempty"`
	Notify   *bool    `json:"notify,omitempty"`
}

// Resolution is the body of POST /api/v1/incidents/{id}/resolve: the final
// message; Notify nil means true.
type Resolution struct {
	Message    string            `json:"message"`
	Components []ComponentStatus `json:"components,omitempty"`
	Notify     *bool             `json:"notify,omitempty"`
}

// Postmortem is the body of PUT /api/v1/incidents/{id}/postmortem.
type Postmortem struct {
	Postmortem string `json:"postmortem"`
}

// RoleHolder is the body of PUT /api/v1/incidents/{id}/roles/{role}: who
// holds the role from now on (a name or a handle; free text).
type RoleHolder struct {
	Who string `json:"who"`
}

// NewMaintenance is the body of POST /api/v1/maintenances.
type NewMaintenance struct {
	Title      string    `json:"title"`
	Message    string    `json:"message"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Components []string  `json:"components,omitempty"`
}

// MaintenanceStatusChange is the body of POST
// /api/v1/maintenances/{id}/status: where the maintenance moves, with an
// optional message.
type MaintenanceStatusChange struct {
	Status  incident.MaintenanceStatus `json:"status"`
	Message string                     `json:"message"`
}

// NewSubscriber is the body of POST /api/v1/subscribers: a webhook (with
// its Standard Webhooks secret, or one is generated) or an email address
// (sent an opt-in link first), scoped to components by name (none:
// everything).
type NewSubscriber struct {
	Webhook    string   `json:"webhook,omitempty"`
	Secret     string   `json:"secret,omitempty"`
	Email      string   `json:"email,omitempty"`
	Components []string `json:"components,omitempty"`
}

// CreatedSubscriber answers a subscriber's creation: a webhook's signing
// secret is shown only now (email subscribers have none).
type CreatedSubscriber struct {
	incident.Subscriber
	Secret string `json:"secret,omitempty"`
}

// Replayed answers POST /api/v1/deliveries/{id}/replay.
type Replayed struct {
	ID    int64                  `json:"id"`
	State incident.DeliveryState `json:"state"`
}
