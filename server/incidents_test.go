package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sqlstore"
)

func TestIncidentLifecycleSQLite(t *testing.T) {
	incidentLifecycle(t, servertest.SQLite(t))
}

// TestIncidentsPostgres runs the PostgreSQL side of the incident tests on
// one cluster, a database each.
func TestIncidentsPostgres(t *testing.T) {
	c := pgtest.New(t)
	db := func(name string) string {
		c.CreateDatabase(name)
		return c.DSN(name)
	}
	t.Run("Lifecycle", func(t *testing.T) { incidentLifecycle(t, db("lifecycle")) })
	t.Run("MaintenanceTwoServers", func(t *testing.T) { maintenanceTwoServers(t, db("maint")) })
}

// kinds returns the kinds of the status notifications recorded so far.
func kinds(t *testing.T, s *sqlstore.Store) []incident.NotificationKind {
	t.Helper()
	ns, err := s.StatusNotificationsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []incident.NotificationKind
	for _, n := range ns {
		out = append(out, n.Kind)
	}
	return out
}

// incidentLifecycle walks an incident's whole life through the admin API:
// declared SEV2 naming a release (which pauses it), updated, an illegal move
// refused, resolved, postmortem; a draft stays off the page and notifies
// no one until published; maintenance started by the scheduler.
func incidentLifecycle(t *testing.T, dsn string) {
	e := startServer(t, dsn, server.Config{MaintenanceInterval: 20 * time.Millisecond})
	oncall := e.token("oncall", release.RoleIncident)
	viewer := e.token("viewer", release.RoleViewer)
	const p = "/api/v1/products/acme"
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil)
	e.api("POST", p+"/releases", map[string]any{"version": "3.30.0"}, http.StatusCreated, nil)

	e.apiAs(oncall, "POST", "/api/v1/components", map[string]any{"name": "API", "group": "Cloud"}, http.StatusCreated, nil)
	e.apiAs(oncall, "POST", "/api/v1/components", map[string]any{"name": "Console", "group": "Cloud"}, http.StatusCreated, nil)
	e.apiAs(oncall, "POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusConflict, nil)
	e.apiAs(viewer, "POST", "/api/v1/components", map[string]any{"name": "X"}, http.StatusForbidden, nil)

	var d struct {
		incident.Incident
		PausedReleases []string `json:"paused_releases"`
	}
	e.apiAs(oncall, "POST", "/api/v1/incidents", map[string]any{"title": "Indexes corrupt", "impact": "major", "severity": "SEV2",
		"message": "Investigating corrupt indexes after upgrading to 3.30.0.", "releases": []string{"acme@3.30.0"},
		"components": []map[string]string{{"name": "API", "status": "partial_outage"}}}, http.StatusCreated, &d)
	if d.Status != incident.StatusInvestigating || !slices.Equal(d.PausedReleases, []string{"acme@3.30.0"}) {
		t.Fatalf("declared %+v", d)
	}
	var rel release.Release
	e.apiAs(viewer, "GET", p+"/releases/3.30.0", nil, http.StatusOK, &rel)
	if rel.Status != release.StatusPaused || !strings.Contains(rel.Paused.Reason, fmt.Sprintf("incident %d (SEV2)", d.ID)) {
		t.Fatalf("release after the SEV2: %+v", rel)
	}
	pauses := e.auditEntries("release.pause")
	if len(pauses) != 1 || !strings.Contains(pauses[0].Reason, "Indexes corrupt") {
		t.Errorf("pause audit %+v", pauses)
	}
	id := fmt.Sprint(d.ID)
	e.apiAs(oncall, "POST", "/api/v1/incidents/"+id+"/updates", map[string]any{"status": "fixed", "message": "x"}, http.StatusBadRequest, nil)
	e.apiAs(oncall, "POST", "/api/v1/incidents/"+id+"/updates", map[string]any{"status": "identified", "message": "Cause found.", "notify": false}, http.StatusCreated, nil)
	e.apiAs(oncall, "POST", "/api/v1/incidents/latest/updates", map[string]any{"status": "monitoring", "message": "Fix out.",
		"components": []map[string]string{{"name": "Nope", "status": "operational"}}}, http.StatusNotFound, nil)
	e.apiAs(oncall, "POST", "/api/v1/incidents/latest/updates", map[string]any{"status": "monitoring", "message": "Fix out."}, http.StatusCreated, nil)
	e.apiAs(oncall, "PUT", "/api/v1/incidents/"+id+"/postmortem", map[string]any{"postmortem": "early"}, http.StatusConflict, nil)
	var res incident.Incident
	e.apiAs(oncall, "POST", "/api/v1/incidents/"+id+"/resolve", map[string]any{"message": "Resolved."}, http.StatusOK, &res)
	if res.Status != incident.StatusResolved || len(res.Updates) != 4 || res.Updates[0].Components[0].NewStatus != incident.Operational {
		t.Fatalf("resolved %+v", res)
	}
	e.apiAs(oncall, "POST", "/api/v1/incidents/"+id+"/resolve", map[string]any{"message": "again"}, http.StatusConflict, nil)
	e.apiAs(oncall, "POST", "/api/v1/incidents/"+id+"/updates", map[string]any{"status": "investigating", "message": "back"}, http.StatusConflict, nil)
	e.apiAs(oncall, "PUT", "/api/v1/incidents/"+id+"/postmortem", map[string]any{"postmortem": "# What happened"}, http.StatusOK, nil)
	e.apiAs(viewer, "GET", "/api/v1/incidents/999", nil, http.StatusNotFound, nil)
	e.apiAs(viewer, "GET", "/api/v1/incidents/abc", nil, http.StatusBadRequest, nil)

	// A draft: off the page, silent until published.
	var draft incident.Incident
	e.apiAs(oncall, "POST", "/api/v1/incidents", map[string]any{"title": "Maybe slow", "impact": "minor", "message": "Looking.", "draft": true}, http.StatusCreated, &draft)
	page, err := e.Store.StatusPage(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Unresolved) != 0 || len(page.Incidents) != 1 {
		t.Fatalf("page with a draft: unresolved %d, incidents %d", len(page.Unresolved), len(page.Incidents))
	}
	want := []incident.NotificationKind{incident.KindIncidentCreated, incident.KindIncidentUpdated, incident.KindIncidentResolved, incident.KindIncidentUpdated}
	if got := kinds(t, e.Store); !slices.Equal(got, want) {
		t.Fatalf("notifications %v, want %v", got, want)
	}
	e.apiAs(oncall, "POST", fmt.Sprintf("/api/v1/incidents/%d/publish", draft.ID), map[string]any{}, http.StatusOK, nil)
	e.apiAs(oncall, "POST", fmt.Sprintf("/api/v1/incidents/%d/publish", draft.ID), map[string]any{}, http.StatusConflict, nil)
	if got := kinds(t, e.Store); len(got) != 5 || got[4] != incident.KindIncidentCreated {
		t.Fatalf("after publishing: %v", got)
	}
	var list []incident.Incident
	e.apiAs(viewer, "GET", "/api/v1/incidents?unresolved=true", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != draft.ID {
		t.Fatalf("unresolved list %+v", list)
	}

	// Maintenance whose window has begun is started by the scheduler.
	var m incident.Maintenance
	e.apiAs(oncall, "POST", "/api/v1/maintenances", map[string]any{"title": "DB upgrade", "message": "Upgrading PostgreSQL.",
		"start": time.Now().Add(-time.Minute), "end": time.Now().Add(time.Hour), "components": []string{"Console"}}, http.StatusCreated, &m)
	path := fmt.Sprintf("/api/v1/maintenances/%d", m.ID)
	servertest.Eventually(t, 5*time.Second, "scheduler starts the maintenance", func() bool {
		e.apiAs(viewer, "GET", path, nil, http.StatusOK, &m)
		return m.Status == incident.MaintenanceInProgress
	})
	e.apiAs(oncall, "POST", path+"/status", map[string]any{"status": "cancelled"}, http.StatusConflict, nil)
	e.apiAs(oncall, "POST", path+"/status", map[string]any{"status": "verifying"}, http.StatusOK, nil)
	e.apiAs(oncall, "POST", path+"/status", map[string]any{"status": "completed", "message": "Done early."}, http.StatusOK, &m)
	if m.Status != incident.MaintenanceCompleted || m.Updates[0].Body != "Done early." {
		t.Fatalf("completed maintenance %+v", m)
	}
	var comps []incident.Component
	e.apiAs(viewer, "GET", "/api/v1/components", nil, http.StatusOK, &comps)
	if comps[1].Name != "Console" || comps[1].Status != incident.Operational {
		t.Fatalf("components after maintenance %+v", comps)
	}
	if got := kinds(t, e.Store)[5:]; !slices.Equal(got, []incident.NotificationKind{incident.KindMaintenanceScheduled,
		incident.KindMaintenanceStarted, incident.KindMaintenanceCompleted}) {
		t.Fatalf("maintenance notifications %v", got)
	}
	for _, a := range []string{"incident.declare", "incident.update", "incident.resolve", "incident.postmortem", "incident.publish",
		"maintenance.schedule", "maintenance.in_progress", "maintenance.verifying", "maintenance.completed"} {
		if len(e.auditEntries(a)) == 0 {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

// TestMaintenanceAfterRestart: a window that began and ended while no
// server ran is started and completed, both notified, when one starts.
func TestMaintenanceAfterRestart(t *testing.T) {
	dsn := servertest.SQLite(t)
	var m incident.Maintenance
	var end time.Time
	t.Run("scheduled, then the server stops", func(t *testing.T) {
		e := startServer(t, dsn, server.Config{MaintenanceInterval: time.Hour})
		e.api("POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusCreated, nil)
		end = time.Now().Add(3 * time.Second) // time to schedule it on a loaded machine
		e.api("POST", "/api/v1/maintenances", map[string]any{"title": "Upgrade", "message": "m", "start": time.Now().Add(-time.Minute),
			"end": end, "components": []string{"API"}}, http.StatusCreated, &m)
	})
	time.Sleep(time.Until(end)) // the whole window passes with no server running
	e := startServer(t, dsn, server.Config{MaintenanceInterval: time.Hour})
	servertest.Eventually(t, 5*time.Second, "maintenance completed at start", func() bool {
		e.api("GET", fmt.Sprintf("/api/v1/maintenances/%d", m.ID), nil, http.StatusOK, &m)
		return m.Status == incident.MaintenanceCompleted
	})
	if got := kinds(t, e.Store); !slices.Equal(got, []incident.NotificationKind{incident.KindMaintenanceScheduled,
		incident.KindMaintenanceStarted, incident.KindMaintenanceCompleted}) {
		t.Errorf("notifications %v", got)
	}
	if len(m.Updates) != 3 || m.StartedAt == nil || m.CompletedAt == nil {
		t.Errorf("maintenance %+v", m)
	}
}

// maintenanceTwoServers: two servers on one PostgreSQL database run the
// scheduler; each transition is made, notified and audited once.
func maintenanceTwoServers(t *testing.T, dsn string) {
	cfg := server.Config{MaintenanceInterval: 10 * time.Millisecond}
	a := startServer(t, dsn, cfg)
	startServer(t, dsn, cfg)
	var m incident.Maintenance
	a.api("POST", "/api/v1/maintenances", map[string]any{"title": "Upgrade", "message": "m", "start": time.Now(),
		"end": time.Now().Add(2 * time.Second)}, http.StatusCreated, &m)
	servertest.Eventually(t, 5*time.Second, "maintenance completed", func() bool {
		a.api("GET", fmt.Sprintf("/api/v1/maintenances/%d", m.ID), nil, http.StatusOK, &m)
		return m.Status == incident.MaintenanceCompleted
	})
	time.Sleep(100 * time.Millisecond) // ten more scheduler rounds on each server
	if got := kinds(t, a.Store); !slices.Equal(got, []incident.NotificationKind{incident.KindMaintenanceScheduled,
		incident.KindMaintenanceStarted, incident.KindMaintenanceCompleted}) {
		t.Errorf("notifications %v", got)
	}
	if n := len(a.auditEntries("maintenance.in_progress")); n != 1 {
		t.Errorf("%d start audit entries", n)
	}
}

// TestIncidentRolesAreStaffOnly: roles are assigned and unassigned through
// the API by the incident role (not a viewer), show in the incident, and
// never reach the public page, its JSON or its feeds.
func TestIncidentRolesAreStaffOnly(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	var inc incident.Incident
	e.api("POST", "/api/v1/incidents", map[string]any{"title": "Upgrades fail", "impact": "major", "status": "investigating",
		"message": "Looking into it."}, http.StatusCreated, &inc)
	path := fmt.Sprintf("/api/v1/incidents/%d/roles/", inc.ID)
	e.api("PUT", path+"commander", map[string]any{"who": "Quentin Quill"}, http.StatusOK, &inc)
	e.api("PUT", path+"communications", map[string]any{"who": "Rhoda Reed"}, http.StatusOK, &inc)
	if inc.Holder(incident.RoleCommander) != "Quentin Quill" || inc.Holder(incident.RoleCommunications) != "Rhoda Reed" {
		t.Fatalf("roles %+v", inc.Roles)
	}
	viewer := e.token("watcher", release.RoleViewer)
	if code, _ := e.call("PUT", path+"scribe", viewer, map[string]any{"who": "x"}); code != http.StatusForbidden {
		t.Errorf("a viewer assigned a role: %d", code)
	}
	for _, bad := range []struct {
		role string
		body any
	}{{"janitor", map[string]any{"who": "x"}}, {"scribe", map[string]any{"who": " "}}} {
		if code, _ := e.call("PUT", path+bad.role, e.Admin, bad.body); code != http.StatusBadRequest {
			t.Errorf("PUT %s %v: %d, want 400", bad.role, bad.body, code)
		}
	}
	e.api("DELETE", path+"communications", nil, http.StatusNoContent, nil)
	e.api("GET", fmt.Sprintf("/api/v1/incidents/%d", inc.ID), nil, http.StatusOK, &inc)
	if len(inc.Roles) != 1 || inc.Holder(incident.RoleCommander) != "Quentin Quill" {
		t.Fatalf("roles after unassigning communications %+v", inc.Roles)
	}
	// Resolved (the roles stay), so that every page lists it.
	e.api("POST", fmt.Sprintf("/api/v1/incidents/%d/resolve", inc.ID), map[string]any{"message": "Fixed."}, http.StatusOK, nil)
	for _, p := range []string{"/", fmt.Sprintf("/incidents/%d", inc.ID), "/history", "/history.atom", "/history.rss",
		"/api/v2/incidents.json"} {
		servertest.Eventually(t, 5*time.Second, p+" shows the incident", func() bool {
			code, _, b := get(t, e.URL+p, nil)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d", p, code)
			}
			if strings.Contains(string(b), "Quentin") {
				t.Fatalf("GET %s names the commander:\n%s", p, b)
			}
			return strings.Contains(string(b), "Upgrades fail") // rendered after the roles were assigned
		})
	}
}
