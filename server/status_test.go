package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/ringfence/ringfence/internal/notifytest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// statusScene sets up what an incident day looks like: components in a
// group and alone, an open incident with two updates, a resolved one, a
// pulled release with its advice, and a maintenance tomorrow. It waits until
// the page shows it and returns the open incident's id.
func statusScene(e *env) int64 {
	e.t.Helper()
	for _, c := range []map[string]any{{"name": "API", "group": "Core"}, {"name": "Check-in", "group": "Core"}, {"name": "Dashboard", "description": "The web console"}} {
		e.api("POST", "/api/v1/components", c, http.StatusCreated, nil)
	}
	setupProduct(e)
	for _, v := range []string{"1.1.0", "1.2.0"} {
		e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	var slow struct{ ID int64 }
	e.api("POST", "/api/v1/incidents", map[string]any{"title": "Slow dashboard", "impact": "minor", "status": "investigating",
		"message": "Pages load slowly.", "components": []map[string]any{{"name": "Dashboard", "status": "degraded_performance"}}}, http.StatusCreated, &slow)
	e.api("POST", fmt.Sprintf("/api/v1/incidents/%d/resolve", slow.ID), map[string]any{"message": "Fixed.",
		"components": []map[string]any{{"name": "Dashboard", "status": "operational"}}}, http.StatusOK, nil)
	var inc struct{ ID int64 }
	e.api("POST", "/api/v1/incidents", map[string]any{"title": "Check-ins failing", "impact": "major", "status": "investigating",
		"message": "We see errors on check-in.", "components": []map[string]any{{"name": "Check-in", "status": "partial_outage"}}}, http.StatusCreated, &inc)
	e.api("POST", fmt.Sprintf("/api/v1/incidents/%d/updates", inc.ID), map[string]any{"status": "identified", "message": "A bad index; rebuilding it."}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/releases/1.1.0/pull", map[string]any{"reason": "corrupts settings on upgrade", "action": "upgrade", "target": "1.2.0"}, http.StatusOK, nil)
	start := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Minute)
	e.api("POST", "/api/v1/maintenances", map[string]any{"title": "Database upgrade", "message": "Check-ins may be slow for a minute.",
		"start": start, "end": start.Add(2 * time.Hour), "components": []string{"API"}}, http.StatusCreated, nil)
	servertest.Eventually(e.t, 10*time.Second, "page shows the scene", func() bool {
		_, _, b := get(e.t, e.URL+"/api/v2/summary.json", nil)
		return bytes.Contains(b, []byte("A bad index")) && bytes.Contains(b, []byte("Database upgrade")) && bytes.Contains(b, []byte("pulled"))
	})
	return inc.ID
}

func get(t testing.TB, u string, h http.Header) (int, http.Header, []byte) {
	t.Helper()
	return do(t, http.MethodGet, u, h)
}

func do(t testing.TB, method, u string, h http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	// No transparent gzip: the test sees what was sent.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

var rfc3339UTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// checker checks decoded JSON against Statuspage's documented objects.
type checker struct {
	t    *testing.T
	path string
}

func (c checker) errorf(where, format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("%s %s: "+format, append([]any{c.path, where}, args...)...)
}

// keys requires exactly the documented fields (optional ones may be absent).
func (c checker) keys(where string, obj map[string]any, required []string, optional ...string) {
	c.t.Helper()
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			c.errorf(where, "missing field %q", k)
		}
	}
	for k := range obj {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			c.errorf(where, "field %q is not in Statuspage's format", k)
		}
	}
}

func (c checker) time(where string, v any, nullable bool) {
	c.t.Helper()
	if v == nil && nullable {
		return
	}
	s, ok := v.(string)
	if !ok || !rfc3339UTC.MatchString(s) {
		c.errorf(where, "time %v is not RFC 3339 UTC seconds", v)
		return
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		c.errorf(where, "time %q: %v", s, err)
	}
}

