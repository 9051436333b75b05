package api

import "github.com/ringfence/ringfence/release"

// NewRelease is the body of POST .../releases.
type NewRelease struct {
	Version        release.Version `json:"version"`
	NotesURL       string          `json:"notes_url,omitempty"`
	RequiredStop   bool            `json:"required_stop,omitempty"`
	RollbackSafeTo release.Version `json:"rollback_safe_to,omitzero"`
	// Waives are the preflight findings the release repairs itself
	// (release.Waivers).
	Waives []string `json:"waives,omitempty"`
	// RequiresPostgres is the lowest PostgreSQL major version the release
	// runs on (0: any).
	RequiresPostgres int `json:"requires_postgres,omitempty"`
}

// Pause is the body of POST .../releases/{version}/pause.
type Pause struct {
	Reason      string `json:"reason"`
	IncidentURL string `json:"incident_url,omitempty"`
}

// Resume is the body of POST .../releases/{version}/resume.
type Resume struct {
	Reason string `json:"reason"`
}

// PullRequest is the body of POST .../releases/{version}/pull: why, the
// incident, and the guidance for installations already on the release.
type PullRequest struct {
	Reason      string          `json:"reason"`
	IncidentURL string          `json:"incident_url,omitempty"`
	Action      release.Action  `json:"action"`
	Target      release.Version `json:"target,omitzero"`
	// Incident is the id of the incident to link; 0 opens one.
	Incident int64 `json:"incident,omitempty"`
	// ForceReason accepts an upgrade target that has not passed its
	// product's gates (refused otherwise), saying why.
	ForceReason string `json:"force_reason,omitempty"`
}

// PulledRelease answers a pull: the release and the incident the pull
// linked or opened.
type PulledRelease struct {
	release.Release
	IncidentID int64 `json:"incident_id"`
	// IncidentOpened: the pull opened the incident (none was named).
	IncidentOpened bool `json:"incident_opened"`
}

// Promote is the body of POST .../releases/{version}/promote: the ring to
// force the release into, and why (required).
type Promote struct {
	Ring   string `json:"ring"`
	Reason string `json:"reason"`
}

// NewGateResult is the body of POST .../releases/{version}/gates: a gate's
// outcome and where to read it.
type NewGateResult struct {
	Name   string              `json:"name"`
	Status release.GateOutcome `json:"status"`
	URL    string              `json:"url,omitempty"`
}

// NewHold is the body of POST .../releases/{version}/holds.
type NewHold struct {
	Reason string `json:"reason"`
}

// HoldResolution is the body of POST .../holds/{id}/resolve.
type HoldResolution struct {
	Resolution string `json:"resolution"`
}
