package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// TestConsoleIncidents declares an incident from a template in the console,
// with a component status, checks the preview is the message the delivery
// worker sends, posts an update, resolves it and writes the postmortem,
// all through the API's handlers (audit actor, public page), and checks a
// viewer is refused as by the API.
func TestConsoleIncidents(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	ctx := context.Background()
	e.api("POST", "/api/v1/components", map[string]any{"name": "Check-in API"}, http.StatusCreated, nil)
	e.api("PUT", "/api/v1/incident-templates/outage", map[string]any{"title": "Check-ins fail", "body": "We are looking into failing check-ins.",
		"impact": "major"}, http.StatusOK, nil)
	const pw = "a long enough password"
	for name, role := range map[string]release.Role{"ines": release.RoleIncident, "vic": release.RoleViewer} {
		if _, err := e.Store.CreateUser(ctx, "test", name, role, pw); err != nil {
			t.Fatal(err)
		}
	}
	ines := newBrowser(t, e.URL)
	ines.login(url.Values{"name": {"ines"}, "password": {pw}})
	resp, page := ines.get("/admin/incidents")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/admin/incidents"`) || !strings.Contains(page, `name="component.Check-in API"`) {
		t.Fatalf("incidents page: %d %.400s", resp.StatusCode, page)
	}
	csrf := ines.csrf(page)

	// Declare from the template: first the confirmation with the preview.
	declare := url.Values{"csrf": {csrf}, "template": {"outage"}, "component.Check-in API": {"major_outage"}, "notify": {"yes"}}
	resp, body := ines.post("/admin/incidents", declare)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "What subscribers receive") ||
		!strings.Contains(body, "Investigating: Check-ins fail") || !strings.Contains(body, "Check-in API: Operational → Major outage") ||
		!strings.Contains(body, "&#34;incident&#34;") {
		t.Fatalf("declare confirmation: %d %s", resp.StatusCode, body)
	}
	if list, _ := e.Store.ListIncidents(ctx, false, 10); len(list) != 0 {
		t.Fatalf("the confirmation page declared %d incidents", len(list))
	}
	// A form without the anti-CSRF token is refused.
	noToken := url.Values{"template": {"outage"}, "confirm": {"yes"}}
	if resp, _ := ines.post("/admin/incidents", noToken); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("declare without the CSRF token: %d", resp.StatusCode)
	}
	declare.Set("confirm", "yes")
	resp, _ = ines.post("/admin/incidents", declare)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/incidents/") {
		t.Fatalf("declare: %d to %q", resp.StatusCode, loc)
	}
	list, err := e.Store.ListIncidents(ctx, false, 10)
	if err != nil || len(list) != 1 || list[0].Title != "Check-ins fail" || list[0].Impact != incident.ImpactMajor || !strings.HasPrefix(list[0].By, "ines (user:") {
		t.Fatalf("declared: %+v %v", list, err)
	}
	id := list[0].ID
	servertest.Eventually(t, 5*time.Second, "the public page shows the declared incident", func() bool {
		_, public := ines.get("/")
		return strings.Contains(public, "Check-ins fail")
	})
	// The preview is exactly the stored notification's message.
	notes, err := e.Store.StatusNotificationsAfter(ctx, 0, 10)
	if err != nil || len(notes) != 1 || notes[0].Update == nil || notes[0].Update.Body != "We are looking into failing check-ins." {
		t.Fatalf("notification of the declaration: %+v %v", notes, err)
	}

	_, page = ines.get(loc)
	if !strings.Contains(page, "Incident declared.") || !strings.Contains(page, `action="/admin/incidents/`) {
		t.Fatalf("incident page: %.500s", page)
	}
	base := "/admin/incidents/" + strconv.FormatInt(id, 10)
	update := url.Values{"csrf": {csrf}, "status": {"identified"}, "message": {"A certificate expired; renewing."}, "notify": {"yes"}}
	if resp, body := ines.post(base+"/update", update); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Identified: Check-ins fail") {
		t.Fatalf("update confirmation: %d %.500s", resp.StatusCode, body)
	}
	update.Set("confirm", "yes")
	if resp, _ := ines.post(base+"/update", update); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	// An illegal move is the API's conflict.
	bad := url.Values{"csrf": {csrf}, "status": {"bogus"}, "message": {"x"}, "confirm": {"yes"}}
	if resp, _ := ines.post(base+"/update", bad); resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("update to an unknown status: %d", resp.StatusCode)
	}
	resolve := url.Values{"csrf": {csrf}, "message": {"Renewed; check-ins work again."}, "notify": {"yes"}}
	if resp, body := ines.post(base+"/resolve", resolve); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Check-in API: Major outage → Operational") {
		t.Fatalf("resolve confirmation (components back to operational): %d %.2000s", resp.StatusCode, body)
	}
	resolve.Set("confirm", "yes")
	if resp, _ := ines.post(base+"/resolve", resolve); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resolve: %d", resp.StatusCode)
	}
	pm := url.Values{"csrf": {csrf}, "postmortem": {"The renewal job had stopped."}, "confirm": {"yes"}}
	if resp, _ := ines.post(base+"/postmortem", pm); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("postmortem: %d", resp.StatusCode)
	}
	inc, err := e.Store.GetIncident(ctx, id)
	if err != nil || inc.Status != incident.StatusPostmortem || len(inc.Updates) != 3 || inc.Postmortem == "" {
		t.Fatalf("after the console's update, resolution and postmortem: %+v %v", inc, err)
	}
	comps, _ := e.Store.ListComponents(ctx)
	if len(comps) != 1 || comps[0].Status != incident.Operational {
		t.Fatalf("components after resolving: %+v", comps)
	}
	if len(e.auditEntries("incident.resolve")) != 1 {
		t.Fatal("no audit entry of the resolution")
	}

	// Roles: assigned after a confirmation, shown on the page, unassigned
	// with an empty name; never on the public page.
	assign := url.Values{"csrf": {csrf}, "role": {"commander"}, "who": {"Ines Iriarte"}}
	if resp, body := ines.post(base+"/roles", assign); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Staff-only") {
		t.Fatalf("assign confirmation: %d %.500s", resp.StatusCode, body)
	}
	assign.Set("confirm", "yes")
	if resp, _ := ines.post(base+"/roles", assign); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: %d", resp.StatusCode)
	}
	scribe := url.Values{"csrf": {csrf}, "role": {"scribe"}, "who": {"Sam"}, "confirm": {"yes"}}
	ines.post(base+"/roles", scribe)
	scribe.Set("who", "")
	if resp, _ := ines.post(base+"/roles", scribe); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unassign: %d", resp.StatusCode)
	}
	if _, page := ines.get(base); !strings.Contains(page, "commander: Ines Iriarte") || strings.Contains(page, "scribe: Sam") {
		t.Fatalf("incident page roles: %.3000s", page)
	}
	if inc, _ := e.Store.GetIncident(ctx, id); len(inc.Roles) != 1 || inc.Holder(incident.RoleCommander) != "Ines Iriarte" {
		t.Fatalf("roles after the console's assignments: %+v", inc.Roles)
	}
	if _, public := ines.get("/incidents/" + strconv.FormatInt(id, 10)); strings.Contains(public, "Ines Iriarte") {
		t.Fatalf("the public incident page names the commander")
	}

	// The other pages render for the incident role.
	for _, p := range []string{"/admin/components", "/admin/maintenance", "/admin/subscribers"} {
		if resp, body := ines.get(p); resp.StatusCode != http.StatusOK || !strings.Contains(body, `<main id="main"`) {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}

	// A viewer reads but may not declare: no form, and a posted one is refused.
	vic := newBrowser(t, e.URL)
	vic.login(url.Values{"name": {"vic"}, "password": {pw}})
	_, vpage := vic.get("/admin/incidents")
	if strings.Contains(vpage, `id="declare"`) || !strings.Contains(vpage, "Check-ins fail") {
		t.Fatal("viewer's incidents page: want the list and no declare form")
	}
	vdeclare := url.Values{"csrf": {vic.csrf(vpage)}, "title": {"x"}, "message": {"y"}, "impact": {"minor"}, "confirm": {"yes"}}
	if resp, body := vic.post("/admin/incidents", vdeclare); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "incident role") {
		t.Fatalf("viewer's declaration: %d, want 403 naming the incident role", resp.StatusCode)
	}
	if list, _ := e.Store.ListIncidents(ctx, false, 10); len(list) != 1 {
		t.Fatalf("incidents after the viewer's refused declaration: %d", len(list))
	}
}
