package server_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// TestConsoleStatusPages adds a component, sets its status (reason
// required, confirmed), schedules and moves maintenance, adds a webhook
// subscriber whose deliveries die, sees them as dead letters, replays one,
// and removes the subscriber — each through the API's handler, as the
// incident role; a releaser reads the pages but is refused a change.
func TestConsoleStatusPages(t *testing.T) {
	var hits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "receiver down", http.StatusInternalServerError)
	}))
	t.Cleanup(receiver.Close)
	e := startServer(t, servertest.SQLite(t), server.Config{WebhookAllowPrivate: true,
		Notify: notify.Config{MaxAttempts: 1, Backoff: 10 * time.Millisecond, Poll: 50 * time.Millisecond}})
	ctx := context.Background()
	const pw = "a long enough password"
	for name, role := range map[string]release.Role{"ines": release.RoleIncident, "rita": release.RoleReleaser} {
		if _, err := e.Store.CreateUser(ctx, "test", name, role, pw); err != nil {
			t.Fatal(err)
		}
	}
	ines := newBrowser(t, e.URL)
	ines.login(url.Values{"name": {"ines"}, "password": {pw}})
	_, page := ines.get("/admin/components")
	csrf := ines.csrf(page)

	if resp, body := ines.post("/admin/components", url.Values{"csrf": {csrf}, "name": {"API"}, "group": {"Platform"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add a component: %d %.300s", resp.StatusCode, body)
	}
	// A subscriber whose receiver fails: with one attempt, its deliveries die.
	resp, body := ines.post("/admin/subscribers", url.Values{"csrf": {csrf}, "webhook": {receiver.URL + "/hook"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "whsec_") {
		t.Fatalf("add a webhook subscriber: %d, want its secret shown once: %.300s", resp.StatusCode, body)
	}
	subs, err := e.Store.ListSubscribers(ctx)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscribers: %+v %v", subs, err)
	}

	status := url.Values{"csrf": {csrf}, "status": {"major_outage"}}
	if resp, _ := ines.post("/admin/components/API/status", status); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status without a reason: %d, want 400", resp.StatusCode)
	}
	status.Set("reason", "the API answers 502")
	if resp, body := ines.post("/admin/components/API/status", status); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Confirm: Set the status of") ||
		!strings.Contains(body, "API changed from Operational to Major outage.") || !strings.Contains(body, "1 webhook subscriber") {
		t.Fatalf("status confirmation with its preview: %d %s", resp.StatusCode, body)
	}
	status.Set("confirm", "yes")
	if resp, _ := ines.post("/admin/components/API/status", status); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set status: %d", resp.StatusCode)
	}
	if comps, _ := e.Store.ListComponents(ctx); len(comps) != 1 || comps[0].Status != incident.MajorOutage {
		t.Fatalf("components after setting the status: %+v", comps)
	}

	start := time.Now().UTC().Add(time.Hour).Truncate(time.Minute)
	sched := url.Values{"csrf": {csrf}, "title": {"Database upgrade"}, "message": {"PostgreSQL 16"}, "components": {"API"},
		"start": {start.Format("2006-01-02T15:04")}, "end": {start.Add(time.Hour).Format("2006-01-02T15:04:05")}}
	if resp, body := ines.post("/admin/maintenance", sched); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Maintenance scheduled: Database upgrade") {
		t.Fatalf("maintenance confirmation with its preview: %d %s", resp.StatusCode, body)
	}
	if ms, _ := e.Store.ListMaintenances(ctx, false, 10); len(ms) != 0 {
		t.Fatal("the confirmation page scheduled the maintenance")
	}
	sched.Set("confirm", "yes")
	if resp, body := ines.post("/admin/maintenance", sched); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("schedule maintenance: %d %.300s", resp.StatusCode, body)
	}
	ms, err := e.Store.ListMaintenances(ctx, false, 10)
	if err != nil || len(ms) != 1 || !ms[0].ScheduledFor.Equal(start) || len(ms[0].Components) != 1 {
		t.Fatalf("maintenances: %+v %v", ms, err)
	}
	move := url.Values{"csrf": {csrf}, "status": {"cancelled"}, "message": {"postponed"}, "confirm": {"yes"}}
	if resp, _ := ines.post("/admin/maintenance/"+itoa64(ms[0].ID)+"/status", move); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel maintenance: %d", resp.StatusCode)
	}
	if m, _ := e.Store.GetMaintenance(ctx, ms[0].ID); m.Status != incident.MaintenanceCancelled {
		t.Fatalf("maintenance after cancelling: %s", m.Status)
	}

	// The deliveries die at the failing receiver: dead letters, replayable.
	var dead []notify.Delivery
	servertest.Eventually(t, 10*time.Second, "a dead delivery", func() bool {
		dead, err = e.Store.ListDeliveries(ctx, notify.Dead, 10)
		return err == nil && len(dead) > 0
	})
	_, page = ines.get("/admin/subscribers")
	if !strings.Contains(page, html.EscapeString(dead[0].LastError)) || dead[0].LastError == "" || !strings.Contains(page, `action="/admin/deliveries/`+itoa64(dead[0].ID)+`/replay"`) {
		t.Fatalf("subscribers page lacks the dead letter %+v: %s", dead[0], page)
	}
	if resp, _ := ines.post("/admin/deliveries/"+itoa64(dead[0].ID)+"/replay", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	if audit := e.auditEntries("delivery.replay"); len(audit) != 1 || !strings.HasPrefix(audit[0].Actor, "ines (user:") {
		t.Fatalf("audit of the replay: %+v", audit)
	}
	if resp, _ := ines.post("/admin/deliveries/999999/replay", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("replay of an unknown delivery: %d, want the API's 404", resp.StatusCode)
	}

	// A releaser reads, but the incident role's changes are refused.
	rita := newBrowser(t, e.URL)
	rita.login(url.Values{"name": {"rita"}, "password": {pw}})
	_, rpage := rita.get("/admin/subscribers")
	if strings.Contains(rpage, "Add a webhook subscriber") || !strings.Contains(rpage, receiver.URL[:len("http://127.0.0.1")]) {
		t.Fatalf("releaser's subscribers page: want the list without the form")
	}
	rdel := url.Values{"csrf": {rita.csrf(rpage)}, "confirm": {"yes"}}
	if resp, body := rita.post("/admin/subscribers/"+subs[0].ID+"/delete", rdel); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "incident role") {
		t.Fatalf("releaser removing a subscriber: %d", resp.StatusCode)
	}
	if resp, _ := ines.post("/admin/subscribers/"+subs[0].ID+"/delete", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove the subscriber: %d", resp.StatusCode)
	}
	if subs, _ := e.Store.ListSubscribers(ctx); len(subs) != 0 {
		t.Fatalf("subscribers after removing: %d", len(subs))
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
