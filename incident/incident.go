package incident

import (
	"slices"
	"strings"
	"time"
)

// Impact is how much of the service an incident affects, with Statuspage's
// values; the page's overall indicator is the worst impact of the
// unresolved incidents (and of the components' statuses).
type Impact string

// Impacts, least first.
const (
	ImpactNone     Impact = "none"
	ImpactMinor    Impact = "minor"
	ImpactMajor    Impact = "major"
	ImpactCritical Impact = "critical"
)

var impacts = [...]Impact{ImpactNone, ImpactMinor, ImpactMajor, ImpactCritical}

// Rank orders impacts from none (0) to critical (3); -1 for unknown ones.
func (i Impact) Rank() int {
	for n, v := range impacts {
		if v == i {
			return n
		}
	}
	return -1
}

// Valid reports whether i is a known impact.
func (i Impact) Valid() bool { return i.Rank() >= 0 }

// ParseImpact parses an impact name; EINVALID lists the valid ones.
func ParseImpact(s string) (Impact, error) {
	i := Impact(s)
	if !i.Valid() {
		return "", Errorf(EINVALID, "unknown impact %q: use none, minor, major or critical", s)
	}
	return i, nil
}

// Status is where an incident stands in its lifecycle: investigating →
// identified → monitoring → resolved (→ postmortem), Statuspage's values.
type Status string

// Incident statuses.
const (
	// StatusInvestigating: something is wrong, the cause is not known yet.
	StatusInvestigating Status = "investigating"
	// StatusIdentified: the cause is known, a fix is under way.
	StatusIdentified Status = "identified"
	// StatusMonitoring: a fix is in place, its effect is being watched.
	StatusMonitoring Status = "monitoring"
	// StatusResolved: over. Not reopened: a recurrence is a new incident.
	StatusResolved Status = "resolved"
	// StatusPostmortem: resolved, and the postmortem is published. Terminal;
	// the postmortem may still be revised.
	StatusPostmortem Status = "postmortem"
)

var statuses = [...]Status{StatusInvestigating, StatusIdentified, StatusMonitoring, StatusResolved, StatusPostmortem}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Unresolved reports whether s is one of the open statuses (investigating,
// identified, monitoring).
func (s Status) Unresolved() bool {
	return s == StatusInvestigating || s == StatusIdentified || s == StatusMonitoring
}

// ParseStatus parses an incident status name; EINVALID lists the valid ones.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", Errorf(EINVALID, "unknown incident status %q: use investigating, identified, monitoring, resolved or postmortem", s)
	}
	return st, nil
}

// CanBecome checks the lifecycle rule for an update from s to next:
//   - an unresolved incident may move to any unresolved status (forward, or
//     back when a fix did not hold) or to resolved;
//   - a resolved incident may only get its postmortem;
//   - a postmortem stays a postmortem (the text may be revised).
//
// Illegal moves are ECONFLICT: they conflict with the incident's state.
func (s Status) CanBecome(next Status) error {
	if !next.Valid() {
		return Errorf(EINVALID, "unknown incident status %q", next)
	}
	switch {
	case s.Unresolved() && (next.Unresolved() || next == StatusResolved):
		return nil
	case s == StatusResolved && next == StatusPostmortem:
		return nil
	case s == StatusPostmortem && next == StatusPostmortem:
		return nil
	case s.Unresolved() && next == StatusPostmortem:
		return Errorf(ECONFLICT, "incident is %s: resolve it before its postmortem", s)
	case s == StatusResolved || s == StatusPostmortem:
		return Errorf(ECONFLICT, "incident is %s and is not reopened: declare a new incident", s)
	}
	return Errorf(ECONFLICT, "incident cannot move from %s to %s", s, next)
}

// ReleaseRef names a release as product@version. The version is kept as
// text: this package does not know release versions; the store checks that
// the release exists.
type ReleaseRef struct {
	Product string `json:"product"`
	Version string `json:"version"`
}

// String returns "product@version".
func (r ReleaseRef) String() string { return r.Product + "@" + r.Version }

