package incident

import (
	"sort"
	"time"
)

// HistoryDays is how many days of history the page shows (and how far back
// it lists incidents and maintenance).
const HistoryDays = 90

// Page is everything the public status page shows, read in one consistent
// transaction: render it, or map it to Statuspage's JSON, without another
// read. Drafts are never in it.
type Page struct {
	// ReadAt is when the store read it (the "now" its history ends at).
	ReadAt time.Time `json:"read_at"`
	// UpdatedAt is the time of the latest change it shows (a component,
	// incident or maintenance change; ReadAt's day start if none).
	UpdatedAt time.Time `json:"updated_at"`
	Groups    []Group   `json:"groups"` // by position
	// Components are all components, ordered by their group's position,
	// then their own (top-level ones by their own position among groups).
	Components []Component `json:"components"`
	// History holds one entry per component, in Components' order.
	History []ComponentHistory `json:"history"`
	// Unresolved are the published incidents still open, newest first, with
	// their whole timeline.
	Unresolved []Incident `json:"unresolved"`
	// Incidents are the published incidents created or updated within
	// HistoryDays, resolved or not, newest first, with their timelines.
	Incidents []Incident `json:"incidents"`
	// Maintenances are the maintenances that are upcoming or active, and
	// those that ended within HistoryDays, by scheduled start, newest first.
	Maintenances []Maintenance `json:"maintenances"`
	// Pulled are the notices for releases pulled within HistoryDays.
	Pulled []PulledNotice `json:"pulled"`
}

// Upcoming returns the scheduled maintenances not yet started, soonest first.
func (p Page) Upcoming() []Maintenance {
	var out []Maintenance
	for _, m := range p.Maintenances {
		if m.Status == MaintenanceScheduled {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ScheduledFor.Before(out[j].ScheduledFor) })
	return out
}

// Active returns the maintenances under way.
func (p Page) Active() []Maintenance {
	var out []Maintenance
	for _, m := range p.Maintenances {
		if m.Status.Active() {
			out = append(out, m)
		}
	}
	return out
}

// Indicator is the page's overall state, Statuspage's status.json values.
type Indicator string

// Overall indicators.
const (
	IndicatorNone        Indicator = "none"
	IndicatorMinor       Indicator = "minor"
	IndicatorMajor       Indicator = "major"
	IndicatorCritical    Indicator = "critical"
	IndicatorMaintenance Indicator = "maintenance"
)

// Status returns the overall indicator and its description, as Statuspage
// words it: the worst of the unresolved incidents' impacts and the
// components' statuses (major_outage → critical, partial_outage → major,
// degraded_performance → minor); maintenance when nothing is worse but a
// maintenance is under way or a component is under maintenance.
func (p Page) Status() (Indicator, string) {
	rank := 0 // 0 none, 1 minor, 2 major, 3 critical
	maint := len(p.Active()) > 0
	for _, i := range p.Unresolved {
		rank = max(rank, i.Impact.Rank())
	}
	for _, c := range p.Components {
		switch c.Status {
		case DegradedPerformance:
			rank = max(rank, 1)
		case PartialOutage:
			rank = max(rank, 2)
		case MajorOutage:
			rank = max(rank, 3)
		case UnderMaintenance:
			maint = true
		}
	}
	switch {
	case rank == 3:
		return IndicatorCritical, "Major System Outage"
	case rank == 2:
		return IndicatorMajor, "Partial System Outage"
	case rank == 1:
		return IndicatorMinor, "Minor Service Outage"
	case maint:
		return IndicatorMaintenance, "Service Under Maintenance"
	}
	return IndicatorNone, "All Systems Operational"
}

// ComponentHistory is one component's daily history, oldest day first.
type ComponentHistory struct {
	ComponentID int64 `json:"component_id"`
	Days        []Day `json:"days"`
}

// Day is one day (UTC) of a component's history.
type Day struct {
	// Date is the day's start, 00:00 UTC.
	Date time.Time `json:"date"`
	// Worst is the worst status the component had at any moment of the day;
	// "" for days before the component existed (no data).
	Worst ComponentStatus `json:"worst,omitempty"`
	// Incidents are the ids of the published incidents that named the
	// component and were open at some moment of the day.
	Incidents []int64 `json:"incidents"`
}

