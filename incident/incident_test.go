package incident

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func TestStatusCanBecome(t *testing.T) {
	for _, tc := range []struct {
		from, to Status
		code     string
	}{
		{StatusInvestigating, StatusIdentified, ""},
		{StatusInvestigating, StatusMonitoring, ""},
		{StatusMonitoring, StatusInvestigating, ""}, // the fix did not hold
		{StatusIdentified, StatusResolved, ""},
		{StatusInvestigating, StatusInvestigating, ""},
		{StatusResolved, StatusPostmortem, ""},
		{StatusPostmortem, StatusPostmortem, ""},
		{StatusResolved, StatusInvestigating, ECONFLICT},
		{StatusResolved, StatusResolved, ECONFLICT},
		{StatusPostmortem, StatusResolved, ECONFLICT},
		{StatusMonitoring, StatusPostmortem, ECONFLICT},
		{StatusInvestigating, "fixed", EINVALID},
	} {
		if got := ErrorCode(tc.from.CanBecome(tc.to)); got != tc.code {
			t.Errorf("%s → %s: code %q, want %q", tc.from, tc.to, got, tc.code)
		}
	}
}

func TestMaintenanceCanBecome(t *testing.T) {
	for _, tc := range []struct {
		from, to MaintenanceStatus
		code     string
	}{
		{MaintenanceScheduled, MaintenanceInProgress, ""},
		{MaintenanceScheduled, MaintenanceCancelled, ""},
		{MaintenanceInProgress, MaintenanceVerifying, ""},
		{MaintenanceInProgress, MaintenanceCompleted, ""},
		{MaintenanceVerifying, MaintenanceInProgress, ""},
		{MaintenanceVerifying, MaintenanceCompleted, ""},
		{MaintenanceScheduled, MaintenanceCompleted, ECONFLICT},
		{MaintenanceInProgress, MaintenanceCancelled, ECONFLICT},
		{MaintenanceCompleted, MaintenanceInProgress, ECONFLICT},
		{MaintenanceCancelled, MaintenanceScheduled, ECONFLICT},
		{MaintenanceScheduled, "done", EINVALID},
	} {
		if got := ErrorCode(tc.from.CanBecome(tc.to)); got != tc.code {
			t.Errorf("%s → %s: code %q, want %q", tc.from, tc.to, got, tc.code)
		}
	}
}

