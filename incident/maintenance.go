package incident

import "time"

// MaintenanceStatus is where a scheduled maintenance stands: scheduled →
// in_progress → verifying → completed, or scheduled → cancelled
// (Statuspage's values, plus cancelled, which Statuspage expresses by
// deleting).
type MaintenanceStatus string

// Maintenance statuses.
const (
	MaintenanceScheduled  MaintenanceStatus = "scheduled"
	MaintenanceInProgress MaintenanceStatus = "in_progress"
	MaintenanceVerifying  MaintenanceStatus = "verifying"
	MaintenanceCompleted  MaintenanceStatus = "completed"
	MaintenanceCancelled  MaintenanceStatus = "cancelled"
)

// Valid reports whether s is a known status.
func (s MaintenanceStatus) Valid() bool {
	switch s {
	case MaintenanceScheduled, MaintenanceInProgress, MaintenanceVerifying, MaintenanceCompleted, MaintenanceCancelled:
		return true
	}
	return false
}

// Active reports whether the maintenance is under way (in_progress or
// verifying).
func (s MaintenanceStatus) Active() bool {
	return s == MaintenanceInProgress || s == MaintenanceVerifying
}

// Ended reports whether s is terminal (completed or cancelled).
func (s MaintenanceStatus) Ended() bool {
	return s == MaintenanceCompleted || s == MaintenanceCancelled
}

// CanBecome checks a maintenance transition: scheduled → in_progress or
// cancelled; in_progress → verifying or completed; verifying → in_progress
// (verification failed) or completed. Completed and cancelled are terminal.
// Illegal moves are ECONFLICT.
func (s MaintenanceStatus) CanBecome(next MaintenanceStatus) error {
	if !next.Valid() {
		return Errorf(EINVALID, "unknown maintenance status %q", next)
	}
	ok := false
	switch s {
	case MaintenanceScheduled:
		ok = next == MaintenanceInProgress || next == MaintenanceCancelled
	case MaintenanceInProgress:
		ok = next == MaintenanceVerifying || next == MaintenanceCompleted
	case MaintenanceVerifying:
		ok = next == MaintenanceInProgress || next == MaintenanceCompleted
	}
	if !ok {
		return Errorf(ECONFLICT, "maintenance cannot move from %s to %s", s, next)
	}
	return nil
}

// MaintenanceUpdate is one entry of a maintenance's timeline.
type MaintenanceUpdate struct {
	ID            int64             `json:"id"`
	MaintenanceID int64             `json:"maintenance_id"`
	Status        MaintenanceStatus `json:"status"`
	Body          string            `json:"body"`
	// Components are the status changes the transition made (components
	// go under_maintenance at the start and back to operational at the end).
	Components []ComponentChange `json:"components"`
	By         string            `json:"by"`
	At         time.Time         `json:"at"`
}

// Maintenance is planned work announced ahead: the window it is scheduled
// for and the components it touches. The scheduler starts it at
// ScheduledFor and completes it at ScheduledUntil.
type Maintenance struct {
	ID             int64             `json:"id"`
	Title          string            `json:"title"`
	Status         MaintenanceStatus `json:"status"`
	ScheduledFor   time.Time         `json:"scheduled_for"`
	ScheduledUntil time.Time         `json:"scheduled_until"`
	// Components are the ids of the components the work touches.
	Components  []int64             `json:"components"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	StartedAt   *time.Time          `json:"started_at,omitempty"`
	CompletedAt *time.Time          `json:"completed_at,omitempty"`
	Updates     []MaintenanceUpdate `json:"updates"` // newest first
	By          string              `json:"by"`
}

// Schedule returns a new maintenance (ids are the store's to assign),
// validating the window: it ends after it starts, lasts at most 7 days, and
// does not end in the past.
func Schedule(title, message string, from, until time.Time, components []int64, by string, now time.Time) (Maintenance, error) {
	if err := validateText("maintenance title", title, true, maxTitleLen); err != nil {
		return Maintenance{}, err
	}
	if err := validateText("maintenance message", message, true, maxBodyLen); err != nil {
		return Maintenance{}, err
	}
	if from.IsZero() || until.IsZero() {
		return Maintenance{}, Errorf(EINVALID, "a maintenance needs a start and an end")
	}
	if !until.After(from) {
		return Maintenance{}, Errorf(EINVALID, "maintenance ends (%s) before it starts (%s)", until.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if until.Sub(from) > 7*24*time.Hour {
		return Maintenance{}, Errorf(EINVALID, "a maintenance window lasts at most 7 days")
	}
	if !until.After(now) {
		return Maintenance{}, Errorf(EINVALID, "maintenance would end in the past (%s)", until.Format(time.RFC3339))
	}
	m := Maintenance{
		Title: title, Status: MaintenanceScheduled, ScheduledFor: from.UTC(), ScheduledUntil: until.UTC(),
		Components: append([]int64{}, components...), CreatedAt: now, UpdatedAt: now, By: by,
	}
	m.Updates = []MaintenanceUpdate{{Status: MaintenanceScheduled, Body: message, Components: []ComponentChange{}, By: by, At: now}}
	return m, nil
}

// Move changes m's status to next at now with message (may be empty for the
// scheduler's own moves, which get a default text) and the component changes
// made with it, and returns the new timeline entry.
func (m *Maintenance) Move(next MaintenanceStatus, message string, changes []ComponentChange, by string, now time.Time) (MaintenanceUpdate, error) {
	if err := m.Status.CanBecome(next); err != nil {
		return MaintenanceUpdate{}, err
	}
	if err := validateText("maintenance message", message, false, maxBodyLen); err != nil {
		return MaintenanceUpdate{}, err
	}
	if message == "" {
		message = defaultMaintenanceMessage[next]
	}
	switch next {
	case MaintenanceInProgress:
		if m.StartedAt == nil {
			m.StartedAt = &now
		}
	case MaintenanceCompleted, MaintenanceCancelled:
		m.CompletedAt = &now
	}
	if changes == nil {
		changes = []ComponentChange{}
	}
	m.Status, m.UpdatedAt = next, now
	u := MaintenanceUpdate{MaintenanceID: m.ID, Status: next, Body: message, Components: changes, By: by, At: now}
	m.Updates = append([]MaintenanceUpdate{u}, m.Updates...)
	return u, nil
}

var defaultMaintenanceMessage = map[MaintenanceStatus]string{
	MaintenanceInProgress: "Scheduled maintenance is in progress. We will post an update when it is complete.",
	MaintenanceVerifying:  "Maintenance work is done; we are verifying the results.",
	MaintenanceCompleted:  "The scheduled maintenance has been completed.",
	MaintenanceCancelled:  "The scheduled maintenance has been cancelled.",
}

// Due returns the transition the scheduler owes m at now, if any: start a
// scheduled maintenance whose window has begun, complete an active one whose
// window has ended. A window that passed entirely while no scheduler ran is
// started and then, on the next call, completed: subscribers get both
// notices, late, rather than a gap in the timeline. ok is false when nothing
// is due.
func (m Maintenance) Due(now time.Time) (next MaintenanceStatus, ok bool) {
	switch {
	case m.Status == MaintenanceScheduled && !now.Before(m.ScheduledFor):
		return MaintenanceInProgress, true
	case m.Status.Active() && !now.Before(m.ScheduledUntil):
		return MaintenanceCompleted, true
	}
	return "", false
}
