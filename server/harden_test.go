package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sqlstore"
)

// hardenConfig gathers concurrent check-ins into one batch (a long commit
// window), so that a record that could poison a batch shares it with
// others.
func hardenConfig() server.Config {
	return server.Config{CommitWindow: 50 * time.Millisecond, FlushInterval: 20 * time.Millisecond, CheckInBurst: 1000, CheckInRate: 1000}
}

// twoCustomers sets up product acme with releases 1.0.0 and 1.1.0 and
// returns the enrollment keys of customers mallory and victim.
func twoCustomers(e *env) (mallory, victim string) {
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	return e.enroll("acme", "mallory", "all"), e.enroll("acme", "victim", "all")
}

// storedOf counts the installations and events of customer in the store.
func storedOf(t *testing.T, s *sqlstore.Store, customer string) (installations, events int) {
	t.Helper()
	ins, err := s.ListInstallations(context.Background(), "acme", 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Customer == customer {
			installations++
		}
	}
	evs, err := s.ListEvents(context.Background(), "acme", 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.HasPrefix(ev.InstanceID, customer+"-") {
			events++
		}
	}
	return installations, events
}

// poisonRun sends, all at once, n check-ins of mallory built by bad and n
// of victim's installations (half routine, half with an event), and checks
// that every victim check-in is answered 200 and stored. It returns the
// statuses mallory got.
func poisonRun(t *testing.T, e *env, mallory, victim string, n int, bad func(i int) checkIn) []int {
	t.Helper()
	var wg sync.WaitGroup
	malloryCodes := make([]int, n)
	victimCodes := make([]int, n)
	victimBodies := make([]string, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			malloryCodes[i], _, _ = e.checkInRaw(mallory, mustJSON(t, bad(i)))
		}()
		go func() {
			defer wg.Done()
			c := checkIn{InstanceID: fmt.Sprintf("victim-%d", i), Product: "acme", Version: "1.0.0", Nonce: randomID(t)}
			if i%2 == 0 {
				c.Events = []map[string]any{{"kind": "upgrade_started", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC()}}
			}
			var b []byte
			victimCodes[i], _, b = e.checkInRaw(victim, mustJSON(t, c))
			victimBodies[i] = string(b)
		}()
	}
	wg.Wait()
	for i, code := range victimCodes {
		if code != http.StatusOK {
			t.Errorf("victim check-in %d: %d %s", i, code, victimBodies[i])
		}
	}
	servertest.Eventually(t, 5*time.Second, "every victim check-in stored", func() bool {
		ins, evs := storedOf(t, e.Store, "victim")
		return ins == n && evs == (n+1)/2
	})
	return malloryCodes
}

// TestControlCharactersRejected: NUL and other C0 controls are refused
// when the request is decoded, on the check-in and on admin routes, naming
// the field; tab and newline are text.
func TestControlCharactersRejected(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), hardenConfig())
	mallory, _ := twoCustomers(e)
	for _, tc := range []struct {
		name, body, field string
	}{
		{"event detail NUL", `{"instance_id":"m-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","events":[{"kind":"integrity_failed","at":"2026-01-01T00:00:00Z","detail":"a\u0000b"}]}`, "events[0].detail"},
		{"health detail ESC", `{"instance_id":"m-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","health":{"status":"ok","detail":"\u001b[31m"}}`, "health.detail"},
		{"raw CR", "{\"instance_id\":\"m-1\",\"product\":\"acme\",\"version\":\"1.0.0\",\"nonce\":\"abcdefghijklmnopqr\",\"health\":{\"status\":\"ok\",\"detail\":\"a\\rb\"}}", "health.detail"},
	} {
		code, _, body := e.checkInRaw(mallory, []byte(tc.body))
		var p problem.Details
		if err := json.Unmarshal(body, &p); err != nil || code != http.StatusBadRequest || !strings.Contains(p.Detail, tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, code, body, tc.field)
		}
	}
	// Tab and newline are fine in text.
	ok := `{"instance_id":"m-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","health":{"status":"ok","detail":"line 1\n\tline 2"}}`
	if code, _, body := e.checkInRaw(mallory, []byte(ok)); code != http.StatusOK {
		t.Errorf("tab and newline in a detail: %d %s", code, body)
	}
	// Admin routes: a pause reason, a hold reason.
	for _, path := range []string{"/api/v1/products/acme/releases/1.1.0/pause", "/api/v1/products/acme/releases/1.1.0/holds"} {
		code, body := e.call("POST", path, e.Admin, map[string]any{"reason": "bad\x00reason"})
		if code != http.StatusBadRequest || !strings.Contains(string(body), "reason") {
			t.Errorf("POST %s with a NUL in the reason: %d %s, want 400 naming reason", path, code, body)
		}
	}
}

