package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestIncidentStore runs the incident store tests on SQLite and PostgreSQL.
func TestIncidentStore(t *testing.T) {
	onBothDialects(t, "incidents", []storeTest{
		{"Lifecycle", withStore(testIncidentLifecycle)},
		{"ReleaseTies", withStore(testIncidentReleaseTies)},
		{"MaintenanceSchedule", withStore(testMaintenanceSchedule)},
		{"ConcurrentChanges", withStore(testConcurrentIncidentChanges)},
		{"Roles", withStore(testIncidentRoles)},
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
	quiet := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "Quiet", Impact: incident.ImpactNone,
		Status: incident.StatusMonitoring, Message: "no need to tell anyone", Notify: false}))(t)
	if got := notificationKinds(t, s); !slices.Equal(got, []incident.NotificationKind{incident.KindIncidentCreated}) {
		t.Errorf("after a published, a draft and an unnotified declaration: %v", got)
	}
	check(s.UpdateIncident(ctx, "alice", quiet.ID, incident.Change{Status: incident.StatusResolved, Message: "done", Notify: false}))(t)
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
	// Pruning keeps each component's last status before the cutoff.
	if n := check(s.PruneStatusHistory(ctx, time.Now().Add(time.Hour)))(t); n == 0 {
		t.Error("pruned nothing")
	}
	if ns := check(s.StatusNotificationsAfter(ctx, 0, 100))(t); len(ns) != 0 {
		t.Errorf("%d notifications left after pruning", len(ns))
	}
	page = check(s.StatusPage(ctx, time.Now().Add(2*time.Hour)))(t)
	for n, c := range page.Components {
		days := page.History[n].Days
		if got := days[len(days)-1].Worst; got != c.Status {
			t.Errorf("%s after pruning: today's worst %s, status %s", c.Name, got, c.Status)
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
	// Raising the SEV3 to SEV2 pauses the release it names.
	check(s.UpdateIncident(ctx, "alice", sev3.ID, incident.Change{Status: incident.StatusIdentified, Message: "worse", Severity: "SEV2"}))(t)
	if r := check(s.GetRelease(ctx, "acme", release.MustParseVersion("3.30.1")))(t); r.Status != release.StatusPaused {
		t.Errorf("escalation to SEV2 left the release %s", r.Status)
	}
	if _, err := s.UpdateIncident(ctx, "alice", sev3.ID, incident.Change{Status: incident.StatusIdentified, Message: "x", Severity: "SEV7"}); incident.ErrorCode(err) != incident.EINVALID {
		t.Errorf("unknown severity in an update: %v", err)
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
	// A policy that publishes: the incident is public and notified at once;
	// one that opens none: none.
	cfg := incident.DefaultConfig()
	cfg.Policy.AutoHalt.Publish, cfg.Policy.AutoHalt.Severity = true, "SEV1"
	check(s.SetIncidentConfig(ctx, "alice", cfg))(t)
	check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: release.MustParseVersion("3.31.0")}))(t)
	check2(s.AutoHalt(ctx, "acme", release.MustParseVersion("3.31.0"), release.Evidence{Reason: "r", Since: time.Now().Add(-time.Hour)}, nil))(t)
	ns := check(s.StatusNotificationsAfter(ctx, 0, 1000))(t)
	if last := ns[len(ns)-1]; len(ns) != before+1 || last.Kind != incident.KindIncidentCreated || last.Incident.Severity != "SEV1" ||
		last.Incident.Releases[0].String() != "acme@3.31.0" {
		t.Errorf("published auto-halt incident: %d notifications, last %+v", len(ns), last)
	}
	cfg.Policy.AutoHalt.Open = false
	check(s.SetIncidentConfig(ctx, "alice", cfg))(t)
	open := len(check(s.ListIncidents(ctx, true, 100))(t))
	check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: release.MustParseVersion("3.32.0")}))(t)
	if halted, _ := check2(s.AutoHalt(ctx, "acme", release.MustParseVersion("3.32.0"), release.Evidence{Reason: "r", Since: time.Now().Add(-time.Hour)}, nil))(t); !halted {
		t.Fatal("not halted")
	}
	if n := len(check(s.ListIncidents(ctx, true, 100))(t)); n != open {
		t.Errorf("auto-halt opened an incident against the policy: %d → %d", open, n)
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

// testConcurrentIncidentChanges runs updates naming the same components in
// opposite orders, escalations pausing a release and pulls linking the same
// incidents at once: none fails (no deadlock), and a reader following the
// notifications with a cursor while they commit misses none.
func testConcurrentIncidentChanges(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}))(t)
	const rounds = 15
	for i := range rounds + 1 {
		check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: release.MustParseVersion(fmt.Sprintf("1.0.%d", i))}))(t)
	}
	check(s.CreateComponent(ctx, "alice", incident.Component{Name: "A"}))(t)
	check(s.CreateComponent(ctx, "alice", incident.Component{Name: "B"}))(t)
	var ids [2]int64
	for n := range ids {
		ids[n] = check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "t", Impact: incident.ImpactMinor, Severity: "SEV3",
			Status: incident.StatusInvestigating, Message: "m", Notify: true,
			Releases: []incident.ReleaseRef{{Product: "acme", Version: "1.0.0"}}}))(t).ID
	}
	// last receives the highest id once every writer is done: the reader
	// reads until its cursor reaches it.
	last := make(chan int64, 1)
	seen := map[int64]bool{}
	readerErr := make(chan error, 1)
	go func() {
		var cursor int64
		until := int64(-1)
		for {
			select {
			case until = <-last:
			default:
			}
			if until >= 0 && cursor >= until {
				readerErr <- nil
				return
			}
			ns, err := s.StatusNotificationsAfter(ctx, cursor, 100)
			if err != nil {
				readerErr <- err
				return
			}
			for _, n := range ns {
				seen[n.ID], cursor = true, n.ID
			}
		}
	}()
	errs := make(chan error, 5*rounds)
	var wg sync.WaitGroup
	for i := range rounds {
		wg.Add(5)
		for range 2 { // declarations share no lock but the notifications'
			go func() {
				defer wg.Done()
				_, err := s.DeclareIncident(ctx, "w", incident.Declaration{Title: "t", Impact: incident.ImpactNone,
					Status: incident.StatusInvestigating, Message: strings.Repeat("m", 1000*(i+1)), Notify: true})
				errs <- err
			}()
		}
		go func() {
			defer wg.Done()
			_, err := s.UpdateIncident(ctx, "x", ids[0], incident.Change{Status: incident.StatusIdentified, Message: "ab", Notify: true,
				Components: []incident.ComponentChange{{Name: "A", NewStatus: incident.ComponentStatuses()[i%5]}, {Name: "B", NewStatus: incident.PartialOutage}}})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			sev := incident.Severity("SEV2")
			if i%2 == 0 {
				sev = "SEV3"
			}
			_, err := s.UpdateIncident(ctx, "y", ids[1], incident.Change{Status: incident.StatusIdentified, Message: "ba", Notify: true, Severity: sev,
				Components: []incident.ComponentChange{{Name: "B", NewStatus: incident.ComponentStatuses()[i%5]}, {Name: "A", NewStatus: incident.MajorOutage}}})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.PullRelease(ctx, "z", "acme", release.MustParseVersion(fmt.Sprintf("1.0.%d", i+1)),
				release.Pull{Reason: "r", Action: release.ActionHold, By: "z"}, ids[i%2])
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent change: %v", err)
		}
	}
	all := check(s.StatusNotificationsAfter(ctx, 0, 10000))(t)
	last <- all[len(all)-1].ID
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if !seen[n.ID] {
			t.Errorf("the cursor skipped notification %d", n.ID)
		}
	}
	if len(all) != 2+4*rounds {
		t.Errorf("%d notifications, want %d", len(all), 2+4*rounds)
	}
}