// ParseReleaseRef parses "product@version".
func ParseReleaseRef(s string) (ReleaseRef, error) {
	p, v, ok := strings.Cut(s, "@")
	if !ok || p == "" || v == "" || strings.ContainsAny(v, "@ ") {
		return ReleaseRef{}, Errorf(EINVALID, "release %q: write it as PRODUCT@VERSION", s)
	}
	return ReleaseRef{Product: p, Version: v}, nil
}

// Update is one entry of an incident's timeline: the status it moved the
// incident to, what was said, which components changed, and whether
// subscribers are told.
type Update struct {
	ID         int64             `json:"id"`
	IncidentID int64             `json:"incident_id"`
	Status     Status            `json:"status"`
	Body       string            `json:"body"`
	Components []ComponentChange `json:"components"`
	// Notify: subscribers are told of this update (Statuspage's
	// deliver_notifications). Updates of a draft notify no one.
	Notify bool      `json:"notify"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Incident is one incident: what is wrong, how bad, where it stands, its
// timeline, and the releases it concerns.
type Incident struct {
	ID       int64    `json:"id"`
	Title    string   `json:"title"`
	Impact   Impact   `json:"impact"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	// Draft incidents are visible to staff only and notify no one; Publish
	// makes them public (auto-halt opens drafts by default).
	Draft       bool       `json:"draft"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
	// MonitoringAt is when the incident last entered monitoring.
	MonitoringAt *time.Time `json:"monitoring_at,omitempty"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	// Postmortem is the published postmortem (Markdown), "" until written.
	Postmortem   string     `json:"postmortem,omitempty"`
	PostmortemAt *time.Time `json:"postmortem_at,omitempty"`
	// Releases are the releases the incident concerns.
	Releases []ReleaseRef `json:"releases"`
	// Components are the ids of every component an update changed.
	Components []int64 `json:"components"`
	// Updates is the timeline, newest first (as Statuspage lists it).
	Updates []Update `json:"updates"`
	By      string   `json:"by"`
	// Roles are who holds which role in the response, in the order of
	// Roles (staff-only: never public).
	Roles []Assignment `json:"roles"`
}

// Unresolved reports whether the incident is still open.
func (i Incident) Unresolved() bool { return i.Status.Unresolved() }

// Public reports whether the incident may be shown and notified.
func (i Incident) Public() bool { return !i.Draft }

// ResolveChanges is what resolving the incident without naming components
// does to them: every component an update changed goes back to operational.
// Applying them drops those already operational.
func (i Incident) ResolveChanges() []ComponentChange {
	out := make([]ComponentChange, 0, len(i.Components))
	for _, id := range i.Components {
		out = append(out, ComponentChange{ComponentID: id, NewStatus: Operational})
	}
	return out
}

// Declaration is what a person (or auto-halt, or a pull) says when opening an
// incident: its first update is Message with Status and the component
// changes.
type Declaration struct {
	Title      string            `json:"title"`
	Impact     Impact            `json:"impact"`
	Severity   Severity          `json:"severity"`
	Status     Status            `json:"status"`
	Message    string            `json:"message"`
	Components []ComponentChange `json:"components"`
	Releases   []ReleaseRef      `json:"releases"`
	Draft      bool              `json:"draft"`
	Notify     bool              `json:"notify"`
}

// Validate checks a declaration against the severities in force (levels).
func (d Declaration) Validate(levels Severities) error {
	if err := validateText("incident title", d.Title, true, maxTitleLen); err != nil {
		return err
	}
	if d.Impact == "" {
		return Errorf(EINVALID, "impact is required: none, minor, major or critical")
	}
	if !d.Impact.Valid() {
		return Errorf(EINVALID, "unknown impact %q: use none, minor, major or critical", d.Impact)
	}
	if _, err := levels.Lookup(d.Severity); err != nil {
		return err
	}
	if !d.Status.Unresolved() {
		return Errorf(EINVALID, "an incident is declared investigating, identified or monitoring, not %q", d.Status)
	}
	if err := validateText("incident message", d.Message, true, maxBodyLen); err != nil {
		return err
	}
	if err := validateChanges(d.Components); err != nil {
		return err
	}
	if d.Draft && len(d.Components) > 0 {
		return errDraftComponents()
	}
	seen := map[ReleaseRef]bool{}
	for _, r := range d.Releases {
		if r.Product == "" || r.Version == "" {
			return Errorf(EINVALID, "release %q: write it as PRODUCT@VERSION", r.String())
		}
		if seen[r] {
			return Errorf(EINVALID, "release %s is named twice", r)
		}
		seen[r] = true
	}
	return nil
}