// nulPoisoning: on PostgreSQL, which cannot store U+0000, one customer
// sending NULs in every text field at the same time as another customer's
// check-ins gets 400s, and every one of the other customer's check-ins is
// answered and stored.
func nulPoisoning(t *testing.T, dsn string) {
	e := startServer(t, dsn, hardenConfig())
	mallory, victim := twoCustomers(e)
	codes := poisonRun(t, e, mallory, victim, 40, func(i int) checkIn {
		c := checkIn{InstanceID: fmt.Sprintf("mallory-%d", i), Product: "acme", Version: "1.0.0", Nonce: randomID(t)}
		if i%2 == 0 {
			c.Events = []map[string]any{{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC(), "detail": "x\x00y"}}
		} else {
			c.Health = &release.Health{Status: release.HealthOK, Detail: "\x00"}
		}
		return c
	})
	for i, code := range codes {
		if code != http.StatusBadRequest {
			t.Errorf("mallory's check-in %d with a NUL: %d, want 400", i, code)
		}
	}
}

// failingRecordAlone: a record the store refuses (here: a trigger refusing
// one detail, which passes every check of the decoder) fails alone; the
// records that shared its batch are written one by one and answered 200.
func failingRecordAlone(t *testing.T, dsn string, dialect sqlstore.Dialect) {
	e := startServer(t, dsn, hardenConfig())
	mallory, victim := twoCustomers(e)
	db := servertest.RawDB(t, dsn) // the server writes meanwhile: it waits for SQLite's lock
	trigger := []string{`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.detail = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`}
	if dialect == sqlstore.Postgres {
		trigger = []string{
			`CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.detail = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()`,
		}
	}
	for _, q := range trigger {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	codes := poisonRun(t, e, mallory, victim, 30, func(i int) checkIn {
		return checkIn{InstanceID: fmt.Sprintf("mallory-%d", i), Product: "acme", Version: "1.0.0", Nonce: randomID(t),
			Events: []map[string]any{{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC(), "detail": "poison"}}}
	})
	for i, code := range codes {
		if code != http.StatusServiceUnavailable {
			t.Errorf("poisoned check-in %d: %d, want 503", i, code)
		}
	}
}

func TestFailingRecordFailsAloneSQLite(t *testing.T) {
	failingRecordAlone(t, servertest.SQLite(t), sqlstore.SQLite)
}

// TestAutoHaltWeighsCustomers: one customer's key inventing 30 healthy
// installations does not keep six genuine failures of two other customers
// under the 20% share; the same key's 30 failures do not halt a release
// alone, nor make up the single failure of another customer.
func TestAutoHaltWeighsCustomers(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{RefreshInterval: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	const p = "/api/v1/products/acme"
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil) // default policy: 3, 20%, 2 customers
	e.api("POST", p+"/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		e.api("POST", p+"/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	keys := map[string]string{}
	for _, c := range []string{"mallory", "alpha", "beta"} {
		keys[c] = e.enroll("acme", c, "all")
	}
	status := func(v string) release.Status {
		var rel release.Release
		e.api("GET", p+"/releases/"+v, nil, http.StatusOK, &rel)
		return rel.Status
	}
	event := func(kind, from, to string) []map[string]any {
		return []map[string]any{{"kind": kind, "from": from, "to": to, "at": time.Now().UTC()}}
	}
	// Every installation checks in first, so that its reports count.
	fleet := map[string]int{"mallory": 30, "alpha": 3, "beta": 3}
	for c, n := range fleet {
		for i := range n {
			e.checkIn(keys[c], checkIn{InstanceID: fmt.Sprintf("%s-%d", c, i), Product: "acme", Version: "1.0.0"})
		}
	}
	time.Sleep(50 * time.Millisecond) // the routine check-ins are flushed
	for i := range 30 {
		e.checkIn(keys["mallory"], checkIn{InstanceID: fmt.Sprintf("mallory-%d", i), Product: "acme", Version: "1.1.0", Events: event("upgrade_succeeded", "1.0.0", "1.1.0")})
	}
	for _, c := range []string{"alpha", "beta"} {
		for i := range 3 {
			e.checkIn(keys[c], checkIn{InstanceID: fmt.Sprintf("%s-%d", c, i), Product: "acme", Version: "1.0.0", Events: event("upgrade_failed", "1.0.0", "1.1.0")})
		}
	}
	servertest.Eventually(t, 5*time.Second, "auto-halt of 1.1.0 despite the dilution", func() bool { return status("1.1.0") == release.StatusPaused })
	halts := e.auditEntries("release.auto_halt")
	var after struct{ Evidence release.Evidence }
	if len(halts) != 1 || json.Unmarshal(halts[0].After, &after) != nil {
		t.Fatalf("auto-halt audit entries: %+v", halts)
	}
	// The halt came as soon as the weighed evidence crossed the threshold:
	// mallory's 30 weighed as alpha's or beta's at most (3).
	ev := after.Evidence
	if ev.Moved > 9 || ev.Customers != 2 || len(ev.ByCustomer) != 3 || ev.ByCustomer[2] != (release.CustomerCounts{Customer: "mallory", Moved: 30}) {
		t.Errorf("evidence: %d of %d moved, %d customers, by customer %+v; want mallory's 30 weighed as at most 3", ev.Failed, ev.Moved, ev.Customers, ev.ByCustomer)
	}

	// 1.2.0: mallory's 30 installations (now on 1.1.0) fail, alone.
	for i := range 30 {
		e.checkIn(keys["mallory"], checkIn{InstanceID: fmt.Sprintf("mallory-%d", i), Product: "acme", Version: "1.1.0", Events: event("upgrade_failed", "1.1.0", "1.2.0")})
	}
	// One of beta's installations fails too, two more move fine.
	e.checkIn(keys["beta"], checkIn{InstanceID: "beta-0", Product: "acme", Version: "1.0.0", Events: event("upgrade_failed", "1.0.0", "1.2.0")})
	for i := 1; i < 3; i++ {
		e.checkIn(keys["beta"], checkIn{InstanceID: fmt.Sprintf("beta-%d", i), Product: "acme", Version: "1.2.0", Events: event("upgrade_succeeded", "1.0.0", "1.2.0")})
	}
	time.Sleep(500 * time.Millisecond) // room for a wrong halt
	if st := status("1.2.0"); st != release.StatusOK {
		t.Fatalf("mallory's 30 failures and beta's one made 1.2.0 %s", st)
	}
}

// metricsText fetches /metrics.
func (e *env) metricsText() string {
	e.t.Helper()
	code, b := e.call("GET", "/metrics", testMetricsToken, nil)
	if code != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d %s", code, b)
	}
	return string(b)
}

// quotaOf returns customer's quota use from GET …/status.
func (e *env) quotaOf(customer string) release.QuotaUsage {
	e.t.Helper()
	var st struct{ Quotas []release.QuotaUsage }
	e.api("GET", "/api/v1/products/acme/status", nil, http.StatusOK, &st)
	for _, q := range st.Quotas {
		if q.Customer == customer {
			return q
		}
	}
	return release.QuotaUsage{}
}

// TestQuotas: one key beyond its quotas — new installations per hour,
// events per installation per day, stored bytes — is answered 429 with a
// problem naming the quota, while its known installations (for the first)
// and another customer's key keep being served; the counts show in
// /metrics and in the product's status.
func TestQuotas(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{FlushInterval: 10 * time.Millisecond,
		QuotaNewInstances: 5, QuotaEvents: 10, QuotaStoredBytes: 40_000})
	mallory, victim := twoCustomers(e)
	refused := func(key string, c checkIn, quota string) {
		t.Helper()
		c.Nonce = randomID(t)
		code, hdr, body := e.checkInRaw(key, mustJSON(t, c))
		var p problem.Details
		if err := json.Unmarshal(body, &p); err != nil || code != http.StatusTooManyRequests || p.Code != problem.RateLimited ||
			!strings.Contains(p.Detail, quota) || hdr.Get("Retry-After") == "" {
			t.Fatalf("check-in of %s beyond quota %s: %d %s", c.InstanceID, quota, code, body)
		}
	}
	// New installations per key per hour.
	for i := range 5 {
		e.checkIn(mallory, checkIn{InstanceID: fmt.Sprintf("mallory-%d", i), Product: "acme", Version: "1.0.0"})
	}
	servertest.Eventually(t, 5*time.Second, "5 new installations counted", func() bool { return e.quotaOf("mallory").NewInstances == 5 })
	refused(mallory, checkIn{InstanceID: "mallory-new", Product: "acme", Version: "1.0.0"}, "new_instances_per_hour")
	e.checkIn(mallory, checkIn{InstanceID: "mallory-0", Product: "acme", Version: "1.0.0"}) // known: served
	for i := range 6 {
		e.checkIn(victim, checkIn{InstanceID: fmt.Sprintf("victim-%d", i), Product: "acme", Version: "1.0.0"})
	}

	// Events per installation per day.
	events := func(n, size int) []map[string]any {
		var out []map[string]any
		for range n {
			out = append(out, map[string]any{"kind": "integrity_failed", "at": time.Now().UTC(), "detail": strings.Repeat("x", size)})
		}
		return out
	}
	e.checkIn(mallory, checkIn{InstanceID: "mallory-0", Product: "acme", Version: "1.0.0", Events: events(10, 0)})
	refused(mallory, checkIn{InstanceID: "mallory-0", Product: "acme", Version: "1.0.0", Events: events(1, 0)}, "events_per_installation_per_day")
	e.checkIn(victim, checkIn{InstanceID: "victim-0", Product: "acme", Version: "1.0.0", Events: events(10, 0)})

	// Stored bytes per customer: 4000-byte details from mallory's other
	// installations until the quota refuses them.
	var n int
	for n = 0; n < 20; n++ {
		c := checkIn{InstanceID: fmt.Sprintf("mallory-%d", 1+n%4), Product: "acme", Version: "1.0.0", Events: events(1, 4000), Nonce: randomID(t)}
		if code, _, _ := e.checkInRaw(mallory, mustJSON(t, c)); code == http.StatusTooManyRequests {
			break
		}
	}
	if n == 20 || n < 5 {
		t.Fatalf("stored-bytes quota of 40000 refused the %dth 4 kB event", n+1)
	}
	refused(mallory, checkIn{InstanceID: "mallory-1", Product: "acme", Version: "1.0.0", Events: events(1, 10)}, "stored_bytes")
	// Routine check-ins store nothing more: still served.
	e.checkIn(mallory, checkIn{InstanceID: "mallory-1", Product: "acme", Version: "1.0.0"})
	e.checkIn(victim, checkIn{InstanceID: "victim-1", Product: "acme", Version: "1.0.0", Events: events(1, 4000)})

	q := e.quotaOf("mallory")
	if q.NewInstances != 5 || q.MaxEvents != 10 || q.StoredBytes < 40_000 || q.StoredBytesLimit != 40_000 {
		t.Errorf("mallory's quota use in status: %+v", q)
	}
	metrics := e.metricsText()
	for _, want := range []string{
		`ringfence_quota_usage{customer="mallory",product="acme",quota="new_instances_per_hour"} 5`,
		`ringfence_quota_usage{customer="mallory",product="acme",quota="events_per_installation_per_day"} 10`,
		`ringfence_quota_rejections_total{quota="stored_bytes"}`,
		`ringfence_quota_rejections_total{quota="new_instances_per_hour"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// raw sends body with contentType, token and further header name, value
// pairs to path and returns the status, the problem (if any) and the
// headers.
func (e *env) raw(method, path, token, contentType string, body []byte, header ...string) (int, problem.Details, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var p problem.Details
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p, resp.Header
}

func TestStrictDecodingSQLite(t *testing.T) { strictDecoding(t, servertest.SQLite(t)) }

// strictDecoding: every body is decoded strictly — unknown (also inside
// Ring and the halt policy), duplicate and case-variant fields, invalid
// UTF-8 and integers beyond their column are 400 naming the JSON field
// (never a Go type), bodies that are not application/json 415; a PATCH
// changes only what it names and honours If-Match.
func strictDecoding(t *testing.T, dsn string) {
	e := startServer(t, dsn, server.Config{})
	mallory, _ := twoCustomers(e)
	const p = "/api/v1/products/acme"
	const j = "application/json"
	checkin := func(fields string) []byte {
		return []byte(`{"instance_id":"i-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr"` + fields + `}`)
	}
	for _, c := range []struct {
		name, method, path, token, ct string
		body                          []byte
		status                        int
		detail                        string
	}{
		{"check-in: duplicate field", "POST", "/v1/checkin", mallory, j, checkin(`,"version":"1.1.0"`), 400, "version given twice"},
		{"check-in: case variant", "POST", "/v1/checkin", mallory, j, checkin(`,"Nonce":"abcdefghijklmnopqr"`), 400, "unknown field Nonce"},
		{"check-in: invalid UTF-8", "POST", "/v1/checkin", mallory, j, checkin(`,"health":{"status":"ok","detail":"` + "\xff\xfe" + `"}`), 400, "not valid UTF-8"},
		{"check-in: lone surrogate", "POST", "/v1/checkin", mallory, j, checkin(`,"health":{"status":"ok","detail":"\udc00"}`), 400, "health.detail"},
		{"check-in: unknown nested field", "POST", "/v1/checkin", mallory, j, checkin(`,"health":{"status":"ok","level":1}`), 400, "unknown field \"level\""},
		{"check-in: text/plain", "POST", "/v1/checkin", mallory, "text/plain", checkin(""), 415, "application/json"},
		{"check-in: no content type", "POST", "/v1/checkin", mallory, "", checkin(""), 415, "application/json"},
		{"check-in: wrong type names the field", "POST", "/v1/checkin", mallory, j, []byte(`{"instance_id":5}`), 400, "field instance_id: wrong type"},
		{"ring: soak_time is not soak", "POST", p + "/rings", e.Admin, j, []byte(`{"name":"late","position":5,"soak_time":"24h"}`), 400, "unknown field \"soak_time\""},
		{"ring: duplicate field", "POST", p + "/rings", e.Admin, j, []byte(`{"name":"late","position":5,"position":6}`), 400, "position given twice"},
		{"ring: position beyond INTEGER", "POST", p + "/rings", e.Admin, j, []byte(`{"name":"late","position":3000000000}`), 400, "position must be within"},
		{"ring: min_healthy beyond INTEGER", "POST", p + "/rings", e.Admin, j, []byte(`{"name":"late","position":5,"min_healthy":9000000000}`), 400, "min_healthy must be within"},
		{"ring: wrong type names the field", "POST", p + "/rings", e.Admin, j, []byte(`{"name":"late","position":"5"}`), 400, "field position: wrong type"},
		{"ring patch: position beyond INTEGER", "PATCH", p + "/rings/all", e.Admin, j, []byte(`{"position":2147483648}`), 400, "position must be within"},
		{"product: unknown halt field", "POST", "/api/v1/products", e.Admin, j, []byte(`{"name":"p2","halt":{"windw":"2h"}}`), 400, "unknown field \"windw\""},
		{"product: halt min_failures beyond INTEGER", "POST", "/api/v1/products", e.Admin, j, []byte(`{"name":"p2","halt":{"min_failures":4294967296}}`), 400, "min_failures must be within"},
		{"product patch: unknown halt field", "PATCH", p, e.Admin, j, []byte(`{"halt":{"share":0.5}}`), 400, "unknown field \"share\""},
		{"product patch: case variant", "PATCH", p, e.Admin, j, []byte(`{"Required_Gates":[]}`), 400, "unknown field Required_Gates"},
		{"pause: form body", "POST", p + "/releases/1.1.0/pause", e.Admin, "application/x-www-form-urlencoded", []byte(`reason=x`), 415, "application/json"},
		{"pause: invalid UTF-8", "POST", p + "/releases/1.1.0/pause", e.Admin, j, []byte(`{"reason":"` + "\xc3\x28" + `"}`), 400, "not valid UTF-8"},
	} {
		code, prob, _ := e.raw(c.method, c.path, c.token, c.ct, c.body)
		if code != c.status || !strings.Contains(prob.Detail, c.detail) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, code, prob.Detail, c.status, c.detail)
		}
		for _, goType := range []string{"Go struct", "ringJSON", "policyJSON", "of type"} {
			if strings.Contains(prob.Detail, goType) {
				t.Errorf("%s: the message names a Go type: %s", c.name, prob.Detail)
			}
		}
	}
	// Nothing of the refused bodies was stored.
	var rings []release.Ring
	e.api("GET", p+"/rings", nil, http.StatusOK, &rings)
	if len(rings) != 1 {
		t.Errorf("rings after refused creations: %+v", rings)
	}

	// A PATCH of the halt policy changes only the fields it names.
	e.api("PATCH", p, map[string]any{"halt": map[string]any{"window": "2h", "min_failures": 5}}, http.StatusOK, nil)
	var prod release.Product
	e.api("PATCH", p, map[string]any{"halt": map[string]any{"failure_share": 0.5}}, http.StatusOK, &prod)
	if pol := prod.Policy; pol.Window != 2*time.Hour || pol.MinFailures != 5 || pol.MinFailureShare != 0.5 || pol.MinCustomers != release.DefaultMinCustomers {
		t.Errorf("policy after a partial PATCH: %+v", pol)
	}
	// If-Match: the ETag of the GET applies; a stale one is 412.
	code, _, hdr := e.raw("GET", p, e.Admin, "", nil)
	etag := hdr.Get("ETag")
	if code != http.StatusOK || etag == "" {
		t.Fatalf("GET product: %d ETag %q", code, etag)
	}
	if code, prob, _ := e.raw("PATCH", p, e.Admin, j, []byte(`{"halt":{"min_failures":6}}`), "If-Match", etag); code != http.StatusOK {
		t.Fatalf("PATCH with the current ETag: %d %s", code, prob.Detail)
	}
	if code, prob, _ := e.raw("PATCH", p, e.Admin, j, []byte(`{"halt":{"min_failures":7}}`), "If-Match", etag); code != http.StatusPreconditionFailed || prob.Code != problem.PreconditionFailed {
		t.Fatalf("PATCH with a stale ETag: %d %+v", code, prob)
	}
	e.api("GET", p, nil, http.StatusOK, &prod)
	if prod.Policy.MinFailures != 6 {
		t.Errorf("min_failures = %d after a refused PATCH, want 6", prod.Policy.MinFailures)
	}
	// Rings and customers alike: one GET gives the ETag a PATCH may name.
	e.api("POST", p+"/rings", map[string]any{"name": "late", "position": 5}, http.StatusCreated, nil)
	for _, c := range []struct{ path, now, stale string }{
		{p + "/rings/late", `{"rollout_percent":50}`, `{"rollout_percent":20}`},
		{p + "/customers/victim", `{"ring":"late"}`, `{"ring":"all"}`},
	} {
		code, _, hdr := e.raw("GET", c.path, e.Admin, "", nil)
		etag := hdr.Get("ETag")
		if code != http.StatusOK || etag == "" {
			t.Fatalf("GET %s: %d ETag %q", c.path, code, etag)
		}
		if code, prob, _ := e.raw("PATCH", c.path, e.Admin, j, []byte(c.now), "If-Match", etag); code != http.StatusOK {
			t.Fatalf("PATCH %s with the current ETag: %d %s", c.path, code, prob.Detail)
		}
		if code, prob, _ := e.raw("PATCH", c.path, e.Admin, j, []byte(c.stale), "If-Match", etag); code != http.StatusPreconditionFailed {
			t.Fatalf("PATCH %s with a stale ETag: %d %+v", c.path, code, prob)
		}
	}
	var ring release.Ring
	var cust release.Customer
	e.api("GET", p+"/rings/late", nil, http.StatusOK, &ring)
	e.api("GET", p+"/customers/victim", nil, http.StatusOK, &cust)
	if ring.RolloutPercent != 50 || cust.Ring != "late" {
		t.Errorf("after refused PATCHes: ring %+v, customer %+v", ring, cust)
	}
	for _, path := range []string{p + "/rings/nope", p + "/customers/nope", "/api/v1/products/nope/rings/all", "/api/v1/products/nope/customers/victim"} {
		if code, _, _ := e.raw("GET", path, e.Admin, "", nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
}

// TestContract: answers as docs/api.md says — oversize bodies 413
// too_large, unknown products and customers 404 on every route, a wrong
// method 405 with Allow, /metrics only with the metrics token (or on the
// separate Metrics handler).
func TestContract(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	mallory, _ := twoCustomers(e)
	const j = "application/json"

	big := []byte(`{"instance_id":"` + strings.Repeat("a", 70<<10) + `"}`)
	if code, prob, _ := e.raw("POST", "/v1/checkin", mallory, j, big); code != http.StatusRequestEntityTooLarge || prob.Code != problem.TooLarge {
		t.Errorf("oversize check-in: %d %+v, want 413 too_large", code, prob)
	}
	huge := []byte(`{"reason":"` + strings.Repeat("a", 1<<20) + `"}`)
	if code, prob, _ := e.raw("POST", "/api/v1/products/acme/releases/1.1.0/pause", e.Admin, j, huge); code != http.StatusRequestEntityTooLarge || prob.Code != problem.TooLarge {
		t.Errorf("oversize admin body: %d %+v, want 413 too_large", code, prob)
	}

	// Every route under an unknown product, and under an unknown customer
	// of a known one, is 404.
	fill := strings.NewReplacer("{version}", "1.1.0", "{ring}", "all", "{id}", "nope", "{customer}", "nobody")
	for _, rt := range e.Srv.Routes() {
		if !strings.Contains(rt.Path, "{product}") {
			continue
		}
		paths := []string{fill.Replace(strings.ReplaceAll(rt.Path, "{product}", "nope"))}
		if strings.Contains(rt.Path, "{customer}") {
			paths = append(paths, fill.Replace(strings.ReplaceAll(rt.Path, "{product}", "acme")))
		}
		for _, path := range paths {
			var body []byte
			if rt.Method != "GET" && rt.Method != "DELETE" {
				// A valid body: what is missing is the product or customer.
				body = []byte(map[string]string{
					"rings": `{"name":"x","position":9}`, "customers": `{"name":"x","ring":"all"}`, "releases": `{"version":"9.0.0"}`,
					"gates": `{"name":"g","status":"pass"}`, "holds": `{"reason":"r"}`, "pause": `{"reason":"r"}`, "resume": `{}`,
					"pull": `{"reason":"r","action":"hold"}`, "promote": `{"ring":"all","reason":"r"}`, "resolve": `{"resolution":"r"}`,
				}[path[strings.LastIndex(path, "/")+1:]])
			}
			if code, prob, _ := e.raw(rt.Method, path, e.Admin, j, body); code != http.StatusNotFound {
				t.Errorf("%s %s: %d %q, want 404", rt.Method, path, code, prob.Detail)
			}
		}
	}

	// A wrong method is 405 with Allow.
	for path, want := range map[string]string{"/api/v1/products": "GET, HEAD, POST", "/v1/checkin": "POST", "/api/v1/products/acme": "GET, HEAD, PATCH"} {
		code, prob, hdr := e.raw("PUT", path, e.Admin, j, []byte(`{}`))
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != want || prob.Code != problem.MethodNotAllowed {
			t.Errorf("PUT %s: %d Allow %q %+v, want 405 Allow %q", path, code, hdr.Get("Allow"), prob, want)
		}
	}
	if code, _, _ := e.raw("GET", "/no/such/route", e.Admin, "", nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}

	// /metrics: the token, nothing else.
	for _, tok := range []string{"", e.Admin, "wrong"} {
		if code, _, _ := e.raw("GET", "/metrics", tok, "", nil); code != http.StatusUnauthorized {
			t.Errorf("/metrics with token %q: %d, want 401", tok, code)
		}
	}
	if code, _, _ := e.raw("GET", "/metrics", testMetricsToken, "", nil); code != http.StatusOK {
		t.Errorf("/metrics with the metrics token: %d", code)
	}
	// Without a metrics token there is no /metrics on the API's handler;
	// Metrics serves it for a separate listener.
	plain := servertest.Start(t, servertest.SQLite(t), server.Config{})
	resp, err := http.Get(plain.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without a metrics token: %d, want 404", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	plain.Srv.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "ringfence_snapshot_rebuilds_total") {
		t.Errorf("Metrics handler: %d", rec.Code)
	}
}