func (c checker) enum(where string, v any, values ...string) {
	c.t.Helper()
	s, ok := v.(string)
	if !ok || !slices.Contains(values, s) {
		c.errorf(where, "%v is not one of %v", v, values)
	}
}

func (c checker) kind(where string, v any, want string) {
	c.t.Helper()
	ok := false
	switch want {
	case "string":
		_, ok = v.(string)
	case "bool":
		_, ok = v.(bool)
	case "number":
		_, ok = v.(float64)
	case "array":
		_, ok = v.([]any)
	case "string|null":
		_, ok = v.(string)
		ok = ok || v == nil
	}
	if !ok {
		c.errorf(where, "%v (%T) is not a %s", v, v, want)
	}
}

var componentStatuses = []string{"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}

func (c checker) page(obj map[string]any) {
	c.t.Helper()
	c.keys("page", obj, []string{"id", "name", "url", "time_zone", "updated_at"})
	for _, k := range []string{"id", "name", "url", "time_zone"} {
		c.kind("page."+k, obj[k], "string")
	}
	c.time("page.updated_at", obj["updated_at"], false)
}

func (c checker) component(obj map[string]any) {
	c.t.Helper()
	where := fmt.Sprint("component ", obj["name"])
	c.keys(where, obj, []string{"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
		"start_date", "group_id", "page_id", "group", "only_show_if_degraded"}, "components")
	c.kind(where+".id", obj["id"], "string")
	c.kind(where+".name", obj["name"], "string")
	c.enum(where+".status", obj["status"], componentStatuses...)
	c.time(where+".created_at", obj["created_at"], false)
	c.time(where+".updated_at", obj["updated_at"], false)
	c.kind(where+".position", obj["position"], "number")
	c.kind(where+".description", obj["description"], "string|null")
	c.kind(where+".showcase", obj["showcase"], "bool")
	c.kind(where+".start_date", obj["start_date"], "string|null")
	c.kind(where+".group_id", obj["group_id"], "string|null")
	c.kind(where+".page_id", obj["page_id"], "string")
	c.kind(where+".group", obj["group"], "bool")
	c.kind(where+".only_show_if_degraded", obj["only_show_if_degraded"], "bool")
	if obj["group"] == true {
		c.kind(where+".components", obj["components"], "array")
	}
}

func (c checker) incident(obj map[string]any, maintenance bool) {
	c.t.Helper()
	where := fmt.Sprint("incident ", obj["name"])
	required := []string{"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact", "shortlink",
		"started_at", "page_id", "incident_updates", "components"}
	statuses := []string{"investigating", "identified", "monitoring", "resolved", "postmortem"}
	impacts := []string{"none", "minor", "major", "critical"}
	if maintenance {
		required = append(required, "scheduled_for", "scheduled_until")
		statuses = []string{"scheduled", "in_progress", "verifying", "completed"}
		impacts = []string{"maintenance"}
		c.time(where+".scheduled_for", obj["scheduled_for"], false)
		c.time(where+".scheduled_until", obj["scheduled_until"], false)
	}
	c.keys(where, obj, required)
	c.enum(where+".status", obj["status"], statuses...)
	c.enum(where+".impact", obj["impact"], impacts...)
	for _, k := range []string{"created_at", "updated_at", "started_at"} {
		c.time(where+"."+k, obj[k], false)
	}
	c.time(where+".monitoring_at", obj["monitoring_at"], true)
	c.time(where+".resolved_at", obj["resolved_at"], true)
	if s, _ := obj["shortlink"].(string); !strings.HasPrefix(s, "http") {
		c.errorf(where, "shortlink %v is not a URL", obj["shortlink"])
	}
	ups, _ := obj["incident_updates"].([]any)
	if len(ups) == 0 {
		c.errorf(where, "no incident_updates")
	}
	for _, u := range ups {
		u := u.(map[string]any)
		uw := where + " update " + fmt.Sprint(u["id"])
		c.keys(uw, u, []string{"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
			"affected_components", "deliver_notifications", "custom_tweet", "tweet_id"})
		c.enum(uw+".status", u["status"], statuses...)
		c.kind(uw+".body", u["body"], "string")
		if u["incident_id"] != obj["id"] {
			c.errorf(uw, "incident_id %v, want %v", u["incident_id"], obj["id"])
		}
		for _, k := range []string{"created_at", "updated_at", "display_at"} {
			c.time(uw+"."+k, u[k], false)
		}
		c.kind(uw+".deliver_notifications", u["deliver_notifications"], "bool")
		for _, a := range u["affected_components"].([]any) {
			a := a.(map[string]any)
			c.keys(uw+" affected component", a, []string{"code", "name", "old_status", "new_status"})
			c.enum(uw+".old_status", a["old_status"], componentStatuses...)
			c.enum(uw+".new_status", a["new_status"], componentStatuses...)
		}
	}
	for _, comp := range obj["components"].([]any) {
		c.component(comp.(map[string]any))
	}
}

func decodeObj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func names(list any) []string {
	var out []string
	for _, v := range list.([]any) {
		out = append(out, fmt.Sprint(v.(map[string]any)["name"]))
	}
	sort.Strings(out)
	return out
}

// TestStatuspageJSON checks every /api/v2 endpoint field by field against
// Statuspage's documented format, and the HTTP around them: Content-Type,
// CORS, HEAD like GET, validators, gzip.
func TestStatuspageJSON(t *testing.T) { statuspageJSON(t, servertest.SQLite(t)) }

// twoStatusServers runs two servers on one PostgreSQL database (from
// TestPostgres): a change made through one is on the other's page, and they
// deliver every webhook between them once.
func twoStatusServers(t *testing.T, dsn string) {
	rcv := notifytest.NewReceiver(t)
	cfg := server.Config{WebhookAllowPrivate: true, StatusRefresh: time.Hour}
	cfg.Notify.Concurrency, cfg.Notify.Poll = 4, 20*time.Millisecond
	a := startServer(t, dsn, cfg)
	b := startServer(t, dsn, cfg)
	const subs = 30
	for i := range subs {
		var s struct{ Secret string }
		a.api("POST", "/api/v1/subscribers", map[string]any{"webhook": fmt.Sprintf("%s/s%d", rcv.URL, i)}, http.StatusCreated, &s)
		rcv.Secret(fmt.Sprintf("/s%d", i), s.Secret)
	}
	a.api("POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusCreated, nil)
	var inc struct{ ID int64 }
	a.api("POST", "/api/v1/incidents", map[string]any{"title": "API down", "impact": "critical", "status": "investigating",
		"message": "Nothing answers.", "components": []map[string]any{{"name": "API", "status": "major_outage"}}}, http.StatusCreated, &inc)
	b.api("POST", fmt.Sprintf("/api/v1/incidents/%d/updates", inc.ID), map[string]any{"status": "identified", "message": "Found it."}, http.StatusCreated, nil)
	for _, e := range []*env{a, b} {
		servertest.Eventually(t, 10*time.Second, "both servers' pages show the update", func() bool {
			_, _, body := get(t, e.URL+"/api/v2/status.json", nil)
			_, _, page := get(t, e.URL+"/", nil)
			return bytes.Contains(body, []byte(`"indicator":"critical"`)) && bytes.Contains(page, []byte("Found it."))
		})
	}
	servertest.Eventually(t, 20*time.Second, "all delivered", func() bool { return rcv.Count() >= 2*subs })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive meanwhile
	seen := map[string]int{}
	for _, h := range rcv.Hooks() {
		if h.Verified != nil {
			t.Fatalf("unverified webhook: %v", h.Verified)
		}
		seen[h.Path+" "+h.ID]++
	}
	if len(seen) != 2*subs || len(rcv.Hooks()) != 2*subs {
		t.Errorf("%d requests, %d distinct (path, webhook-id); want %d each", len(rcv.Hooks()), len(seen), 2*subs)
	}
}

func statuspageJSON(t *testing.T, dsn string) {
	e := startServer(t, dsn, server.Config{PublicURL: "https://status.example.com/", PageTitle: "Acme Status"})
	statusScene(e)
	body := func(path string) map[string]any {
		t.Helper()
		code, h, b := get(t, e.URL+path, nil)
		if code != http.StatusOK || h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("GET %s: %d, Content-Type %q, CORS %q", path, code, h.Get("Content-Type"), h.Get("Access-Control-Allow-Origin"))
		}
		m := decodeObj(t, b)
		checker{t, path}.page(m["page"].(map[string]any))
		return m
	}
	c := checker{t, "summary.json"}
	sum := body("/api/v2/summary.json")
	c.keys("summary", sum, []string{"page", "components", "incidents", "scheduled_maintenances", "status"})
	if p := sum["page"].(map[string]any); p["name"] != "Acme Status" || p["url"] != "https://status.example.com" || p["time_zone"] != "Etc/UTC" {
		t.Errorf("page = %v", p)
	}
	st := sum["status"].(map[string]any)
	c.keys("status", st, []string{"indicator", "description"})
	if st["indicator"] != "major" || st["description"] != "Partial System Outage" {
		t.Errorf("status = %v, want major / Partial System Outage", st)
	}
	byName := map[string]map[string]any{}
	for _, v := range sum["components"].([]any) {
		comp := v.(map[string]any)
		c.component(comp)
		byName[comp["name"].(string)] = comp
	}
	core, checkin := byName["Core"], byName["Check-in"]
	if core == nil || core["group"] != true || core["status"] != "partial_outage" || len(core["components"].([]any)) != 2 {
		t.Errorf("group Core = %v", core)
	}
	if checkin == nil || checkin["group_id"] != core["id"] || checkin["status"] != "partial_outage" || checkin["group"] != false {
		t.Errorf("component Check-in = %v", checkin)
	}
	if d := byName["Dashboard"]; d == nil || d["group_id"] != nil || d["description"] != "The web console" || d["status"] != "operational" {
		t.Errorf("component Dashboard = %v", d)
	}
	for _, v := range sum["incidents"].([]any) {
		c.incident(v.(map[string]any), false)
	}
	if got := names(sum["incidents"]); strings.Join(got, "|") != "Check-ins failing|Release acme@1.1.0 pulled" {
		t.Errorf("unresolved incidents in summary = %v", got)
	}
	for _, v := range sum["scheduled_maintenances"].([]any) {
		c.incident(v.(map[string]any), true)
	}
	if got := names(sum["scheduled_maintenances"]); strings.Join(got, "|") != "Database upgrade" {
		t.Errorf("maintenances in summary = %v", got)
	}
	for _, v := range sum["incidents"].([]any) {
		inc := v.(map[string]any)
		if inc["name"] != "Check-ins failing" {
			continue
		}
		ups := inc["incident_updates"].([]any)
		if len(ups) != 2 || ups[0].(map[string]any)["status"] != "identified" || ups[1].(map[string]any)["body"] != "We see errors on check-in." {
			t.Errorf("updates, newest first = %v", ups)
		}
		aff := ups[1].(map[string]any)["affected_components"].([]any)
		if len(aff) != 1 || aff[0].(map[string]any)["code"] != checkin["id"] || aff[0].(map[string]any)["new_status"] != "partial_outage" {
			t.Errorf("affected components = %v", aff)
		}
		if inc["impact"] != "major" || !strings.HasPrefix(inc["shortlink"].(string), "https://status.example.com/incidents/") {
			t.Errorf("incident = %v", inc)
		}
	}

	s := body("/api/v2/status.json")
	checker{t, "status.json"}.keys("status.json", s, []string{"page", "status"})
	if s["status"].(map[string]any)["indicator"] != "major" {
		t.Errorf("status.json = %v", s)
	}
	comps := body("/api/v2/components.json")
	checker{t, "components.json"}.keys("components.json", comps, []string{"page", "components"})
	if len(comps["components"].([]any)) != 4 {
		t.Errorf("components.json lists %d, want 3 components and 1 group", len(comps["components"].([]any)))
	}
	for path, want := range map[string]string{
		"/api/v2/incidents.json":            "Check-ins failing|Release acme@1.1.0 pulled|Slow dashboard",
		"/api/v2/incidents/unresolved.json": "Check-ins failing|Release acme@1.1.0 pulled",
	} {
		m := body(path)
		checker{t, path}.keys(path, m, []string{"page", "incidents"})
		for _, v := range m["incidents"].([]any) {
			checker{t, path}.incident(v.(map[string]any), false)
		}
		if got := strings.Join(names(m["incidents"]), "|"); got != want {
			t.Errorf("%s lists %s, want %s", path, got, want)
		}
	}
	for path, want := range map[string]string{
		"/api/v2/scheduled-maintenances.json":          "Database upgrade",
		"/api/v2/scheduled-maintenances/upcoming.json": "Database upgrade",
		"/api/v2/scheduled-maintenances/active.json":   "",
	} {
		m := body(path)
		checker{t, path}.keys(path, m, []string{"page", "scheduled_maintenances"})
		for _, v := range m["scheduled_maintenances"].([]any) {
			checker{t, path}.incident(v.(map[string]any), true)
		}
		if got := strings.Join(names(m["scheduled_maintenances"]), "|"); got != want {
			t.Errorf("%s lists %q, want %q", path, got, want)
		}
	}

	// HEAD answers like GET, without a body; validators and gzip work.
	u := e.URL + "/api/v2/summary.json"
	_, gh, gb := get(t, u, nil)
	code, hh, hb := do(t, http.MethodHead, u, nil)
	if code != http.StatusOK || len(hb) != 0 || hh.Get("Content-Length") != fmt.Sprint(len(gb)) || hh.Get("ETag") != gh.Get("ETag") ||
		hh.Get("Content-Type") != gh.Get("Content-Type") || hh.Get("Last-Modified") != gh.Get("Last-Modified") {
		t.Errorf("HEAD: %d %v (%d body bytes); GET: %v", code, hh, len(hb), gh)
	}
	if cc := gh.Get("Cache-Control"); !strings.Contains(cc, "max-age=") || !strings.Contains(cc, "stale-while-revalidate=") || !strings.Contains(cc, "stale-if-error=") {
		t.Errorf("Cache-Control = %q", cc)
	}
	if code, _, b := get(t, u, http.Header{"If-None-Match": {gh.Get("ETag")}}); code != http.StatusNotModified || len(b) != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", code, len(b))
	}
	if code, _, _ := get(t, u, http.Header{"If-Modified-Since": {gh.Get("Last-Modified")}}); code != http.StatusNotModified {
		t.Errorf("If-Modified-Since: %d", code)
	}
	code, zh, zb := get(t, u, http.Header{"Accept-Encoding": {"gzip, br"}})
	if code != http.StatusOK || zh.Get("Content-Encoding") != "gzip" || zh.Get("ETag") == gh.Get("ETag") || !strings.Contains(zh.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip: %d %v", code, zh)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zb))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, gb) {
		t.Error("gzip body differs from the plain one")
	}
	if code, _, _ := get(t, e.URL+"/api/v2/nothing.json", nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if code, _, _ := do(t, http.MethodPost, u, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST summary.json: %d", code)
	}
}

// TestStatusPageHTML checks the page a person reads: the overall state,
// the active incident with its latest update, components, the pulled
// release's advice, the maintenance, incident pages, and the size budget.
func TestStatusPageHTML(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{PublicURL: "https://status.example.com", PageTitle: "Acme Status"})
	id := statusScene(e)
	code, h, b := get(t, e.URL+"/", nil)
	page := string(b)
	if code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %v", code, h)
	}
	for _, want := range []string{
		`<html lang="en">`, `<main id="main">`, `<header>`, `<footer>`, `Skip to content`,
		`Partial System Outage`, `Check-ins failing`, `A bad index; rebuilding it.`, // the latest update…
		`acme: do not upgrade to 1.1.0`, `Upgrade to 1.2.0.`, `Database upgrade`, `Core`, `Check-in`, `Dashboard`,
		`Partial outage`, `Slow dashboard`, `aria-label="Check-in, last 90 days:`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "We see errors on check-in.") {
		t.Error("the index shows an older update, not only the latest")
	}
	if strings.Contains(page, "<script") {
		t.Error("the page has a script")
	}
	if len(b) > 50<<10 {
		t.Errorf("page is %d bytes, over 50 KB", len(b))
	}
	code, _, b = get(t, fmt.Sprintf("%s/incidents/%d", e.URL, id), nil)
	if code != http.StatusOK || !bytes.Contains(b, []byte("We see errors on check-in.")) || !bytes.Contains(b, []byte("A bad index")) {
		t.Errorf("incident page: %d\n%s", code, b)
	}
	if code, _, _ := get(t, e.URL+"/incidents/999999", nil); code != http.StatusNotFound {
		t.Errorf("unknown incident page: %d", code)
	}
	if code, _, b := get(t, e.URL+"/history", nil); code != http.StatusOK || !bytes.Contains(b, []byte("Slow dashboard")) {
		t.Errorf("history page: %d", code)
	}
}

