package incident

import (
	"strconv"
	"time"
)

// This file maps the page's read model to Atlassian Statuspage's public API
// v2 (/api/v2/*.json) and webhook payloads: the same field names, enums and
// nesting, so that existing consumers (aggregators, exporters, dashboards,
// the embed widget) read them unchanged. Every time is strict RFC 3339 in
// UTC with second precision (SPTime); absent times are null, as Statuspage
// writes them.
//
// Ids are strings, as in Statuspage, and distinct across kinds: components
// "c<id>", groups "g<id>", incidents "i<id>", maintenances "m<id>", incident
// updates "u<id>", maintenance updates "mu<id>".

// SPPage is Statuspage's "page" object.
type SPPage struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	TimeZone  string `json:"time_zone"`
	UpdatedAt SPTime `json:"updated_at"`
}

// SPStatus is Statuspage's "status" object: the overall indicator.
type SPStatus struct {
	Indicator   Indicator `json:"indicator"`
	Description string    `json:"description"`
}

// SPComponent is Statuspage's "component" object. Groups are components
// too, with Group true and Components listing their members' ids.
type SPComponent struct {
	ID                 string          `json:"id"`
	Name               string          `json:"name"`
	Status             ComponentStatus `json:"status"`
	CreatedAt          SPTime          `json:"created_at"`
	UpdatedAt          SPTime          `json:"updated_at"`
	Position           int             `json:"position"`
	Description        *string         `json:"description"`
	Showcase           bool            `json:"showcase"`
	StartDate          *string         `json:"start_date"`
	GroupID            *string         `json:"group_id"`
	PageID             string          `json:"page_id"`
	Group              bool            `json:"group"`
	OnlyShowIfDegraded bool            `json:"only_show_if_degraded"`
	Components         []string        `json:"components,omitempty"`
}

// SPAffectedComponent is one entry of an update's affected_components.
type SPAffectedComponent struct {
	Code      string          `json:"code"`
	Name      string          `json:"name"`
	OldStatus ComponentStatus `json:"old_status"`
	NewStatus ComponentStatus `json:"new_status"`
}

// SPIncidentUpdate is Statuspage's "incident_update" object (also used for
// the updates of scheduled maintenances, whose status is the maintenance's).
type SPIncidentUpdate struct {
	ID                   string                `json:"id"`
	Status               string                `json:"status"`
	Body                 string                `json:"body"`
	IncidentID           string                `json:"incident_id"`
	CreatedAt            SPTime                `json:"created_at"`
	UpdatedAt            SPTime                `json:"updated_at"`
	DisplayAt            SPTime                `json:"display_at"`
	AffectedComponents   []SPAffectedComponent `json:"affected_components"`
	DeliverNotifications bool                  `json:"deliver_notifications"`
	CustomTweet          *string               `json:"custom_tweet"`
	TweetID              *string               `json:"tweet_id"`
}

// SPIncident is Statuspage's "incident" object; ScheduledFor and
// ScheduledUntil are set for scheduled maintenances, which Statuspage lists
// as incidents with impact "maintenance".
type SPIncident struct {
	ID              string             `json:"id"`
	Name            string             `json:"name"`
	Status          string             `json:"status"`
	CreatedAt       SPTime             `json:"created_at"`
	UpdatedAt       SPTime             `json:"updated_at"`
	MonitoringAt    *SPTime            `json:"monitoring_at"`
	ResolvedAt      *SPTime            `json:"resolved_at"`
	Impact          string             `json:"impact"`
	Shortlink       string             `json:"shortlink"`
	StartedAt       SPTime             `json:"started_at"`
	PageID          string             `json:"page_id"`
	IncidentUpdates []SPIncidentUpdate `json:"incident_updates"`
	Components      []SPComponent      `json:"components"`
	ScheduledFor    *SPTime            `json:"scheduled_for,omitempty"`
	ScheduledUntil  *SPTime            `json:"scheduled_until,omitempty"`
}

// SPSummary is the body of /api/v2/summary.json.
type SPSummary struct {
	Page                  SPPage        `json:"page"`
	Components            []SPComponent `json:"components"`
	Incidents             []SPIncident  `json:"incidents"`
	ScheduledMaintenances []SPIncident  `json:"scheduled_maintenances"`
	Status                SPStatus      `json:"status"`
}

// SPStatusBody is the body of /api/v2/status.json.
type SPStatusBody struct {
	Page   SPPage   `json:"page"`
	Status SPStatus `json:"status"`
}

// SPComponents is the body of /api/v2/components.json.
type SPComponents struct {
	Page       SPPage        `json:"page"`
	Components []SPComponent `json:"components"`
}

