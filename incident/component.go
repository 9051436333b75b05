package incident

import (
	"strings"
	"time"
)

// ComponentStatus is a component's current state, with Statuspage's values.
type ComponentStatus string

// Component statuses, as Statuspage names them.
const (
	Operational         ComponentStatus = "operational"
	DegradedPerformance ComponentStatus = "degraded_performance"
	PartialOutage       ComponentStatus = "partial_outage"
	MajorOutage         ComponentStatus = "major_outage"
	UnderMaintenance    ComponentStatus = "under_maintenance"
)

// componentStatuses lists the component statuses from best to worst (see
// Rank).
var componentStatuses = [...]ComponentStatus{Operational, UnderMaintenance, DegradedPerformance, PartialOutage, MajorOutage}

// ComponentStatuses returns every component status, best first.
func ComponentStatuses() []ComponentStatus {
	all := componentStatuses // a copy: callers cannot change the table
	return all[:]
}

// Valid reports whether s is a known status.
func (s ComponentStatus) Valid() bool { return s.Rank() >= 0 }

// Rank orders statuses from best (0, operational) to worst (4,
// major_outage); planned maintenance ranks just above operational, below
// any failure. -1 for unknown statuses.
func (s ComponentStatus) Rank() int {
	for i, c := range componentStatuses {
		if c == s {
			return i
		}
	}
	return -1
}

// Worst returns the worse of a and b by Rank.
func Worst(a, b ComponentStatus) ComponentStatus {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// joinNames lists values of a string type, comma-separated.
func joinNames[T ~string](values []T) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// ParseComponentStatus parses a status name; EINVALID lists the valid ones.
func ParseComponentStatus(s string) (ComponentStatus, error) {
	c := ComponentStatus(s)
	if !c.Valid() {
		return "", Errorf(EINVALID, "unknown component status %q: use one of %s", s, joinNames(componentStatuses[:]))
	}
	return c, nil
}

// Group is the upper level of the page's two-level component tree: a named
// set of components shown together. A group has no status of its own; the
// page shows the worst of its components'.
type Group struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Position    int       `json:"position"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Component is one part of the service customers see on the status page
// ("API", "Check-in endpoint"). It belongs to at most one group.
type Component struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// GroupID is the group's id, 0 for a top-level component.
	GroupID int64 `json:"group_id,omitempty"`
	// Group is the group's name, "" for a top-level component.
	Group    string          `json:"group,omitempty"`
	Position int             `json:"position"`
	Status   ComponentStatus `json:"status"`
	// OnlyShowIfDegraded hides the component from the page while it is
	// operational.
	OnlyShowIfDegraded bool      `json:"only_show_if_degraded"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// ValidateName checks a component or group name: 1 to 200 bytes of printable
// text without leading or trailing spaces and without '=' (the CLI writes
// NAME=STATUS). kind names the thing in the error.
func ValidateName(kind, name string) error {
	if err := validateText(kind+" name", name, true, maxTitleLen); err != nil {
		return err
	}
	if strings.TrimSpace(name) != name {
		return Errorf(EINVALID, "%s name %q has leading or trailing spaces", kind, name)
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f || r == '=' {
			return Errorf(EINVALID, "%s name %q may not hold control characters or '='", kind, name)
		}
	}
	return nil
}

// Validate checks the fields a caller sets on a component.
func (c Component) Validate() error {
	if err := ValidateName("component", c.Name); err != nil {
		return err
	}
	if c.Group != "" {
		if err := ValidateName("group", c.Group); err != nil {
			return err
		}
	}
	if err := validateText("component description", c.Description, false, maxBodyLen); err != nil {
		return err
	}
	if !c.Status.Valid() {
		return Errorf(EINVALID, "component %s: unknown status %q", c.Name, c.Status)
	}
	return nil
}

// ComponentChange is one component's status change within an update: what
// it was and what the update made it.
type ComponentChange struct {
	ComponentID int64           `json:"component_id"`
	Name        string          `json:"name"`
	OldStatus   ComponentStatus `json:"old_status"`
	NewStatus   ComponentStatus `json:"new_status"`
}

// StatusChange is one entry of a component's status history: from At on, it
// had Status (until its next change).
type StatusChange struct {
	ComponentID int64           `json:"component_id"`
	Status      ComponentStatus `json:"status"`
	At          time.Time       `json:"at"`
}
