package incident

import "time"

// NotificationKind says what a notification announces.
type NotificationKind string

// Notification kinds.
const (
	// KindIncidentCreated: an incident was declared published (with
	// notify), or a draft was published.
	KindIncidentCreated NotificationKind = "incident_created"
	// KindIncidentUpdated: a published incident got an update with notify.
	KindIncidentUpdated NotificationKind = "incident_updated"
	// KindIncidentResolved: a published incident was resolved (with notify).
	KindIncidentResolved NotificationKind = "incident_resolved"
	// KindMaintenanceScheduled: a maintenance was announced.
	KindMaintenanceScheduled NotificationKind = "maintenance_scheduled"
	// KindMaintenanceStarted: a maintenance began (the scheduler or a person).
	KindMaintenanceStarted NotificationKind = "maintenance_started"
	// KindMaintenanceCompleted: a maintenance ended (completed or cancelled;
	// Maintenance.Status tells which).
	KindMaintenanceCompleted NotificationKind = "maintenance_completed"
	// KindComponentStatus: a person set a component's status outside any
	// incident or maintenance.
	KindComponentStatus NotificationKind = "component_status"
)

// Notification is one thing subscribers must be told. The store writes it in
// the same transaction as the change it announces, so none is lost and none
// announces a change that did not commit; ID increases in commit order
// within one writer and never changes, so it is the stable id deliveries
// are deduplicated by.
type Notification struct {
	ID   int64            `json:"id"`
	Kind NotificationKind `json:"kind"`
	// Incident is the incident as it was right after the change (incident_*).
	Incident *Incident `json:"incident,omitempty"`
	// Update is the update the change added (incident_*); for a
	// publication, the latest update; nil for a postmortem, which is
	// incident_updated with Incident.Postmortem set.
	Update *Update `json:"update,omitempty"`
	// Maintenance is the maintenance right after the change (maintenance_*).
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// MaintenanceUpdate is the timeline entry the change added
	// (maintenance_*).
	MaintenanceUpdate *MaintenanceUpdate `json:"maintenance_update,omitempty"`
	// Component is the component right after the change, and Change its old
	// and new status (component_status).
	Component *Component       `json:"component,omitempty"`
	Change    *ComponentChange `json:"change,omitempty"`
	// Components are the ids of the components concerned, for subscribers
	// scoped to components; empty means the whole page.
	Components []int64   `json:"components"`
	At         time.Time `json:"at"`
}

// IncidentNotification returns the notification for a change of inc that
// added u (nil for a publication, which announces the incident as a whole).
// ok is false when the change must notify no one: a draft, or an update
// without notify.
func IncidentNotification(inc Incident, u *Update, at time.Time) (n Notification, ok bool) {
	if inc.Draft {
		return Notification{}, false
	}
	kind := KindIncidentCreated
	if u != nil {
		if !u.Notify {
			return Notification{}, false
		}
		switch {
		case len(inc.Updates) == 1:
			kind = KindIncidentCreated
		case u.Status == StatusResolved:
			kind = KindIncidentResolved
		default:
			kind = KindIncidentUpdated
		}
	} else if len(inc.Updates) > 0 {
		first := inc.Updates[0]
		u = &first
	}
	comps := append([]int64{}, inc.Components...)
	return Notification{Kind: kind, Incident: &inc, Update: u, Components: comps, At: at}, true
}

// MaintenanceNotification returns the notification for m's latest timeline
// entry, u: scheduled, started (in_progress) or ended (completed,
// cancelled). ok is false for other moves (verifying, back to in_progress),
// which subscribers need not hear of.
func MaintenanceNotification(m Maintenance, u MaintenanceUpdate, at time.Time) (n Notification, ok bool) {
	var kind NotificationKind
	switch u.Status {
	case MaintenanceScheduled:
		kind = KindMaintenanceScheduled
	case MaintenanceInProgress:
		if m.StartedAt != nil && !m.StartedAt.Equal(u.At) {
			return Notification{}, false // back from verifying: started already announced
		}
		kind = KindMaintenanceStarted
	case MaintenanceCompleted, MaintenanceCancelled:
		kind = KindMaintenanceCompleted
	default:
		return Notification{}, false
	}
	return Notification{Kind: kind, Maintenance: &m, MaintenanceUpdate: &u, Components: append([]int64{}, m.Components...), At: at}, true
}