// SPIncidents is the body of /api/v2/incidents.json and
// incidents/unresolved.json.
type SPIncidents struct {
	Page      SPPage       `json:"page"`
	Incidents []SPIncident `json:"incidents"`
}

// SPMaintenances is the body of /api/v2/scheduled-maintenances*.json.
type SPMaintenances struct {
	Page                  SPPage       `json:"page"`
	ScheduledMaintenances []SPIncident `json:"scheduled_maintenances"`
}

// SPTime is a time written as Statuspage's consumers parse it: RFC 3339,
// UTC, whole seconds ("2026-12-06T10:15:00Z").
type SPTime time.Time

// MarshalJSON writes t in RFC 3339, UTC, whole seconds.
func (t SPTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Truncate(time.Second).Format(time.RFC3339) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *SPTime) UnmarshalJSON(b []byte) error {
	var v time.Time
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = SPTime(v)
	return nil
}

func spTimePtr(t *time.Time) *SPTime {
	if t == nil {
		return nil
	}
	v := SPTime(*t)
	return &v
}

// Statuspage maps the page p to Statuspage's JSON objects; site names the
// page (its id, name and public URL).
type Statuspage struct {
	Site SPPage
	Page Page
	// comps are the page's components by id.
	comps map[int64]Component
}

// NewStatuspage prepares the mapping of p. site.UpdatedAt is taken from p.
func NewStatuspage(site SPPage, p Page) *Statuspage {
	site.UpdatedAt = SPTime(p.UpdatedAt)
	if site.TimeZone == "" {
		site.TimeZone = "Etc/UTC"
	}
	m := &Statuspage{Site: site, Page: p, comps: map[int64]Component{}}
	for _, c := range p.Components {
		m.comps[c.ID] = c
	}
	return m
}

// ComponentID is the Statuspage id of component id.
func ComponentID(id int64) string { return "c" + strconv.FormatInt(id, 10) }

// GroupID is the Statuspage id of group id.
func GroupID(id int64) string { return "g" + strconv.FormatInt(id, 10) }

// IncidentID is the Statuspage id of incident id.
func IncidentID(id int64) string { return "i" + strconv.FormatInt(id, 10) }

// MaintenanceID is the Statuspage id of maintenance id.
func MaintenanceID(id int64) string { return "m" + strconv.FormatInt(id, 10) }

// IncidentURL is the public page of incident id under base.
func IncidentURL(base string, id int64) string {
	return base + "/incidents/" + strconv.FormatInt(id, 10)
}

// MaintenanceURL is the public page of maintenance id under base.
func MaintenanceURL(base string, id int64) string {
	return base + "/maintenance/" + strconv.FormatInt(id, 10)
}