// TestStatusFeeds parses /history.atom and /history.rss with gofeed and
// checks what strict validators require: Atom ids, updated, author and
// self link; RSS channel link, description, guids and dates.
func TestStatusFeeds(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{PublicURL: "https://status.example.com", PageTitle: "Acme Status"})
	statusScene(e)
	code, h, b := get(t, e.URL+"/history.atom", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/atom+xml; charset=utf-8" {
		t.Fatalf("atom: %d %v", code, h)
	}
	f, err := gofeed.NewParser().ParseString(string(b))
	if err != nil {
		t.Fatalf("gofeed atom: %v\n%s", err, b)
	}
	if f.FeedType != "atom" || f.Title != "Acme Status status history" || f.UpdatedParsed == nil || len(f.Items) != 4 {
		t.Fatalf("atom feed = %s %q %v %d items", f.FeedType, f.Title, f.UpdatedParsed, len(f.Items))
	}
	var atom struct {
		ID      string `xml:"id"`
		Updated string `xml:"updated"`
		Author  struct {
			Name string `xml:"name"`
		} `xml:"author"`
		Links []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Updated string `xml:"updated"`
			Link    struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
			Content struct {
				Type string `xml:"type,attr"`
			} `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(b, &atom); err != nil {
		t.Fatal(err)
	}
	if atom.ID != "https://status.example.com/history.atom" || !rfc3339UTC.MatchString(atom.Updated) || atom.Author.Name == "" {
		t.Errorf("atom feed id %q updated %q author %q", atom.ID, atom.Updated, atom.Author.Name)
	}
	self := false
	for _, l := range atom.Links {
		self = self || (l.Rel == "self" && l.Href == "https://status.example.com/history.atom")
	}
	if !self {
		t.Errorf("no self link: %+v", atom.Links)
	}
	ids := map[string]bool{}
	for _, en := range atom.Entries {
		u, err := url.Parse(en.ID)
		if err != nil || !u.IsAbs() || ids[en.ID] || !rfc3339UTC.MatchString(en.Updated) || en.Link.Href != en.ID || en.Content.Type != "html" {
			t.Errorf("atom entry %+v", en)
		}
		ids[en.ID] = true
	}
	code, h, b = get(t, e.URL+"/history.rss", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/rss+xml; charset=utf-8" {
		t.Fatalf("rss: %d %v", code, h)
	}
	r, err := gofeed.NewParser().ParseString(string(b))
	if err != nil {
		t.Fatalf("gofeed rss: %v", err)
	}
	if r.FeedType != "rss" || r.Link != "https://status.example.com/" || r.Description == "" || len(r.Items) != 4 {
		t.Fatalf("rss feed = %s %q %q %d items", r.FeedType, r.Link, r.Description, len(r.Items))
	}
	for _, it := range r.Items {
		if it.GUID == "" || it.GUID != it.Link || it.PublishedParsed == nil || it.Title == "" {
			t.Errorf("rss item %+v", it)
		}
	}
	if !bytes.Contains(b, []byte(`<atom:link href="https://status.example.com/history.rss" rel="self" type="application/rss+xml">`)) {
		t.Errorf("rss lacks its atom:link self:\n%s", b)
	}
}

// TestStatusPageSurvivesStoreOutage: with the store gone, re-renders fail
// and the last render keeps being served.
func TestStatusPageSurvivesStoreOutage(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{StatusRefresh: 20 * time.Millisecond})
	e.api("POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusCreated, nil)
	servertest.Eventually(t, 5*time.Second, "component on the page", func() bool {
		_, _, b := get(t, e.URL+"/", nil)
		return bytes.Contains(b, []byte("API"))
	})
	_, h, before := get(t, e.URL+"/", nil)
	e.Store.Close()
	time.Sleep(100 * time.Millisecond) // several failed re-renders
	code, h2, after := get(t, e.URL+"/", nil)
	if code != http.StatusOK || !bytes.Equal(before, after) || h2.Get("ETag") != h.Get("ETag") {
		t.Fatalf("after the store closed: %d, same body %v", code, bytes.Equal(before, after))
	}
}

// TestSubscribersThroughTheAPIAndThePage: an email subscriber signs up on
// the public page, follows the opt-in link from the email a real SMTP
// server received, gets the incident, and unsubscribes in one click (RFC
// 8058); a webhook subscriber created through the API receives it signed;
// a webhook on loopback is refused without --webhook-allow-private.
func TestSubscribersThroughTheAPIAndThePage(t *testing.T) {
	smtpd := notifytest.NewSMTP(t)
	rcv := notifytest.NewReceiver(t)
	cfg := server.Config{SMTP: smtpd.URL, SMTPFrom: "status@example.com", WebhookAllowPrivate: true}
	cfg.Notify.Backoff = 50 * time.Millisecond
	cfg.Notify.Poll = 20 * time.Millisecond
	e := startServer(t, servertest.SQLite(t), cfg)
	// PublicURL defaults to http://localhost:8080; links are rewritten to
	// the test server below.
	local := func(link string) string { return strings.Replace(link, "http://localhost:8080", e.URL, 1) }
	e.api("POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusCreated, nil)

	var hook struct {
		ID     string
		Secret string
		Target string
	}
	e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": rcv.URL + "/hook", "components": []string{"API"}}, http.StatusCreated, &hook)
	if !strings.HasPrefix(hook.Secret, "whsec_") {
		t.Fatalf("created webhook = %+v", hook)
	}
	rcv.Secret("/hook", hook.Secret)
	e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": rcv.URL + "/x", "components": []string{"Nope"}}, http.StatusNotFound, nil)
	e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": "ftp://x"}, http.StatusBadRequest, nil)
	e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": rcv.URL + "/y", "secret": "whsec_short"}, http.StatusBadRequest, nil)

	resp, err := http.PostForm(e.URL+"/subscriptions", url.Values{"email": {"ops@customer.example"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	servertest.Eventually(t, 10*time.Second, "opt-in email", func() bool { return len(smtpd.Mails()) == 1 })
	confirm := local(linkIn(t, smtpd.Mails()[0], "/subscriptions/confirm?token="))
	code, _, b := get(t, confirm, nil)
	if code != http.StatusOK || !bytes.Contains(b, []byte(`method="post"`)) {
		t.Fatalf("confirm page: %d\n%s", code, b)
	}
	var subs []struct {
		Kind        string
		ConfirmedAt *time.Time `json:"confirmed_at"`
	}
	e.api("GET", "/api/v1/subscribers", nil, http.StatusOK, &subs)
	if len(subs) != 2 || subs[1].ConfirmedAt != nil {
		t.Fatalf("following the link (GET) confirmed already: %+v", subs)
	}
	if resp, err = http.Post(confirm, "application/x-www-form-urlencoded", nil); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	e.api("GET", "/api/v1/subscribers", nil, http.StatusOK, &subs)
	if subs[1].ConfirmedAt == nil {
		t.Fatal("not confirmed")
	}

	e.api("POST", "/api/v1/incidents", map[string]any{"title": "API down", "impact": "critical", "status": "investigating",
		"message": "Nothing answers.", "components": []map[string]any{{"name": "API", "status": "major_outage"}}}, http.StatusCreated, nil)
	servertest.Eventually(t, 10*time.Second, "webhook and email", func() bool { return rcv.Count() == 1 && len(smtpd.Mails()) == 2 })
	if h := rcv.Hooks()[0]; h.Verified != nil || !bytes.Contains(h.Body, []byte(`"name":"API down"`)) {
		t.Errorf("webhook: %v %s", h.Verified, h.Body)
	}
	m := smtpd.Mails()[1]
	if !bytes.Contains(m.Data, []byte("List-Unsubscribe-Post: List-Unsubscribe=One-Click")) {
		t.Errorf("notification email lacks one-click unsubscribe:\n%s", m.Data)
	}
	unsub := local(linkIn(t, m, "/subscriptions/unsubscribe?token="))
	resp, err = http.Post(unsub, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}
	e.api("GET", "/api/v1/subscribers", nil, http.StatusOK, &subs)
	if len(subs) != 1 || subs[0].Kind != "webhook" {
		t.Fatalf("after unsubscribing: %+v", subs)
	}
	// The receiver counts a hook when it answers; the sender records the
	// delivery only after reading that answer, so the listing may lag.
	var ds []struct{ State string }
	servertest.Eventually(t, 10*time.Second, "the webhook's delivery recorded", func() bool {
		e.api("GET", "/api/v1/deliveries?state=delivered", nil, http.StatusOK, &ds)
		return len(ds) >= 1
	})
	if len(ds) != 1 {
		t.Errorf("delivered deliveries listed: %+v (the email's went with its subscriber)", ds)
	}
	e.api("GET", "/api/v1/deliveries?state=lost", nil, http.StatusBadRequest, nil)
}

// TestWebhookSubscriberOnLoopbackRefused: without --webhook-allow-private
// the delivery to a loopback receiver fails at connect time and ends dead,
// visible to operators.
func TestWebhookSubscriberOnLoopbackRefused(t *testing.T) {
	rcv := notifytest.NewReceiver(t)
	cfg := server.Config{}
	cfg.Notify.MaxAttempts, cfg.Notify.Poll = 1, 20*time.Millisecond
	e := startServer(t, servertest.SQLite(t), cfg)
	e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": rcv.URL + "/hook"}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/components", map[string]any{"name": "API"}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/components/API/status", map[string]any{"status": "major_outage"}, http.StatusOK, nil)
	var ds []struct {
		LastError string `json:"last_error"`
	}
	servertest.Eventually(t, 10*time.Second, "dead delivery", func() bool {
		e.api("GET", "/api/v1/deliveries?state=dead", nil, http.StatusOK, &ds)
		return len(ds) == 1
	})
	if !strings.Contains(ds[0].LastError, "refusing to connect to non-public address 127.0.0.1") || len(rcv.Hooks()) != 0 {
		t.Errorf("dead delivery %+v; receiver got %d", ds[0], len(rcv.Hooks()))
	}
}

// linkIn returns the first link in m's plain text containing part.
func linkIn(t *testing.T, m notifytest.Mail, part string) string {
	t.Helper()
	text := strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(string(m.Data))
	i := strings.Index(text, part)
	if i < 0 {
		t.Fatalf("no %q in:\n%s", part, text)
	}
	start := strings.LastIndex(text[:i], "http")
	end := i + strings.IndexAny(text[i:], "\r\n \"<>")
	return text[start:end]
}