// validateChanges checks component changes of one update: known statuses,
// each component once.
func validateChanges(cs []ComponentChange) error {
	names, ids := map[string]bool{}, map[int64]bool{}
	for _, c := range cs {
		if !c.NewStatus.Valid() {
			return Errorf(EINVALID, "component %s: unknown status %q", c.Name, c.NewStatus)
		}
		if (c.ComponentID != 0 && ids[c.ComponentID]) || (c.Name != "" && names[c.Name]) {
			return Errorf(EINVALID, "component %s is named twice", c.Name)
		}
		ids[c.ComponentID], names[c.Name] = c.ComponentID != 0, c.Name != ""
	}
	return nil
}

// errDraftComponents refuses component changes in a draft: component
// statuses are public, a draft is not.
func errDraftComponents() error {
	return Errorf(EINVALID, "a draft incident changes no components (their status is public): publish it first")
}

// Declare returns the new incident d describes, at now, by by (ids are the
// store's to assign). Its first update carries d's message.
func Declare(d Declaration, levels Severities, by string, now time.Time) (Incident, error) {
	if d.Severity == "" {
		d.Severity = levels.Default()
	}
	if err := d.Validate(levels); err != nil {
		return Incident{}, err
	}
	inc := Incident{
		Title: d.Title, Impact: d.Impact, Severity: d.Severity, Status: d.Status, Draft: d.Draft,
		CreatedAt: now, UpdatedAt: now, Releases: append([]ReleaseRef{}, d.Releases...), Components: []int64{}, By: by,
	}
	if !d.Draft {
		inc.PublishedAt = &now
	}
	if d.Status == StatusMonitoring {
		inc.MonitoringAt = &now
	}
	inc.addUpdate(Update{Status: d.Status, Body: d.Message, Components: d.Components, Notify: d.Notify && !d.Draft, By: by, At: now})
	return inc, nil
}

// Change is what one update of an incident says.
type Change struct {
	Status     Status            `json:"status"`
	Message    string            `json:"message"`
	Components []ComponentChange `json:"components"`
	// Impact, when set, changes the incident's impact.
	Impact Impact `json:"impact,omitempty"`
	// Severity, when set, changes the incident's severity (Validate checks
	// it against the levels in force).
	Severity Severity `json:"severity,omitempty"`
	// Releases are releases the incident now also concerns.
	Releases []ReleaseRef `json:"releases,omitempty"`
	Notify   bool         `json:"notify"`
}

// Validate checks what of c depends on the severities in force.
func (c Change) Validate(levels Severities) error {
	if c.Severity == "" {
		return nil
	}
	_, err := levels.Lookup(c.Severity)
	return err
}