// Status returns status.json's status object.
func (m *Statuspage) Status() SPStatus {
	ind, desc := m.Page.Status()
	return SPStatus{Indicator: ind, Description: desc}
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Component maps one component.
func (m *Statuspage) Component(c Component) SPComponent {
	out := SPComponent{
		ID: ComponentID(c.ID), Name: c.Name, Status: c.Status, CreatedAt: SPTime(c.CreatedAt), UpdatedAt: SPTime(c.UpdatedAt),
		Position: c.Position, Description: optString(c.Description), Showcase: true, PageID: m.Site.ID,
		OnlyShowIfDegraded: c.OnlyShowIfDegraded,
	}
	if !c.CreatedAt.IsZero() {
		d := c.CreatedAt.UTC().Format(time.DateOnly)
		out.StartDate = &d
	}
	if c.GroupID != 0 {
		g := GroupID(c.GroupID)
		out.GroupID = &g
	}
	return out
}

// Components returns components.json's list: every component, and every
// group as a component with group true, its status the worst of its
// members', in page order.
func (m *Statuspage) Components() []SPComponent {
	out := []SPComponent{}
	members := map[int64][]Component{}
	for _, c := range m.Page.Components {
		members[c.GroupID] = append(members[c.GroupID], c)
	}
	for _, g := range m.Page.Groups {
		sg := SPComponent{
			ID: GroupID(g.ID), Name: g.Name, Status: Operational, CreatedAt: SPTime(g.CreatedAt), UpdatedAt: SPTime(g.UpdatedAt),
			Position: g.Position, Description: optString(g.Description), PageID: m.Site.ID, Group: true, Components: []string{},
		}
		for _, c := range members[g.ID] {
			sg.Status = Worst(sg.Status, c.Status)
			sg.Components = append(sg.Components, ComponentID(c.ID))
		}
		out = append(out, sg)
	}
	for _, c := range m.Page.Components {
		out = append(out, m.Component(c))
	}
	return out
}

func (m *Statuspage) affected(changes []ComponentChange) []SPAffectedComponent {
	out := []SPAffectedComponent{}
	for _, ch := range changes {
		out = append(out, SPAffectedComponent{Code: ComponentID(ch.ComponentID), Name: ch.Name, OldStatus: ch.OldStatus, NewStatus: ch.NewStatus})
	}
	return out
}

func (m *Statuspage) components(ids []int64) []SPComponent {
	out := []SPComponent{}
	for _, id := range ids {
		if c, ok := m.comps[id]; ok {
			out = append(out, m.Component(c))
		}
	}
	return out
}

// Incident maps one incident.
func (m *Statuspage) Incident(inc Incident) SPIncident {
	started := inc.CreatedAt
	if inc.PublishedAt != nil && len(inc.Updates) == 0 {
		started = *inc.PublishedAt
	}
	out := SPIncident{
		ID: IncidentID(inc.ID), Name: inc.Title, Status: string(inc.Status), CreatedAt: SPTime(inc.CreatedAt), UpdatedAt: SPTime(inc.UpdatedAt),
		MonitoringAt: spTimePtr(inc.MonitoringAt), ResolvedAt: spTimePtr(inc.ResolvedAt), Impact: string(inc.Impact),
		Shortlink: IncidentURL(m.Site.URL, inc.ID), StartedAt: SPTime(started), PageID: m.Site.ID,
		IncidentUpdates: []SPIncidentUpdate{}, Components: m.components(inc.Components),
	}
	for _, u := range inc.Updates {
		out.IncidentUpdates = append(out.IncidentUpdates, m.Update(inc, u))
	}
	return out
}

// Update maps one incident update.
func (m *Statuspage) Update(inc Incident, u Update) SPIncidentUpdate {
	return SPIncidentUpdate{
		ID: "u" + strconv.FormatInt(u.ID, 10), Status: string(u.Status), Body: u.Body, IncidentID: IncidentID(inc.ID),
		CreatedAt: SPTime(u.At), UpdatedAt: SPTime(u.At), DisplayAt: SPTime(u.At), AffectedComponents: m.affected(u.Components),
		DeliverNotifications: u.Notify,
	}
}

// Maintenance maps one scheduled maintenance as Statuspage lists it: an
// incident with impact "maintenance", its status one of scheduled,
// in_progress, verifying, completed (a cancelled maintenance is completed
// with the cancellation as its last update).
func (m *Statuspage) Maintenance(mt Maintenance) SPIncident {
	status := mt.Status
	if status == MaintenanceCancelled {
		status = MaintenanceCompleted
	}
	started := mt.ScheduledFor
	if mt.StartedAt != nil {
		started = *mt.StartedAt
	}
	out := SPIncident{
		ID: MaintenanceID(mt.ID), Name: mt.Title, Status: string(status), CreatedAt: SPTime(mt.CreatedAt), UpdatedAt: SPTime(mt.UpdatedAt),
		ResolvedAt: spTimePtr(mt.CompletedAt), Impact: "maintenance", Shortlink: MaintenanceURL(m.Site.URL, mt.ID),
		StartedAt: SPTime(started), PageID: m.Site.ID, IncidentUpdates: []SPIncidentUpdate{}, Components: m.components(mt.Components),
		ScheduledFor: spTimePtr(&mt.ScheduledFor), ScheduledUntil: spTimePtr(&mt.ScheduledUntil),
	}
	for _, u := range mt.Updates {
		out.IncidentUpdates = append(out.IncidentUpdates, m.MaintenanceUpdate(mt, u))
	}
	return out
}

// MaintenanceUpdate maps one maintenance timeline entry.
func (m *Statuspage) MaintenanceUpdate(mt Maintenance, u MaintenanceUpdate) SPIncidentUpdate {
	status := u.Status
	if status == MaintenanceCancelled {
		status = MaintenanceCompleted
	}
	return SPIncidentUpdate{
		ID: "mu" + strconv.FormatInt(u.ID, 10), Status: string(status), Body: u.Body, IncidentID: MaintenanceID(mt.ID),
		CreatedAt: SPTime(u.At), UpdatedAt: SPTime(u.At), DisplayAt: SPTime(u.At), AffectedComponents: m.affected(u.Components),
		DeliverNotifications: true,
	}
}

func (m *Statuspage) incidents(in []Incident, limit int) []SPIncident {
	out := []SPIncident{}
	for _, inc := range in {
		if len(out) == limit {
			break
		}
		out = append(out, m.Incident(inc))
	}
	return out
}

func (m *Statuspage) maintenances(in []Maintenance, limit int) []SPIncident {
	out := []SPIncident{}
	for _, mt := range in {
		if len(out) == limit {
			break
		}
		out = append(out, m.Maintenance(mt))
	}
	return out
}

// Summary returns summary.json: the page, components, unresolved incidents,
// and upcoming or in-progress maintenances.
func (m *Statuspage) Summary() SPSummary {
	cur := append(m.Page.Active(), m.Page.Upcoming()...)
	return SPSummary{Page: m.Site, Components: m.Components(), Incidents: m.incidents(m.Page.Unresolved, -1),
		ScheduledMaintenances: m.maintenances(cur, -1), Status: m.Status()}
}

// StatusBody returns status.json.
func (m *Statuspage) StatusBody() SPStatusBody { return SPStatusBody{Page: m.Site, Status: m.Status()} }

// ComponentsBody returns components.json.
func (m *Statuspage) ComponentsBody() SPComponents {
	return SPComponents{Page: m.Site, Components: m.Components()}
}

// IncidentsBody returns incidents.json: the 50 most recent incidents.
func (m *Statuspage) IncidentsBody() SPIncidents {
	return SPIncidents{Page: m.Site, Incidents: m.incidents(m.Page.Incidents, 50)}
}

// UnresolvedBody returns incidents/unresolved.json.
func (m *Statuspage) UnresolvedBody() SPIncidents {
	return SPIncidents{Page: m.Site, Incidents: m.incidents(m.Page.Unresolved, -1)}
}

// MaintenancesBody returns scheduled-maintenances.json: the 50 most recent.
func (m *Statuspage) MaintenancesBody() SPMaintenances {
	return SPMaintenances{Page: m.Site, ScheduledMaintenances: m.maintenances(m.Page.Maintenances, 50)}
}

// UpcomingBody returns scheduled-maintenances/upcoming.json.
func (m *Statuspage) UpcomingBody() SPMaintenances {
	return SPMaintenances{Page: m.Site, ScheduledMaintenances: m.maintenances(m.Page.Upcoming(), -1)}
}

// ActiveBody returns scheduled-maintenances/active.json.
func (m *Statuspage) ActiveBody() SPMaintenances {
	return SPMaintenances{Page: m.Site, ScheduledMaintenances: m.maintenances(m.Page.Active(), -1)}
}

// SPWebhookMeta is the "meta" object of a Statuspage webhook payload.
type SPWebhookMeta struct {
	Unsubscribe   string `json:"unsubscribe"`
	Documentation string `json:"documentation"`
	GeneratedAt   SPTime `json:"generated_at"`
}

// SPWebhookPage is the "page" object of a Statuspage webhook payload.
type SPWebhookPage struct {
	ID                string    `json:"id"`
	StatusIndicator   Indicator `json:"status_indicator"`
	StatusDescription string    `json:"status_description"`
}

// SPComponentUpdate is the "component_update" object of a component
// webhook.
type SPComponentUpdate struct {
	ID            string          `json:"id"`
	CreatedAt     SPTime          `json:"created_at"`
	OldStatus     ComponentStatus `json:"old_status"`
	NewStatus     ComponentStatus `json:"new_status"`
	ComponentID   string          `json:"component_id"`
	ComponentType string          `json:"component_type"`
}

// SPWebhook is Statuspage's webhook payload: meta, page, then either the
// incident (incidents and maintenances) or the component and its update.
type SPWebhook struct {
	Meta            SPWebhookMeta      `json:"meta"`
	Page            SPWebhookPage      `json:"page"`
	Incident        *SPIncident        `json:"incident,omitempty"`
	Component       *SPComponent       `json:"component,omitempty"`
	ComponentUpdate *SPComponentUpdate `json:"component_update,omitempty"`
}

// Webhook maps a notification to Statuspage's webhook payload, with the
// page's current overall status; meta.unsubscribe is left for the sender
// to fill in per subscriber.
func (m *Statuspage) Webhook(n Notification, documentation string) SPWebhook {
	st := m.Status()
	w := SPWebhook{
		Meta: SPWebhookMeta{Documentation: documentation, GeneratedAt: SPTime(n.At)},
		Page: SPWebhookPage{ID: m.Site.ID, StatusIndicator: st.Indicator, StatusDescription: st.Description},
	}
	switch {
	case n.Incident != nil:
		inc := m.Incident(*n.Incident)
		w.Incident = &inc
	case n.Maintenance != nil:
		mt := m.Maintenance(*n.Maintenance)
		w.Incident = &mt
	case n.Component != nil:
		c := m.Component(*n.Component)
		w.Component = &c
		if n.Change != nil {
			w.ComponentUpdate = &SPComponentUpdate{
				ID: "n" + strconv.FormatInt(n.ID, 10), CreatedAt: SPTime(n.At), OldStatus: n.Change.OldStatus, NewStatus: n.Change.NewStatus,
				ComponentID: c.ID, ComponentType: "Component",
			}
		}
	}
	return w
}