// DayStart returns the start (00:00 UTC) of t's day.
func DayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// History returns c's history for the days days ending with now's (UTC),
// oldest first. changes are c's status changes in time order, the first one
// being its status when created (at c.CreatedAt); changes of other
// components are ignored. incidents are published incidents; those naming c
// are listed on each day they were open.
func History(c Component, changes []StatusChange, incidents []Incident, now time.Time, days int) ComponentHistory {
	h := ComponentHistory{ComponentID: c.ID, Days: make([]Day, days)}
	first := DayStart(now).AddDate(0, 0, -(days - 1))
	var own []StatusChange
	for _, ch := range changes {
		if ch.ComponentID == c.ID {
			own = append(own, ch)
		}
	}
	sort.SliceStable(own, func(i, j int) bool { return own[i].At.Before(own[j].At) })
	// cur is the status in force at the start of the day being built; k the
	// next change not yet applied.
	var cur ComponentStatus
	k := 0
	for i := range h.Days {
		start := first.AddDate(0, 0, i)
		end := start.AddDate(0, 0, 1)
		for k < len(own) && !own[k].At.After(start) {
			cur = own[k].Status
			k++
		}
		worst := cur
		for j := k; j < len(own) && own[j].At.Before(end); j++ {
			worst = Worst(worst, own[j].Status)
		}
		d := Day{Date: start, Worst: worst, Incidents: []int64{}}
		if worst == "" && !c.CreatedAt.IsZero() && c.CreatedAt.Before(end) {
			d.Worst = Operational // created that day without a recorded status
		}
		for _, inc := range incidents {
			if inc.Draft || !containsID(inc.Components, c.ID) {
				continue
			}
			closed := now
			if inc.ResolvedAt != nil {
				closed = *inc.ResolvedAt
			}
			if inc.CreatedAt.Before(end) && !closed.Before(start) {
				d.Incidents = append(d.Incidents, inc.ID)
			}
		}
		h.Days[i] = d
	}
	return h
}

// PulledRelease is one pulled release as the page needs it: the pull's
// guidance, as release data records it. Versions are text; the store lists
// them in ascending version order per product.
type PulledRelease struct {
	Product string    `json:"product"`
	Version string    `json:"version"`
	Action  string    `json:"action"` // upgrade, rollback or hold
	Target  string    `json:"target,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	// IncidentID is the incident the pull linked or opened, 0 if none.
	IncidentID int64 `json:"incident_id,omitempty"`
}

// PulledNotice tells customers not to install some versions of a product
// and what to do instead: "do not upgrade to 3.30.0–3.30.2; upgrade to
// 3.30.3".
type PulledNotice struct {
	Product string `json:"product"`
	// Versions are the pulled versions the advice covers, ascending.
	Versions []string `json:"versions"`
	// Action is upgrade, rollback or hold; Target the version to upgrade or
	// roll back to ("" for hold).
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	// Reason is the latest pull's reason.
	Reason string `json:"reason"`
	// Incidents are the incidents the pulls linked, ascending, no repeats.
	Incidents []int64 `json:"incidents"`
	// At is the latest pull's time.
	At time.Time `json:"at"`
}

// PulledNotices groups pulled releases into notices, one per product and
// advice. An advice whose target was itself pulled later is followed to
// that pull's advice (3.30.0 said "upgrade to 3.30.1", 3.30.1 was pulled
// with "upgrade to 3.30.3": both say 3.30.3), so no notice sends customers
// to a pulled version. pulled must list each product's versions in
// ascending order; notices keep the order of their products' first pull in
// it.
func PulledNotices(pulled []PulledRelease) []PulledNotice {
	byVersion := map[[2]string]PulledRelease{}
	for _, p := range pulled {
		byVersion[[2]string{p.Product, p.Version}] = p
	}
	// final follows a chain of upgrade/rollback targets that were pulled.
	final := func(p PulledRelease) (string, string) {
		action, target := p.Action, p.Target
		for hops := 0; target != "" && hops < len(pulled); hops++ {
			next, ok := byVersion[[2]string{p.Product, target}]
			if !ok {
				break
			}
			action, target = next.Action, next.Target
		}
		if _, stillPulled := byVersion[[2]string{p.Product, target}]; stillPulled {
			action, target = "hold", "" // a cycle of pulled targets: no safe advice
		}
		return action, target
	}
	var out []PulledNotice
	index := map[[3]string]int{}
	for _, p := range pulled {
		action, target := final(p)
		key := [3]string{p.Product, action, target}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, PulledNotice{Product: p.Product, Action: action, Target: target, Incidents: []int64{}})
		}
		n := &out[i]
		n.Versions = append(n.Versions, p.Version)
		if !p.At.Before(n.At) {
			n.At, n.Reason = p.At, p.Reason
		}
		if p.IncidentID != 0 && !containsID(n.Incidents, p.IncidentID) {
			n.Incidents = append(n.Incidents, p.IncidentID)
			sort.Slice(n.Incidents, func(a, b int) bool { return n.Incidents[a] < n.Incidents[b] })
		}
	}
	return out
}