// Apply adds c as a new update of i at now, moving i's status along the
// lifecycle (CanBecome; ECONFLICT for an illegal move) and changing its
// impact and severity when c sets them (check c.Validate first). The update is
// returned too; it is i.Updates[0] afterwards. Updates of a draft never
// notify.
func (i *Incident) Apply(c Change, by string, now time.Time) (Update, error) {
	if err := i.Status.CanBecome(c.Status); err != nil {
		return Update{}, err
	}
	if c.Status == StatusPostmortem {
		return Update{}, Errorf(EINVALID, "a postmortem is added with its text (incident postmortem), not as an update")
	}
	if err := validateText("update message", c.Message, true, maxBodyLen); err != nil {
		return Update{}, err
	}
	if err := validateChanges(c.Components); err != nil {
		return Update{}, err
	}
	if i.Draft && len(c.Components) > 0 {
		return Update{}, errDraftComponents()
	}
	if c.Impact != "" {
		if !c.Impact.Valid() {
			return Update{}, Errorf(EINVALID, "unknown impact %q: use none, minor, major or critical", c.Impact)
		}
		i.Impact = c.Impact
	}
	if c.Severity != "" {
		i.Severity = c.Severity
	}
	for _, r := range c.Releases {
		if !slices.Contains(i.Releases, r) {
			i.Releases = append(i.Releases, r)
		}
	}
	if c.Status == StatusMonitoring && i.Status != StatusMonitoring {
		i.MonitoringAt = &now
	}
	if c.Status == StatusResolved {
		i.ResolvedAt = &now
	}
	i.Status = c.Status
	i.UpdatedAt = now
	u := Update{Status: c.Status, Body: c.Message, Components: c.Components, Notify: c.Notify && !i.Draft, By: by, At: now}
	i.addUpdate(u)
	return i.Updates[0], nil
}

// addUpdate puts u first in the timeline and records its components.
func (i *Incident) addUpdate(u Update) {
	if u.Components == nil {
		u.Components = []ComponentChange{}
	}
	u.IncidentID = i.ID
	i.Updates = append([]Update{u}, i.Updates...)
	for _, c := range u.Components {
		if c.ComponentID != 0 && !containsID(i.Components, c.ComponentID) {
			i.Components = append(i.Components, c.ComponentID)
		}
	}
}

func containsID(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// Publish makes a draft public at now; ECONFLICT if it already is.
func (i *Incident) Publish(now time.Time) error {
	if !i.Draft {
		return Errorf(ECONFLICT, "incident %d is already published", i.ID)
	}
	i.Draft, i.PublishedAt, i.UpdatedAt = false, &now, now
	return nil
}

// SetPostmortem records (or revises) the postmortem of a resolved incident
// and moves it to postmortem; ECONFLICT while it is unresolved.
func (i *Incident) SetPostmortem(text string, now time.Time) error {
	if err := i.Status.CanBecome(StatusPostmortem); err != nil {
		return err
	}
	if err := validateText("postmortem", text, true, maxBodyLen); err != nil {
		return err
	}
	i.Status, i.Postmortem, i.PostmortemAt, i.UpdatedAt = StatusPostmortem, text, &now, now
	return nil
}

// Template is a prepared incident: a title and a first message to start from,
// with default impact, severity and status.
type Template struct {
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Impact   Impact   `json:"impact,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	Status   Status   `json:"status,omitempty"`
}

// Validate checks t's fields against the severities in force.
func (t Template) Validate(levels Severities) error {
	if err := ValidateName("template", t.Name); err != nil {
		return err
	}
	if err := validateText("template title", t.Title, true, maxTitleLen); err != nil {
		return err
	}
	if err := validateText("template body", t.Body, true, maxBodyLen); err != nil {
		return err
	}
	if t.Impact != "" && !t.Impact.Valid() {
		return Errorf(EINVALID, "template %s: unknown impact %q", t.Name, t.Impact)
	}
	if t.Severity != "" {
		if _, err := levels.Lookup(t.Severity); err != nil {
			return err
		}
	}
	if t.Status != "" && !t.Status.Unresolved() {
		return Errorf(EINVALID, "template %s: status must be investigating, identified or monitoring", t.Name)
	}
	return nil
}

// Fill completes d from t: fields d leaves empty take the template's.
func (t Template) Fill(d Declaration) Declaration {
	if d.Title == "" {
		d.Title = t.Title
	}
	if d.Message == "" {
		d.Message = t.Body
	}
	if d.Impact == "" {
		d.Impact = t.Impact
	}
	if d.Severity == "" {
		d.Severity = t.Severity
	}
	if d.Status == "" {
		d.Status = t.Status
	}
	return d
}