func TestDeclareAndApply(t *testing.T) {
	levels := DefaultSeverities()
	api := ComponentChange{ComponentID: 7, Name: "API", OldStatus: Operational, NewStatus: MajorOutage}
	inc, err := Declare(Declaration{Title: "Check-ins fail", Impact: ImpactMajor, Status: StatusInvestigating,
		Message: "Looking into it", Components: []ComponentChange{api}, Notify: true}, levels, "alice", t0)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Severity != "SEV3" || inc.Draft || inc.PublishedAt == nil || len(inc.Updates) != 1 || !inc.Updates[0].Notify {
		t.Fatalf("declared %+v", inc)
	}
	if len(inc.Components) != 1 || inc.Components[0] != 7 {
		t.Fatalf("components %v", inc.Components)
	}
	if _, err := inc.Apply(Change{Status: StatusMonitoring, Message: "Fix deployed", Notify: true}, "bob", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if inc.MonitoringAt == nil || !inc.MonitoringAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("monitoring_at %v", inc.MonitoringAt)
	}
	u, err := inc.Apply(Change{Status: StatusResolved, Message: "Fixed", Notify: true}, "bob", t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != StatusResolved || inc.ResolvedAt == nil || inc.Updates[0].Body != "Fixed" || u.Status != StatusResolved {
		t.Fatalf("resolved %+v", inc)
	}
	if n, ok := IncidentNotification(inc, &u, t0); !ok || n.Kind != KindIncidentResolved {
		t.Errorf("resolve notification %v %v", n.Kind, ok)
	}
	if _, err := inc.Apply(Change{Status: StatusInvestigating, Message: "again"}, "bob", t0); ErrorCode(err) != ECONFLICT {
		t.Errorf("reopen: %v", err)
	}
	if err := inc.SetPostmortem("What happened", t0.Add(48*time.Hour)); err != nil || inc.Status != StatusPostmortem {
		t.Fatalf("postmortem: %v %s", err, inc.Status)
	}
	if len(inc.Updates) != 3 {
		t.Errorf("%d updates", len(inc.Updates))
	}

	for name, d := range map[string]Declaration{
		"no title":       {Impact: ImpactMinor, Status: StatusInvestigating, Message: "m"},
		"bad impact":     {Title: "t", Impact: "huge", Status: StatusInvestigating, Message: "m"},
		"bad severity":   {Title: "t", Impact: ImpactMinor, Severity: "SEV9", Status: StatusInvestigating, Message: "m"},
		"resolved":       {Title: "t", Impact: ImpactMinor, Status: StatusResolved, Message: "m"},
		"no message":     {Title: "t", Impact: ImpactMinor, Status: StatusInvestigating},
		"twice":          {Title: "t", Impact: ImpactMinor, Status: StatusInvestigating, Message: "m", Components: []ComponentChange{api, api}},
		"bad comp state": {Title: "t", Impact: ImpactMinor, Status: StatusInvestigating, Message: "m", Components: []ComponentChange{{Name: "x", NewStatus: "down"}}},
		"release twice":  {Title: "t", Impact: ImpactMinor, Status: StatusInvestigating, Message: "m", Releases: []ReleaseRef{{"a", "1"}, {"a", "1"}}},
		"draft changing": {Title: "t", Impact: ImpactMinor, Status: StatusInvestigating, Message: "m", Draft: true, Components: []ComponentChange{api}},
	} {
		if _, err := Declare(d, levels, "x", t0); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestDraftsNotifyNothingUntilPublished(t *testing.T) {
	inc, err := Declare(Declaration{Title: "auto-halt", Impact: ImpactMajor, Severity: "SEV2", Status: StatusInvestigating,
		Message: "paused", Draft: true, Notify: true}, DefaultSeverities(), "auto-halt", t0)
	if err != nil {
		t.Fatal(err)
	}
	if inc.PublishedAt != nil || inc.Updates[0].Notify {
		t.Fatalf("draft %+v", inc)
	}
	if _, ok := IncidentNotification(inc, &inc.Updates[0], t0); ok {
		t.Error("a draft notified")
	}
	if _, err := inc.Apply(Change{Status: StatusIdentified, Message: "m", Components: []ComponentChange{{ComponentID: 1, NewStatus: MajorOutage}}}, "x", t0); ErrorCode(err) != EINVALID {
		t.Errorf("a draft's update changed components: %v", err)
	}
	u, _ := inc.Apply(Change{Status: StatusIdentified, Message: "cause", Notify: true}, "x", t0)
	if u.Notify {
		t.Error("an update of a draft notifies")
	}
	if err := inc.Publish(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	n, ok := IncidentNotification(inc, nil, t0)
	if !ok || n.Kind != KindIncidentCreated || n.Update == nil || n.Update.Body != "cause" {
		t.Fatalf("publication notification %+v %v", n, ok)
	}
	if err := inc.Publish(t0); ErrorCode(err) != ECONFLICT {
		t.Errorf("second publish: %v", err)
	}
}

func TestParseReleaseRef(t *testing.T) {
	for in, ok := range map[string]bool{"app@3.30.0": true, "app": false, "@1": false, "app@": false, "a@b@c": false} {
		r, err := ParseReleaseRef(in)
		if (err == nil) != ok {
			t.Errorf("%q: %v", in, err)
		}
		if ok && r.String() != in {
			t.Errorf("%q round-trips as %q", in, r)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Policy.PauseReleases = []Severity{"SEV1", "P0"}
	if ErrorCode(c.Validate()) != EINVALID {
		t.Error("policy naming an unknown severity accepted")
	}
	c = DefaultConfig()
	c.Severities = append(c.Severities, SeverityLevel{"SEV1", "dup"})
	if ErrorCode(c.Validate()) != EINVALID {
		t.Error("duplicate severity accepted")
	}
	c = DefaultConfig()
	c.Severities[0].Name = "P 0"
	if ErrorCode(c.Validate()) != EINVALID {
		t.Error("severity name with a space accepted")
	}
	if !DefaultConfig().Policy.Pauses("SEV2") || DefaultConfig().Policy.Pauses("SEV3") {
		t.Error("default policy: SEV2 pauses, SEV3 does not")
	}
}

func TestTemplateFill(t *testing.T) {
	tpl := Template{Name: "db", Title: "Database degraded", Body: "We are investigating.", Impact: ImpactMinor, Severity: "SEV3"}
	if err := tpl.Validate(DefaultSeverities()); err != nil {
		t.Fatal(err)
	}
	d := tpl.Fill(Declaration{Title: "Own title", Status: StatusInvestigating})
	if d.Title != "Own title" || d.Message != tpl.Body || d.Impact != ImpactMinor || d.Severity != "SEV3" {
		t.Errorf("filled %+v", d)
	}
}

func TestMaintenanceSchedule(t *testing.T) {
	if _, err := Schedule("db upgrade", "m", t0.Add(2*time.Hour), t0.Add(time.Hour), nil, "x", t0); ErrorCode(err) != EINVALID {
		t.Errorf("end before start: %v", err)
	}
	if _, err := Schedule("db upgrade", "m", t0.Add(-3*time.Hour), t0.Add(-time.Hour), nil, "x", t0); ErrorCode(err) != EINVALID {
		t.Errorf("window in the past: %v", err)
	}
	m, err := Schedule("db upgrade", "m", t0.Add(time.Hour), t0.Add(2*time.Hour), []int64{1}, "x", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Due(t0); ok {
		t.Error("due before its start")
	}
	next, ok := m.Due(t0.Add(3 * time.Hour)) // whole window passed: started first
	if !ok || next != MaintenanceInProgress {
		t.Fatalf("due %s %v", next, ok)
	}
	u, err := m.Move(next, "", nil, "scheduler", t0.Add(3*time.Hour))
	if err != nil || u.Body == "" {
		t.Fatal(err, u)
	}
	if n, ok := MaintenanceNotification(m, u, t0); !ok || n.Kind != KindMaintenanceStarted {
		t.Errorf("start notification %v %v", n.Kind, ok)
	}
	if next, ok = m.Due(t0.Add(3 * time.Hour)); !ok || next != MaintenanceCompleted {
		t.Fatalf("due %s %v", next, ok)
	}
	u, _ = m.Move(next, "", nil, "scheduler", t0.Add(3*time.Hour))
	if n, ok := MaintenanceNotification(m, u, t0); !ok || n.Kind != KindMaintenanceCompleted || m.CompletedAt == nil {
		t.Errorf("end notification %v %v", n.Kind, ok)
	}
	if _, ok := m.Due(t0.Add(30 * time.Hour)); ok {
		t.Error("completed maintenance still due")
	}
}

// TestResolveChanges: resolving without naming components sends every
// component the incident changed back to operational, and no other.
func TestResolveChanges(t *testing.T) {
	inc := Incident{Components: []int64{3, 7}}
	got := inc.ResolveChanges()
	if len(got) != 2 || got[0] != (ComponentChange{ComponentID: 3, NewStatus: Operational}) || got[1] != (ComponentChange{ComponentID: 7, NewStatus: Operational}) {
		t.Fatalf("ResolveChanges = %+v", got)
	}
	if got := (Incident{}).ResolveChanges(); len(got) != 0 {
		t.Fatalf("no components: %+v", got)
	}
}
