package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestIncidentStore runs the incident store tests on SQLite and PostgreSQL.
func TestIncidentStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *sqlstore.Store)
	}{
		{"Lifecycle", testIncidentLifecycle},
		{"ReleaseTies", testIncidentReleaseTies},
		{"MaintenanceSchedule", testMaintenanceSchedule},
	}
	t.Run("sqlite", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.fn(t, mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db")))
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		c := pgtest.New(t)
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("incidents%d", i)
				c.CreateDatabase(name)
				tc.fn(t, mustOpen(t, c.DSN(name)))
			})
		}
	})
}

// notificationKinds returns the kinds of every notification recorded.
func notificationKinds(t *testing.T, s *sqlstore.Store) []incident.NotificationKind {
	t.Helper()
	ns := check(s.StatusNotificationsAfter(context.Background(), 0, 1000))(t)
	var kinds []incident.NotificationKind
	var last int64
	for _, n := range ns {
		if n.ID <= last {
			t.Fatalf("notification ids not increasing: %d after %d", n.ID, last)
		}
		last = n.ID
		kinds = append(kinds, n.Kind)
	}
	return kinds
}

func testIncidentLifecycle(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	api := check(s.CreateComponent(ctx, "alice", incident.Component{Name: "API", Group: "Cloud"}))(t)
	check(s.CreateComponent(ctx, "alice", incident.Component{Name: "Check-ins", Group: "Cloud"}))(t)
	check(s.CreateComponent(ctx, "alice", incident.Component{Name: "Docs"}))(t)
	if _, err := s.CreateComponent(ctx, "alice", incident.Component{Name: "API"}); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("duplicate component: %v", err)
	}
	comps := check(s.ListComponents(ctx))(t)
	if len(comps) != 3 || comps[0].Name != "API" || comps[0].Group != "Cloud" || comps[1].Name != "Check-ins" || comps[2].Name != "Docs" {
		t.Fatalf("components %+v", comps)
	}

	d := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "API errors", Impact: incident.ImpactMajor,
		Status: incident.StatusInvestigating, Message: "We are looking", Notify: true,
		Components: []incident.ComponentChange{{Name: "API", NewStatus: incident.MajorOutage}}}))(t)
	if d.ID == 0 || d.Severity != "SEV3" || len(d.Updates) != 1 || d.Updates[0].ID == 0 || d.Components[0] != api.ID {
		t.Fatalf("declared %+v", d)
	}
	draft := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "Maybe", Impact: incident.ImpactMinor,
		Status: incident.StatusInvestigating, Message: "quiet", Draft: true, Notify: true}))(t)
	if got := notificationKinds(t, s); !slices.Equal(got, []incident.NotificationKind{incident.KindIncidentCreated}) {
		t.Errorf("after a published and a draft declaration: %v", got)
	}
	page := check(s.StatusPage(ctx, time.Now()))(t)
	if len(page.Unresolved) != 1 || page.Unresolved[0].ID != d.ID || page.Components[0].Status != incident.MajorOutage {
		t.Fatalf("page unresolved %+v components %+v", page.Unresolved, page.Components)
	}
	if ind, _ := page.Status(); ind != incident.IndicatorCritical {
		t.Errorf("indicator %s", ind)
	}
	if h := page.History[0].Days; len(h) != incident.HistoryDays || h[len(h)-1].Worst != incident.MajorOutage || !slices.Equal(h[len(h)-1].Incidents, []int64{d.ID}) {
		t.Errorf("today's history %+v", h[len(h)-1])
	}

	check(s.UpdateIncident(ctx, "bob", d.ID, incident.Change{Status: incident.StatusIdentified, Message: "cause found", Notify: false}))(t)
	check(s.UpdateIncident(ctx, "bob", d.ID, incident.Change{Status: incident.StatusMonitoring, Message: "fixed", Notify: true,
		Components: []incident.ComponentChange{{Name: "API", NewStatus: incident.DegradedPerformance}}}))(t)
	if latest := check(s.LatestIncidentID(ctx))(t); latest != draft.ID {
		t.Errorf("latest open incident %d, want the draft %d", latest, draft.ID)
	}
	res := check(s.UpdateIncident(ctx, "bob", d.ID, incident.Change{Status: incident.StatusResolved, Message: "all good", Notify: true}))(t)
	if res.Status != incident.StatusResolved || res.ResolvedAt == nil || len(res.Updates) != 4 {
		t.Fatalf("resolved %+v", res)
	}
	if ch := res.Updates[0].Components; len(ch) != 1 || ch[0].OldStatus != incident.DegradedPerformance || ch[0].NewStatus != incident.Operational {
		t.Errorf("resolve did not return API to operational: %+v", ch)
	}
	if _, err := s.UpdateIncident(ctx, "bob", d.ID, incident.Change{Status: incident.StatusInvestigating, Message: "again"}); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("reopen: %v, want conflict", err)
	}
	if _, err := s.SetPostmortem(ctx, "bob", draft.ID, "x"); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("postmortem of an open incident: %v", err)
	}
	pm := check(s.SetPostmortem(ctx, "bob", d.ID, "# What happened"))(t)
	if pm.Status != incident.StatusPostmortem || pm.Postmortem != "# What happened" {
		t.Errorf("postmortem %+v", pm)
	}
	check(s.PublishIncident(ctx, "alice", draft.ID))(t)
	if _, err := s.PublishIncident(ctx, "alice", draft.ID); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("second publish: %v", err)
	}
	check(s.SetComponentStatus(ctx, "alice", "Docs", incident.PartialOutage, "CDN"))(t)
	check(s.SetComponentStatus(ctx, "alice", "Docs", incident.PartialOutage, "again, no change"))(t)
	want := []incident.NotificationKind{incident.KindIncidentCreated, incident.KindIncidentUpdated, incident.KindIncidentResolved,
		incident.KindIncidentUpdated, incident.KindIncidentCreated, incident.KindComponentStatus}
	if got := notificationKinds(t, s); !slices.Equal(got, want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
	ns := check(s.StatusNotificationsAfter(ctx, 0, 2))(t)
	rest := check(s.StatusNotificationsAfter(ctx, ns[1].ID, 100))(t)
	if len(ns) != 2 || len(rest) != 4 || rest[0].Incident == nil || rest[0].Incident.Status != incident.StatusResolved {
		t.Errorf("paging notifications: %d then %d", len(ns), len(rest))
	}
	audit := check(s.ListAudit(ctx, 0, 100))(t)
	actions := map[string]bool{}
	for _, e := range audit {
		actions[e.Action] = true
	}
	for _, a := range []string{"component.create", "incident.declare", "incident.update", "incident.resolve", "incident.postmortem", "incident.publish", "component.set_status"} {
		if !actions[a] {
			t.Errorf("no %s in the audit log", a)
		}
	}
	// The template and the configuration.
	check(s.SaveTemplate(ctx, "alice", incident.Template{Name: "db", Title: "Database slow", Body: "Investigating.", Severity: "SEV2"}))(t)
	if got := check(s.GetTemplate(ctx, "db"))(t); got.Severity != "SEV2" {
		t.Errorf("template %+v", got)
	}
	cfg := incident.DefaultConfig()
	cfg.Severities[0].Description = "Everything is on fire"
	check(s.SetIncidentConfig(ctx, "alice", cfg))(t)
	if got := check(s.IncidentConfig(ctx))(t); got.Severities[0].Description != "Everything is on fire" {
		t.Errorf("config %+v", got)
	}
	cfg.Severities = cfg.Severities[:2] // SEV3 is carried by incidents
	cfg.Policy.AutoHalt.Severity, cfg.Policy.Pull.Severity = "SEV1", "SEV1"
	if _, err := s.SetIncidentConfig(ctx, "alice", cfg); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("dropping a severity in use: %v", err)
	}
}