// testIncidentRoles: who holds which role is stored, replaced at a
// hand-over and audited with the previous holder; it is staff-only: the
// status page and the notifications subscribers are sent carry none, and
// the incident's public updated_at does not move.
func testIncidentRoles(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	d := check(s.DeclareIncident(ctx, "alice", incident.Declaration{Title: "Upgrades fail", Impact: incident.ImpactMajor,
		Status: incident.StatusInvestigating, Message: "Looking", Notify: true}))(t)
	check(s.AssignRole(ctx, "alice", d.ID, incident.RoleCommander, "Alice Arbour"))(t)
	check(s.AssignRole(ctx, "alice", d.ID, incident.RoleScribe, "Carol"))(t)
	inc := check(s.AssignRole(ctx, "alice", d.ID, incident.RoleCommander, "Bob Brandt"))(t)
	if inc.Holder(incident.RoleCommander) != "Bob Brandt" || len(inc.Roles) != 2 {
		t.Fatalf("roles after the hand-over %+v", inc.Roles)
	}
	check(s.AssignRole(ctx, "alice", d.ID, incident.RoleCommander, "Bob Brandt"))(t) // again: nothing
	check(s.AssignRole(ctx, "bob", d.ID, incident.RoleScribe, ""))(t)
	got := check(s.GetIncident(ctx, d.ID))(t)
	if len(got.Roles) != 1 || got.Roles[0].Role != incident.RoleCommander || got.Roles[0].Who != "Bob Brandt" || got.Roles[0].By != "alice" {
		t.Fatalf("stored roles %+v", got.Roles)
	}
	if !got.UpdatedAt.Equal(d.UpdatedAt) {
		t.Errorf("updated_at moved from %s to %s on a role change", d.UpdatedAt, got.UpdatedAt)
	}
	if list := check(s.ListIncidents(ctx, true, 10))(t); len(list) != 1 || list[0].Holder(incident.RoleCommander) != "Bob Brandt" {
		t.Errorf("listed %+v", list)
	}
	var reasons []string
	for _, e := range check(s.ListAudit(ctx, 0, 100))(t) {
		if e.Action == "incident.assign" {
			reasons = append(reasons, e.Reason)
		}
	}
	slices.Reverse(reasons) // newest first in the log
	want := []string{"commander: nobody → Alice Arbour", "scribe: nobody → Carol", "commander: Alice Arbour → Bob Brandt", "scribe: Carol → nobody"}
	if !slices.Equal(reasons, want) {
		t.Errorf("audit reasons %q, want %q", reasons, want)
	}
	if _, err := s.AssignRole(ctx, "alice", d.ID+100, incident.RoleCommander, "x"); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("assign on an unknown incident: %v", err)
	}

	// Public: the page and what subscribers get.
	check(s.UpdateIncident(ctx, "bob", d.ID, incident.Change{Status: incident.StatusIdentified, Message: "Found it", Notify: true}))(t)
	page := check(s.StatusPage(ctx, time.Now()))(t)
	if len(page.Unresolved) != 1 || len(page.Unresolved[0].Roles) != 0 {
		t.Errorf("the status page's incident carries roles: %+v", page.Unresolved)
	}
	for _, n := range check(s.StatusNotificationsAfter(ctx, 0, 1000))(t) {
		if b, _ := json.Marshal(n); strings.Contains(string(b), "Bob Brandt") || strings.Contains(string(b), "Alice Arbour") {
			t.Errorf("notification %s names a role holder: %s", n.Kind, b)
		}
	}
}