func testIncidentReleaseTies(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}))(t)
	for _, v := range []string{"3.29.0", "3.30.0", "3.30.1", "3.30.2", "3.30.3"} {
		check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: release.MustParseVersion(v)}))(t)
	}
	// A SEV2 naming a release pauses it; a SEV3 does not.
	sev3 := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "odd", Impact: incident.ImpactMinor, Severity: "SEV3",
		Status: incident.StatusInvestigating, Message: "m", Releases: []incident.ReleaseRef{{Product: "acme", Version: "3.30.1"}}}))(t)
	if len(sev3.PausedReleases) != 0 || check(s.GetRelease(ctx, "acme", release.MustParseVersion("3.30.1")))(t).Status != release.StatusOK {
		t.Errorf("a SEV3 paused a release")
	}
	sev2 := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "indexes corrupt", Impact: incident.ImpactMajor, Severity: "SEV2",
		Status: incident.StatusInvestigating, Message: "m", Releases: []incident.ReleaseRef{{Product: "acme", Version: "3.30.0"}}}))(t)
	r := check(s.GetRelease(ctx, "acme", release.MustParseVersion("3.30.0")))(t)
	if !slices.Equal(sev2.PausedReleases, []string{"acme@3.30.0"}) || r.Status != release.StatusPaused || r.Paused.Reason == "" {
		t.Errorf("SEV2 declared: paused %v, release %+v", sev2.PausedReleases, r)
	}
	if _, err := s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "x", Impact: incident.ImpactMajor, Severity: "SEV1",
		Status: incident.StatusInvestigating, Message: "m", Releases: []incident.ReleaseRef{{Product: "acme", Version: "9.9.9"}}}); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("unknown release: %v", err)
	}
	// A pull naming the incident links it; a pull naming none opens one.
	pulled := check(s.PullRelease(ctx, "bob", "acme", release.MustParseVersion("3.30.0"),
		release.Pull{Reason: "corrupts indexes", Action: release.ActionUpgrade, Target: release.MustParseVersion("3.30.3"), By: "bob"}, sev2.ID))(t)
	if pulled.IncidentID != sev2.ID || pulled.IncidentOpened || pulled.Status != release.StatusPulled {
		t.Errorf("pull linking %d: %+v", sev2.ID, pulled)
	}
	opened := check(s.PullRelease(ctx, "bob", "acme", release.MustParseVersion("3.30.2"),
		release.Pull{Reason: "same bug", Action: release.ActionUpgrade, Target: release.MustParseVersion("3.30.3"), By: "bob"}, 0))(t)
	if !opened.IncidentOpened || opened.IncidentID == 0 {
		t.Fatalf("pull opened no incident: %+v", opened)
	}
	inc := check(s.GetIncident(ctx, opened.IncidentID))(t)
	if inc.Draft || inc.Impact != incident.ImpactMajor || len(inc.Releases) != 1 || inc.Releases[0].String() != "acme@3.30.2" {
		t.Errorf("incident the pull opened: %+v", inc)
	}
	if _, err := s.PullRelease(ctx, "bob", "acme", release.MustParseVersion("3.30.1"),
		release.Pull{Reason: "x", Action: release.ActionHold, By: "bob"}, 999); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("pull linking an unknown incident: %v", err)
	}
	if r := check(s.GetRelease(ctx, "acme", release.MustParseVersion("3.30.1")))(t); r.Status != release.StatusOK {
		t.Errorf("the failed pull left %s", r.Status)
	}
	page := check(s.StatusPage(ctx, time.Now()))(t)
	if len(page.Pulled) != 1 || !slices.Equal(page.Pulled[0].Versions, []string{"3.30.0", "3.30.2"}) || page.Pulled[0].Target != "3.30.3" ||
		!slices.Equal(page.Pulled[0].Incidents, []int64{sev2.ID, opened.IncidentID}) {
		t.Errorf("pulled notices %+v", page.Pulled)
	}
	// Auto-halt opens a draft naming the release.
	before := len(check(s.StatusNotificationsAfter(ctx, 0, 1000))(t))
	halted, _ := check2(s.AutoHalt(ctx, "acme", release.MustParseVersion("3.30.3"), release.Evidence{Reason: "3 of 4 failed", Since: time.Now().Add(-time.Hour)}, nil))(t)
	if !halted {
		t.Fatal("not halted")
	}
	incs := check(s.ListIncidents(ctx, true, 10))(t)
	if len(incs) == 0 || !incs[0].Draft || incs[0].By != sqlstore.ActorAutoHalt || incs[0].Releases[0].String() != "acme@3.30.3" {
		t.Errorf("auto-halt incident %+v", incs[0])
	}
	if after := len(check(s.StatusNotificationsAfter(ctx, 0, 1000))(t)); after != before {
		t.Errorf("a draft notified: %d → %d", before, after)
	}
}

func testMaintenanceSchedule(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateComponent(ctx, "alice", incident.Component{Name: "DB"}))(t)
	start := time.Now().Add(time.Hour)
	m := check(s.ScheduleMaintenance(ctx, "alice", "DB upgrade", "We upgrade PostgreSQL", start, start.Add(time.Hour), []string{"DB"}))(t)
	other := check(s.ScheduleMaintenance(ctx, "alice", "Later", "m", start.Add(24*time.Hour), start.Add(25*time.Hour), nil))(t)
	if n := check(s.RunMaintenanceSchedule(ctx, time.Now()))(t); n != 0 {
		t.Errorf("%d transitions before the window", n)
	}
	if n := check(s.RunMaintenanceSchedule(ctx, start.Add(time.Minute)))(t); n != 1 {
		t.Errorf("%d transitions at the start", n)
	}
	if c := check(s.ListComponents(ctx))(t); c[0].Status != incident.UnderMaintenance {
		t.Errorf("component during maintenance: %s", c[0].Status)
	}
	if n := check(s.RunMaintenanceSchedule(ctx, start.Add(time.Minute)))(t); n != 0 {
		t.Errorf("%d transitions on a second run", n)
	}
	if n := check(s.RunMaintenanceSchedule(ctx, start.Add(2*time.Hour)))(t); n != 1 {
		t.Errorf("%d transitions at the end", n)
	}
	done := check(s.GetMaintenance(ctx, m.ID))(t)
	if done.Status != incident.MaintenanceCompleted || done.StartedAt == nil || done.CompletedAt == nil || len(done.Updates) != 3 {
		t.Errorf("completed maintenance %+v", done)
	}
	if c := check(s.ListComponents(ctx))(t); c[0].Status != incident.Operational {
		t.Errorf("component after maintenance: %s", c[0].Status)
	}
	check(s.MoveMaintenance(ctx, "alice", other.ID, incident.MaintenanceCancelled, "not needed"))(t)
	if _, err := s.MoveMaintenance(ctx, "alice", other.ID, incident.MaintenanceInProgress, ""); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("start a cancelled maintenance: %v", err)
	}
	want := []incident.NotificationKind{incident.KindMaintenanceScheduled, incident.KindMaintenanceScheduled, incident.KindMaintenanceStarted,
		incident.KindMaintenanceCompleted, incident.KindMaintenanceCompleted}
	if got := notificationKinds(t, s); !slices.Equal(got, want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
	page := check(s.StatusPage(ctx, time.Now()))(t)
	if len(page.Maintenances) != 2 {
		t.Errorf("page maintenances %+v", page.Maintenances)
	}
}
