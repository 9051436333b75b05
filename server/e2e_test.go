package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

func TestEndToEndSQLite(t *testing.T) {
	scenario(t, servertest.SQLite(t))
}

// TestPostgres runs the PostgreSQL side of the end-to-end, multi-server and
// durability tests on one cluster, a database each.
func TestPostgres(t *testing.T) {
	c := pgtest.New(t)
	db := func(name string) string {
		c.CreateDatabase(name)
		return c.DSN(name)
	}
	t.Run("EndToEnd", func(t *testing.T) { scenario(t, db("e2e")) })
	t.Run("TwoServers", func(t *testing.T) { twoServers(t, db("two")) })
	t.Run("KilledServer", func(t *testing.T) { killDuringFailures(t, buildRingfence(t), db("killed")) })
	t.Run("NULPoisoning", func(t *testing.T) { nulPoisoning(t, db("nul")) })
	t.Run("FailingRecordAlone", func(t *testing.T) { failingRecordAlone(t, db("alone"), sqlstore.Postgres) })
	t.Run("StrictDecoding", func(t *testing.T) { strictDecoding(t, db("strict")) })
	t.Run("CheckInMutations", func(t *testing.T) { checkInMutations(t, db("mutations"), 400) })
	t.Run("StatuspageJSON", func(t *testing.T) { statuspageJSON(t, db("statusjson")) })
	t.Run("StatusTwoServers", func(t *testing.T) { twoStatusServers(t, db("statustwo")) })
}

// scenario is the end-to-end story against one store: offers follow
// gates, holds, rings, pause and pull; auto-halt fires from reported
// failures; every answer verifies against /v1/keys.
func scenario(t *testing.T, dsn string) {
	hook := newWebhookReceiver(t)
	e := startServer(t, dsn, server.Config{IncidentWebhook: hook.URL, WebhookAllowPrivate: true, RefreshInterval: 50 * time.Millisecond, AdoptionInterval: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	const p = "/api/v1/products/acme"

	e.api("POST", "/api/v1/products", map[string]any{"name": "acme", "required_gates": []string{"upgrade-test"},
		"halt": map[string]any{"window": "1h", "min_failures": 2, "failure_share": 0.5}}, http.StatusCreated, nil)
	e.api("POST", p+"/rings", map[string]any{"name": "insiders", "position": 0, "soak": "0s", "rollout_percent": 100, "min_healthy": 1}, http.StatusCreated, nil)
	e.api("POST", p+"/rings", map[string]any{"name": "stable", "position": 1, "soak": "0s", "rollout_percent": 100, "min_healthy": 0}, http.StatusCreated, nil)
	insiderKey := e.enroll("acme", "early-co", "insiders")
	stableKey := e.enroll("acme", "bigbank", "stable")
	insider := checkIn{InstanceID: "ins-1", Product: "acme", Version: "1.0.0"}
	bank := checkIn{InstanceID: "bank-1", Product: "acme", Version: "1.0.0"}
	// The installations exist before the releases: only such count as
	// promotion evidence.
	e.checkIn(insiderKey, insider)
	e.checkIn(stableKey, bank)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", p+"/releases", map[string]any{"version": v, "notes_url": "https://example.com/notes/" + v}, http.StatusCreated, nil)
	}

	// No gate result yet: nothing offered.
	if a, _ := e.checkIn(insiderKey, insider); offer(a) != "" {
		t.Fatalf("offer before any gate result: %s", offer(a))
	}
	// A failed gate blocks ring 0.
	e.api("POST", p+"/releases/1.1.0/gates", map[string]any{"name": "upgrade-test", "status": "fail", "url": "https://ci.example.com/1"}, http.StatusCreated, nil)
	if a, _ := e.checkIn(insiderKey, insider); offer(a) != "" {
		t.Fatalf("offer with a failed required gate: %s", offer(a))
	}
	// A passing gate lets the release into ring 0, not yet ring 1 (no
	// healthy insider runs it).
	e.api("POST", p+"/releases/1.1.0/gates", map[string]any{"name": "upgrade-test", "status": "pass", "url": "https://ci.example.com/2"}, http.StatusCreated, nil)
	if a, _ := e.checkIn(insiderKey, insider); offer(a) != "1.1.0" {
		t.Fatalf("insider offer after the gate passed: %q, want 1.1.0", offer(a))
	}
	if a, _ := e.checkIn(stableKey, bank); offer(a) != "" {
		t.Fatalf("stable offered %s before any insider was healthy on it", offer(a))
	}

	// A hold blocks promotion to stable even once the evidence is there.
	viewer := e.token("vera", release.RoleViewer)
	var hold release.Hold
	e.apiAs(viewer, "POST", p+"/releases/1.1.0/holds", map[string]any{"reason": "support saw odd reports"}, http.StatusCreated, &hold)
	insider.Version = "1.1.0"
	insider.Health = &release.Health{Status: release.HealthOK}
	insider.Events = []map[string]any{{"kind": "upgrade_succeeded", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC()}}
	e.checkIn(insiderKey, insider)
	insider.Events = nil
	servertest.Eventually(t, 5*time.Second, "healthy insider counted in status", func() bool {
		return ringStatus(e, "1.1.0", "insiders").Healthy == 1
	})
	// Installations first seen after the release was created (instance ids
	// an enrollment key could invent) are no promotion evidence.
	e.checkIn(insiderKey, checkIn{InstanceID: "invented-1", Product: "acme", Version: "1.1.0", Health: &release.Health{Status: release.HealthOK}})
	servertest.Eventually(t, 5*time.Second, "new installation counted as adopted", func() bool {
		return ringStatus(e, "1.1.0", "insiders").Adoption == 2
	})
	if rs := ringStatus(e, "1.1.0", "insiders"); rs.Healthy != 1 {
		t.Fatalf("insiders healthy = %d with an installation first seen after the release, want 1", rs.Healthy)
	}
	if rs := ringStatus(e, "1.1.0", "stable"); rs.State != release.RingBlocked || !strings.Contains(rs.Reason, "hold") {
		t.Fatalf("stable status with an open hold = %+v, want blocked by the hold", rs)
	}
	if a, _ := e.checkIn(stableKey, bank); offer(a) != "" {
		t.Fatalf("stable offered %s while a hold is open", offer(a))
	}
	// Viewers may raise holds, not resolve them.
	e.apiAs(viewer, "POST", p+"/holds/"+hold.ID+"/resolve", map[string]any{"resolution": "ok"}, http.StatusForbidden, nil)
	e.api("POST", p+"/holds/"+hold.ID+"/resolve", map[string]any{"resolution": "reports explained"}, http.StatusOK, nil)
	if a, _ := e.checkIn(stableKey, bank); offer(a) != "1.1.0" {
		t.Fatalf("stable offer after the hold was resolved: %q, want 1.1.0", offer(a))
	}

	// Pause stops offers at once, and tells installations on it.
	e.api("POST", p+"/releases/1.1.0/pause", map[string]any{"reason": "investigating", "incident_url": "https://status.example.com/i/1"}, http.StatusOK, nil)
	if a, _ := e.checkIn(stableKey, bank); offer(a) != "" {
		t.Fatalf("offer of a paused release: %s", offer(a))
	}
	if a, _ := e.checkIn(insiderKey, insider); a.Current.Status != release.StatusPaused || a.Current.IncidentURL != "https://status.example.com/i/1" {
		t.Fatalf("insider on a paused release: current = %+v", a.Current)
	}
	e.api("POST", p+"/releases/1.1.0/resume", map[string]any{}, http.StatusOK, nil)
	if a, _ := e.checkIn(stableKey, bank); offer(a) != "1.1.0" {
		t.Fatalf("offer after resume: %q", offer(a))
	}

	// Pull turns answers of installations on it into the guidance.
	e.api("POST", p+"/releases", map[string]any{"version": "1.1.1"}, http.StatusCreated, nil)
	e.api("POST", p+"/releases/1.1.0/pull", map[string]any{"reason": "corrupts indexes", "incident_url": "https://status.example.com/i/2",
		"action": "upgrade", "target": "1.1.1", "force_reason": "hotfix: its gates run after the pull"}, http.StatusOK, nil)
	a, _ := e.checkIn(insiderKey, insider)
	if a.Current.Status != release.StatusPulled || a.Current.Action != release.ActionUpgrade || a.Current.Target.String() != "1.1.1" {
		t.Fatalf("insider on a pulled release: current = %+v, want pulled, upgrade to 1.1.1", a.Current)
	}
	if a, _ := e.checkIn(stableKey, bank); offer(a) == "1.1.0" {
		t.Fatalf("pulled release still offered")
	}
	e.api("POST", p+"/releases/1.1.0/resume", map[string]any{}, http.StatusConflict, nil)

	// Auto-halt: two of two known installations of two customers that moved
	// to 1.2.0 fail.
	e.api("POST", p+"/releases", map[string]any{"version": "1.2.0"}, http.StatusCreated, nil)
	e.api("POST", p+"/releases/1.2.0/gates", map[string]any{"name": "upgrade-test", "status": "pass"}, http.StatusCreated, nil)
	e.checkIn(insiderKey, checkIn{InstanceID: "ins-2", Product: "acme", Version: "1.1.1"})
	e.checkIn(stableKey, checkIn{InstanceID: "bank-2", Product: "acme", Version: "1.2.0"})
	e.checkIn(insiderKey, checkIn{InstanceID: "ins-2", Product: "acme", Version: "1.1.1",
		Events: []map[string]any{{"kind": "upgrade_failed", "from": "1.1.1", "to": "1.2.0", "at": time.Now().UTC(), "detail": "migration 42 failed"}}})
	e.checkIn(stableKey, checkIn{InstanceID: "bank-2", Product: "acme", Version: "1.2.0",
		Health: &release.Health{Status: release.HealthCollationChanged, Detail: "en_US order changed"}})
	servertest.Eventually(t, 5*time.Second, "auto-halt pauses 1.2.0", func() bool {
		var rel release.Release
		e.api("GET", p+"/releases/1.2.0", nil, http.StatusOK, &rel)
		return rel.Status == release.StatusPaused && rel.Paused != nil && rel.Paused.By == sqlstore.ActorAutoHalt
	})
	// The snapshot is rebuilt right after the pause commits.
	servertest.Eventually(t, time.Second, "auto-halted release no longer offered", func() bool {
		a, _ := e.checkIn(insiderKey, checkIn{InstanceID: "ins-4", Product: "acme", Version: "1.1.1"})
		return offer(a) != "1.2.0"
	})
	halts := e.auditEntries("release.auto_halt")
	for _, en := range halts {
		var after struct{ Evidence release.Evidence }
		if err := json.Unmarshal(en.After, &after); err != nil {
			t.Fatal(err)
		}
		if after.Evidence.Failed != 2 || len(after.Evidence.Failures) != 2 || en.Actor != sqlstore.ActorAutoHalt {
			t.Errorf("auto-halt audit entry = %s, want evidence of 2 failures", en.After)
		}
	}
	if len(halts) != 1 {
		t.Errorf("%d auto-halt audit entries, want 1", len(halts))
	}
	// Auto-halt opened a draft incident naming the release; the pull of
	// 1.1.0 opened a published one.
	var incs []incident.Incident
	e.api("GET", "/api/v1/incidents", nil, http.StatusOK, &incs)
	if len(incs) != 2 || !incs[0].Draft || incs[0].By != sqlstore.ActorAutoHalt || incs[0].Releases[0].String() != "acme@1.2.0" ||
		incs[1].Draft || incs[1].Releases[0].String() != "acme@1.1.0" {
		t.Errorf("incidents after a pull and an auto-halt: %+v", incs)
	}
	servertest.Eventually(t, 5*time.Second, "incident webhook delivered", func() bool { return len(hook.received()) == 1 })
	if h := hook.received()[0]; h.Event != "release.auto_halt" || h.Release.Version.String() != "1.2.0" || h.Evidence.Failed != 2 {
		t.Errorf("webhook = %+v", h)
	}
	_, metrics := e.call("GET", "/metrics", testMetricsToken, nil)
	for _, m := range []string{`ringfence_auto_halts_total{product="acme"} 1`, "ringfence_checkins_total", "ringfence_checkin_duration_seconds_bucket", "ringfence_decisions_total"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// The status shows each release per ring.
	var st struct {
		Product  string                  `json:"product"`
		Releases []release.ReleaseStatus `json:"releases"`
	}
	e.api("GET", p+"/status", nil, http.StatusOK, &st)
	if len(st.Releases) != 4 || st.Releases[0].Version.String() != "1.2.0" || st.Releases[0].Status != release.StatusPaused {
		t.Errorf("status = %+v", st)
	}
}

// ringStatus returns release v's standing in ring from the status route.
func ringStatus(e *env, v, ring string) release.RingStatus {
	e.t.Helper()
	var st struct {
		Releases []release.ReleaseStatus `json:"releases"`
	}
	e.api("GET", "/api/v1/products/acme/status", nil, http.StatusOK, &st)
	return servertest.RingStatus(e.t, st.Releases, v, ring)
}

// setupProduct creates product acme with one ring and a customer, and
// returns its enrollment key.
func setupProduct(e *env) string {
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "all", "position": 0, "soak": "1h", "rollout_percent": 100}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": "1.0.0"}, http.StatusCreated, nil)
	return e.enroll("acme", "bigbank", "all")
}

// TestSignatures checks answers against /v1/keys: valid ones verify,
// tampered or expired ones do not, and old answers still verify after a
// key rotation while new ones use the new key.
func TestSignatures(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{AnswerTTL: time.Minute})
	key := setupProduct(e)
	c := checkIn{InstanceID: "i-1", Product: "acme", Version: "1.0.0"}
	ans, env := e.checkIn(key, c)
	keys := e.publicKeys()
	if _, err := sign.Verify(env, keys, ans.ExpiresAt.Add(time.Second)); !errors.Is(err, sign.ErrExpired) {
		t.Errorf("verify after expiry: %v, want ErrExpired", err)
	}
	if got := ans.ExpiresAt.Sub(ans.IssuedAt); got != time.Minute {
		t.Errorf("answer valid for %s, want the configured 1m", got)
	}
	tampered := env
	tampered.Payload = bytes.Replace(append([]byte(nil), env.Payload...), []byte(`"status":"ok"`), []byte(`"status":"xx"`), 1)
	if bytes.Equal(tampered.Payload, env.Payload) {
		t.Fatalf("payload %s has no status to tamper with", env.Payload)
	}
	if _, err := sign.Verify(tampered, keys, time.Now()); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify tampered payload: %v, want ErrBadSignature", err)
	}

	var rotated sign.PublicKey
	e.api("POST", "/api/v1/keys/rotate", map[string]any{}, http.StatusCreated, &rotated)
	_, env2 := e.checkIn(key, c)
	if env2.Signatures[0].KeyID != rotated.ID || env.Signatures[0].KeyID == rotated.ID {
		t.Errorf("after rotation signed by %s, want the new key %s", env2.Signatures[0].KeyID, rotated.ID)
	}
	if _, err := sign.Verify(env, e.publicKeys(), time.Now()); err != nil {
		t.Errorf("an answer signed by the old key no longer verifies: %v", err)
	}
	if n := len(e.publicKeys()); n != 2 {
		t.Errorf("/v1/keys lists %d keys after one rotation, want 2", n)
	}
	// During the rotation overlap the previous key co-signs, so an agent
	// that pinned only the keys it knew before the rotation is not cut off.
	if len(env2.Signatures) != 2 || env2.Signatures[1].KeyID != env.Signatures[0].KeyID {
		t.Errorf("answer after rotation signed by %+v, want the new key and the previous one", env2.Signatures)
	}
	if _, err := sign.Verify(env2, keys, time.Now()); err != nil {
		t.Errorf("agent pinned to the pre-rotation keys rejects an answer during the overlap: %v", err)
	}
	// That agent does not accept an answer signed only by the new, unpinned
	// key.
	onlyNew := env2
	onlyNew.Signatures = env2.Signatures[:1]
	if _, err := sign.Verify(onlyNew, keys, time.Now()); !errors.Is(err, sign.ErrNoTrustedSignature) {
		t.Errorf("answer signed only by an unpinned key: %v, want ErrNoTrustedSignature", err)
	}
	// The answers of the overlap name both signers, so that agent learns
	// the new key from an answer its pinned key vouches for. Before the
	// rotation answers named no keys.
	if bytes.Contains(env.Payload, []byte("signing_keys")) {
		t.Errorf("an answer outside any overlap names its signers: %s", env.Payload)
	}
	intro, err := sign.Introductions(env2, keys)
	if err != nil || len(intro) != 1 || intro[0].Key.ID != rotated.ID || !intro[0].Key.Key.Equal(rotated.Key) || intro[0].By != env.Signatures[0].KeyID {
		t.Errorf("introductions of an overlap answer to the old pin: %+v, %v; want %s", intro, err, rotated.ID)
	}
}

// TestCheckInRejects checks the check-in's refusals: malformed, oversized,
// unknown key, another product's key, rate limit.
func TestCheckInRejects(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{CheckInRate: 0.01, CheckInBurst: 3})
	key := setupProduct(e)
	good, err := json.Marshal(checkIn{InstanceID: "i-1", Product: "acme", Version: "1.0.0", Nonce: randomID(t)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  string
		body []byte
		want int
		code string
	}{
		{"malformed", key, []byte(`{"instance_id": `), 400, "invalid"},
		{"unknown field", key, []byte(`{"instance_id":"i","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","x":1}`), 400, "invalid"},
		{"oversized", key, append(append([]byte(`{"instance_id":"`), bytes.Repeat([]byte("a"), 70<<10)...), `"}`...), 413, "too_large"},
		{"no key", "", good, 401, "unauthorized"},
		{"unknown key", "rfe_nope", good, 401, "unauthorized"},
	}
	for _, c := range cases {
		code, hdr, body := e.checkInRaw(c.key, c.body)
		var p problem.Details
		if err := json.Unmarshal(body, &p); err != nil || code != c.want || p.Code != c.code || p.Status != c.want || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want %d problem %s", c.name, code, hdr.Get("Content-Type"), body, c.want, c.code)
		}
	}
	// The burst of 3 was partly used by the rejected requests that had the
	// key (malformed, unknown field, oversized): the next one is limited.
	code, hdr, body := e.checkInRaw(key, good)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("check-in beyond the rate: %d Retry-After %q: %s", code, hdr.Get("Retry-After"), body)
	}
	// Another key has its own bucket; a key of another product is refused.
	e.api("POST", "/api/v1/products", map[string]any{"name": "other"}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/other/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	otherKey := e.enroll("other", "bigbank", "all")
	if code, _, body := e.checkInRaw(otherKey, good); code != http.StatusForbidden {
		t.Errorf("check-in for acme with other's key: %d %s, want 403", code, body)
	}
}

// TestRouteTableAuth walks every admin route: none answers without a token,
// with an unknown token, or to a role weaker than the route's.
func TestRouteTableAuth(t *testing.T) {
	// The least role of every admin route, copied from docs/api.md's route
	// table (not from the server's own table, which is what is checked).
	documented := map[string]release.Role{
		"GET /api/v1/whoami":                                               release.RoleViewer,
		"GET /api/v1/products":                                             release.RoleViewer,
		"POST /api/v1/products":                                            release.RoleAdmin,
		"GET /api/v1/products/{product}":                                   release.RoleViewer,
		"PATCH /api/v1/products/{product}":                                 release.RoleAdmin,
		"GET /api/v1/products/{product}/rings":                             release.RoleViewer,
		"POST /api/v1/products/{product}/rings":                            release.RoleAdmin,
		"GET /api/v1/products/{product}/rings/{ring}":                      release.RoleViewer,
		"PATCH /api/v1/products/{product}/rings/{ring}":                    release.RoleAdmin,
		"GET /api/v1/products/{product}/customers":                         release.RoleViewer,
		"POST /api/v1/products/{product}/customers":                        release.RoleAdmin,
		"GET /api/v1/products/{product}/customers/{customer}":              release.RoleViewer,
		"PATCH /api/v1/products/{product}/customers/{customer}":            release.RoleAdmin,
		"GET /api/v1/products/{product}/customers/{customer}/keys":         release.RoleAdmin,
		"POST /api/v1/products/{product}/customers/{customer}/keys":        release.RoleAdmin,
		"DELETE /api/v1/products/{product}/customers/{customer}/keys/{id}": release.RoleAdmin,
		"GET /api/v1/products/{product}/releases":                          release.RoleViewer,
		"POST /api/v1/products/{product}/releases":                         release.RoleReleaser,
		"GET /api/v1/products/{product}/releases/{version}":                release.RoleViewer,
		"POST /api/v1/products/{product}/releases/{version}/pause":         release.RoleReleaser,
		"POST /api/v1/products/{product}/releases/{version}/resume":        release.RoleReleaser,
		"POST /api/v1/products/{product}/releases/{version}/pull":          release.RoleReleaser,
		"POST /api/v1/products/{product}/releases/{version}/promote":       release.RoleReleaser,
		"GET /api/v1/products/{product}/releases/{version}/gates":          release.RoleViewer,
		"POST /api/v1/products/{product}/releases/{version}/gates":         release.RoleReleaser,
		"GET /api/v1/products/{product}/releases/{version}/holds":          release.RoleViewer,
		"POST /api/v1/products/{product}/releases/{version}/holds":         release.RoleViewer,
		"POST /api/v1/products/{product}/holds/{id}/resolve":               release.RoleReleaser,
		"GET /api/v1/products/{product}/status":                            release.RoleViewer,
		"GET /api/v1/products/{product}/installations":                     release.RoleViewer,
		"GET /api/v1/products/{product}/installations/{instance}":          release.RoleViewer,
		"GET /api/v1/tokens":                                               release.RoleAdmin,
		"POST /api/v1/tokens":                                              release.RoleAdmin,
		"DELETE /api/v1/tokens/{id}":                                       release.RoleAdmin,
		"GET /api/v1/users":                                                release.RoleAdmin,
		"POST /api/v1/users":                                               release.RoleAdmin,
		"DELETE /api/v1/users/{name}":                                      release.RoleAdmin,
		"GET /api/v1/audit":                                                release.RoleViewer,
		"POST /api/v1/keys/rotate":                                         release.RoleAdmin,
		"GET /api/v1/components":                                           release.RoleViewer,
		"POST /api/v1/components":                                          release.RoleIncident,
		"PATCH /api/v1/components/{name}":                                  release.RoleIncident,
		"POST /api/v1/components/{name}/status":                            release.RoleIncident,
		"GET /api/v1/incidents":                                            release.RoleViewer,
		"POST /api/v1/incidents":                                           release.RoleIncident,
		"GET /api/v1/incidents/{id}":                                       release.RoleViewer,
		"POST /api/v1/incidents/{id}/updates":                              release.RoleIncident,
		"POST /api/v1/incidents/{id}/resolve":                              release.RoleIncident,
		"POST /api/v1/incidents/{id}/publish":                              release.RoleIncident,
		"PUT /api/v1/incidents/{id}/postmortem":                            release.RoleIncident,
		"PUT /api/v1/incidents/{id}/roles/{role}":                          release.RoleIncident,
		"DELETE /api/v1/incidents/{id}/roles/{role}":                       release.RoleIncident,
		"GET /api/v1/incident-templates":                                   release.RoleViewer,
		"PUT /api/v1/incident-templates/{name}":                            release.RoleIncident,
		"GET /api/v1/incident-config":                                      release.RoleViewer,
		"PUT /api/v1/incident-config":                                      release.RoleAdmin,
		"GET /api/v1/maintenances":                                         release.RoleViewer,
		"POST /api/v1/maintenances":                                        release.RoleIncident,
		"GET /api/v1/maintenances/{id}":                                    release.RoleViewer,
		"POST /api/v1/maintenances/{id}/status":                            release.RoleIncident,
		"GET /api/v1/subscribers":                                          release.RoleViewer,
		"POST /api/v1/subscribers":                                         release.RoleIncident,
		"DELETE /api/v1/subscribers/{id}":                                  release.RoleIncident,
		"GET /api/v1/deliveries":                                           release.RoleViewer,
		"POST /api/v1/deliveries/{id}/replay":                              release.RoleIncident,
		"POST /api/v1/products/{product}/customers/{customer}/bundles":     release.RoleReleaser,
		"POST /api/v1/exports":                                             release.RoleReleaser,
	}
	e := startServer(t, servertest.SQLite(t), server.Config{})
	setupProduct(e)
	roles := []release.Role{release.RoleViewer, release.RoleReleaser, release.RoleIncident, release.RoleAdmin}
	tokens := map[release.Role]string{}
	for _, r := range roles {
		tokens[r] = e.token("t-"+string(r), r)
	}
	values := map[string]string{"{product}": "acme", "{ring}": "all", "{customer}": "bigbank", "{version}": "1.0.0", "{id}": "x", "{name}": "x", "{instance}": "x"}
	served := map[string]bool{}
	for _, rt := range e.Srv.Routes() {
		served[rt.Method+" "+rt.Path] = true
	}
	for route := range served {
		if _, ok := documented[route]; !ok {
			t.Errorf("route %s is served but not in docs/api.md's table", route)
		}
	}
	for route, need := range documented {
		if !served[route] {
			t.Errorf("documented route %s is not served", route)
			continue
		}
		method, tmpl, _ := strings.Cut(route, " ")
		path := tmpl
		for k, v := range values {
			path = strings.ReplaceAll(path, k, v)
		}
		if code, body := e.call(method, path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", route, code, body)
		}
		if code, _ := e.call(method, path, "rft_unknown", nil); code != http.StatusUnauthorized {
			t.Errorf("%s with an unknown token: %d", route, code)
		}
		for _, r := range roles {
			code, body := e.call(method, path, tokens[r], map[string]any{})
			switch {
			case !r.AtLeast(need) && code != http.StatusForbidden:
				t.Errorf("%s as %s (documented: %s): %d %s, want 403", route, r, need, code, body)
			case r.AtLeast(need) && (code == http.StatusForbidden || code == http.StatusUnauthorized):
				t.Errorf("%s as %s (documented: %s): %d %s", route, r, need, code, body)
			}
		}
	}
}

// twoServers runs two servers on one PostgreSQL database: a pause through
// one is in the other's answers within a second (without waiting for its
// timer), and an auto-halt both see happens once.
func twoServers(t *testing.T, dsn string) {
	hook := newWebhookReceiver(t)
	cfg := server.Config{IncidentWebhook: hook.URL, WebhookAllowPrivate: true, RefreshInterval: time.Minute, CheckInRate: 1000, CheckInBurst: 1000}
	a := startServer(t, dsn, cfg)
	b := startServer(t, dsn, cfg)
	a.api("POST", "/api/v1/products", map[string]any{"name": "acme",
		"halt": map[string]any{"window": "1h", "min_failures": 4, "failure_share": 0.5, "min_customers": 1}}, http.StatusCreated, nil)
	a.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "all", "position": 0, "soak": "1h", "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		a.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	key := a.enroll("acme", "bigbank", "all")
	c := checkIn{InstanceID: "i-0", Product: "acme", Version: "1.0.0"}
	servertest.Eventually(t, time.Second, "server b knows the key and offers 1.1.0, both created through a", func() bool {
		c := c
		c.Nonce = randomID(t)
		if code, _, _ := b.checkInRaw(key, mustJSON(t, c)); code != http.StatusOK {
			return false
		}
		return offer(mustAnswer(b, key, c)) == "1.1.0"
	})

	a.api("POST", "/api/v1/products/acme/releases/1.1.0/pause", map[string]any{"reason": "stop"}, http.StatusOK, nil)
	paused := time.Now()
	servertest.Eventually(t, time.Second, "pause through a reaches b's answers", func() bool {
		return offer(mustAnswer(b, key, c)) == ""
	})
	t.Logf("pause visible on b after %s", time.Since(paused))
	a.api("POST", "/api/v1/products/acme/releases/1.1.0/resume", map[string]any{}, http.StatusOK, nil)
	servertest.Eventually(t, time.Second, "resume reaches b", func() bool { return offer(mustAnswer(b, key, c)) == "1.1.0" })

	// Failures reach both servers; the release is halted once.
	for i := range 8 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		id := "f-" + string(rune('a'+i))
		srv.checkIn(key, checkIn{InstanceID: id, Product: "acme", Version: "1.0.0"}) // known before it reports
		srv.checkIn(key, checkIn{InstanceID: id, Product: "acme", Version: "1.0.0",
			Events: []map[string]any{{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC()}}})
	}
	servertest.Eventually(t, 5*time.Second, "auto-halt", func() bool {
		return offer(mustAnswer(a, key, c)) == "" && offer(mustAnswer(b, key, c)) == ""
	})
	servertest.Eventually(t, 5*time.Second, "webhook", func() bool { return len(hook.received()) >= 1 })
	time.Sleep(500 * time.Millisecond) // room for a second, wrong, delivery
	if n := len(hook.received()); n != 1 {
		t.Errorf("%d incident webhooks for one auto-halt, want 1", n)
	}
	if halts := a.auditEntries("release.auto_halt"); len(halts) != 1 {
		t.Errorf("%d auto-halt audit entries, want 1", len(halts))
	}
	if incs := a.auditEntries("incident.declare"); len(incs) != 1 || incs[0].Actor != sqlstore.ActorAutoHalt {
		t.Errorf("incidents declared for one auto-halt: %+v, want 1 by auto-halt", incs)
	}
}

// mustAnswer checks in and returns the verified answer.
func mustAnswer(e *env, key string, c checkIn) release.Answer {
	e.t.Helper()
	a, _ := e.checkIn(key, c)
	return a
}

// TestForgedHaltEvidence: one customer's enrollment key cannot pause a
// release for everyone by reporting failures under invented instance ids,
// nor by reporting from many installations of its own, nor by adding its
// failures to one of another customer; failures of known installations of
// a second customer then do halt it.
func TestForgedHaltEvidence(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{RefreshInterval: 50 * time.Millisecond})
	const p = "/api/v1/products/acme"
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil) // default policy
	e.api("POST", p+"/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", p+"/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	mallory := e.enroll("acme", "mallory", "all")
	bigbank := e.enroll("acme", "bigbank", "all")
	failed := []map[string]any{{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC()}}
	status := func() release.Status {
		var rel release.Release
		e.api("GET", p+"/releases/1.1.0", nil, http.StatusOK, &rel)
		return rel.Status
	}

	// Invented ids reporting in their first check-in: ignored.
	for i := range 5 {
		e.checkIn(mallory, checkIn{InstanceID: fmt.Sprintf("fake-%d", i), Product: "acme", Version: "1.0.0", Events: failed})
	}
	// The same ids, now known, still are one customer.
	for i := range 5 {
		e.checkIn(mallory, checkIn{InstanceID: fmt.Sprintf("fake-%d", i), Product: "acme", Version: "1.0.0", Events: failed})
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong halt
	if st := status(); st != release.StatusOK {
		t.Fatalf("one customer's reports made 1.1.0 %s", st)
	}
	// One known installation of a second customer fails too: mallory's
	// failures count no more than that customer's (release.Weigh), 2 < 3.
	e.checkIn(bigbank, checkIn{InstanceID: "fake-0", Product: "acme", Version: "1.0.0"})
	e.checkIn(bigbank, checkIn{InstanceID: "fake-0", Product: "acme", Version: "1.0.0", Events: failed})
	time.Sleep(300 * time.Millisecond)
	if st := status(); st != release.StatusOK {
		t.Fatalf("one customer's reports and one failure of another made 1.1.0 %s", st)
	}
	// A second known installation of the second customer fails: 2 + 2
	// (mallory's weighed as bigbank's) of 4: halt.
	for _, id := range []string{"fake-1"} {
		e.checkIn(bigbank, checkIn{InstanceID: id, Product: "acme", Version: "1.0.0"})
		e.checkIn(bigbank, checkIn{InstanceID: id, Product: "acme", Version: "1.0.0", Events: failed})
	}
	servertest.Eventually(t, 5*time.Second, "auto-halt with two customers", func() bool { return status() == release.StatusPaused })
	halts := e.auditEntries("release.auto_halt")
	if len(halts) != 1 {
		t.Fatalf("%d auto-halt audit entries, want 1", len(halts))
	}
	var after struct{ Evidence release.Evidence }
	if err := json.Unmarshal(halts[0].After, &after); err != nil {
		t.Fatal(err)
	}
	if ev := after.Evidence; ev.Failed != 4 || ev.Customers != 2 || ev.Ignored != 5 {
		t.Errorf("evidence = failed %d of %d customers, %d ignored; want 4 of 2, 5 ignored", ev.Failed, ev.Customers, ev.Ignored)
	}
}

// TestIncidentWebhookRetries makes the receiver fail twice and hang once:
// the hook is retried with backoff, each attempt bounded by the timeout,
// and delivered once.
func TestIncidentWebhookRetries(t *testing.T) {
	var mu sync.Mutex
	var attempts int
	var delivered []server.IncidentHook
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		switch n {
		case 1, 2:
			http.Error(w, "down", http.StatusInternalServerError)
			return
		case 3:
			// Hang longer than the webhook timeout. Reading the body first lets
			// the server notice the client giving up.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		var h server.IncidentHook
		if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		delivered = append(delivered, h)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	e := startServer(t, servertest.SQLite(t), server.Config{IncidentWebhook: recv.URL, WebhookAllowPrivate: true, WebhookTimeout: 200 * time.Millisecond,
		WebhookBackoff: 20 * time.Millisecond, WebhookAttempts: 5})
	haltOneRelease(e)
	servertest.Eventually(t, 5*time.Second, "webhook delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 1
	})
	mu.Lock()
	if attempts != 4 || delivered[0].Release.Version.String() != "1.1.0" || delivered[0].Evidence.Failures[0].Detail != "index t_pkey" {
		t.Errorf("after %d attempts delivered %+v; want the 4th attempt to deliver 1.1.0's evidence", attempts, delivered)
	}
	mu.Unlock()
	// The receiver has the webhook before the server has read its answer
	// and counted it: wait for the count.
	servertest.Eventually(t, 5*time.Second, "metrics count the delivery", func() bool {
		_, metrics := e.call("GET", "/metrics", testMetricsToken, nil)
		return bytes.Contains(metrics, []byte(`ringfence_incident_webhooks_total{outcome="delivered"} 1`))
	})
}

// TestAutoHaltAfterRestart: failures committed by a server that died before
// evaluating them (its queue is in memory) halt the release when a server
// starts on the store, without any new check-in.
func TestAutoHaltAfterRestart(t *testing.T) {
	ctx := context.Background()
	dsn := servertest.SQLite(t)
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	v := release.MustParseVersion("1.1.0")
	if _, err := store.CreateProduct(ctx, "admin", release.Product{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateRelease(ctx, "admin", release.Release{Product: "acme", Version: v}); err != nil {
		t.Fatal(err)
	}
	// What the dead server committed: four known installations of two
	// customers (two each) failed to upgrade to 1.1.0.
	now := time.Now().UTC()
	from := release.MustParseVersion("1.0.0")
	var seen, failed []sqlstore.CheckInRecord
	for i, c := range []string{"bigbank", "bigbank", "startup", "startup"} {
		r := sqlstore.CheckInRecord{Product: "acme", Customer: c, InstanceID: fmt.Sprintf("i-%d", i), Version: from, ReceivedAt: now}
		seen = append(seen, r)
		r.Events = []release.Event{{Kind: release.EventUpgradeFailed, From: from, To: v, At: now}}
		failed = append(failed, r)
	}
	for _, batch := range [][]sqlstore.CheckInRecord{seen, failed} {
		if err := store.RecordCheckIns(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	e := startServer(t, dsn, server.Config{})
	servertest.Eventually(t, 5*time.Second, "auto-halt at start", func() bool {
		var rel release.Release
		e.api("GET", "/api/v1/products/acme/releases/1.1.0", nil, http.StatusOK, &rel)
		return rel.Status == release.StatusPaused
	})
}

// TestTokenNamesAndActors: live tokens have distinct names, and audit
// entries name the token by name and id, so two tokens that shared a name
// over time are told apart.
func TestTokenNamesAndActors(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	setupProduct(e)
	var first, second release.Token
	e.api("POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "releaser"}, http.StatusCreated, &first)
	e.api("POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "releaser"}, http.StatusConflict, nil)
	e.api("POST", "/api/v1/products/acme/releases/1.0.0/pause", map[string]any{"reason": "first"}, http.StatusOK, nil)
	e.api("DELETE", "/api/v1/tokens/"+first.ID, nil, http.StatusNoContent, nil)
	e.api("POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "releaser"}, http.StatusCreated, &second)
	var tok struct {
		Token string `json:"token"`
	}
	e.api("POST", "/api/v1/tokens", map[string]any{"name": "ci2", "role": "releaser"}, http.StatusCreated, &tok)
	e.apiAs(tok.Token, "POST", "/api/v1/products/acme/releases/1.0.0/resume", map[string]any{}, http.StatusOK, nil)
	for _, en := range e.auditEntries("release.resume") {
		if !strings.HasPrefix(en.Actor, "ci2 (") || !strings.HasSuffix(en.Actor, ")") {
			t.Errorf("resume audited as %q, want \"ci2 (<id>)\"", en.Actor)
		}
	}
	actors := map[string]string{}
	for _, en := range e.auditEntries("token.create") {
		actors[en.Target] = en.Actor
	}
	for _, tok := range []release.Token{first, second} {
		if a := actors["token/"+tok.ID]; !strings.HasPrefix(a, "root (") {
			t.Errorf("creation of token %s audited as %q, want the admin token's name and id", tok.ID, a)
		}
	}
	if first.ID == second.ID {
		t.Errorf("both tokens named ci have id %s", first.ID)
	}
}

// TestAutoHaltAgainAfterResume: a person's resume is not overridden by the
// evidence received before it (the sweep keeps re-evaluating it), but new
// failures after the resume halt the release again.
func TestAutoHaltAgainAfterResume(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{HaltSweepInterval: 20 * time.Millisecond, RefreshInterval: 20 * time.Millisecond})
	haltOneRelease(e)
	const rel = "/api/v1/products/acme/releases/1.1.0"
	status := func() release.Status {
		var r release.Release
		e.api("GET", rel, nil, http.StatusOK, &r)
		return r.Status
	}
	servertest.Eventually(t, 5*time.Second, "first auto-halt", func() bool { return status() == release.StatusPaused })
	e.api("POST", rel+"/resume", map[string]any{"reason": "false alarm"}, http.StatusOK, nil)
	time.Sleep(300 * time.Millisecond) // many sweeps over the old evidence
	if st := status(); st != release.StatusOK {
		t.Fatalf("after a resume, the evidence from before it halted the release again: %s", st)
	}
	key := e.enroll("acme", "startup", "all")
	e.checkIn(key, checkIn{InstanceID: "j-1", Product: "acme", Version: "1.1.0"})
	e.checkIn(key, checkIn{InstanceID: "j-1", Product: "acme", Version: "1.1.0", Health: &release.Health{Status: release.HealthCorrupt}})
	servertest.Eventually(t, 5*time.Second, "second auto-halt on new evidence", func() bool { return status() == release.StatusPaused })
	halts := e.auditEntries("release.auto_halt")
	if len(halts) != 2 {
		t.Fatalf("%d auto-halt audit entries, want 2", len(halts))
	}
	for _, en := range halts {
		var after struct{ Evidence release.Evidence }
		if err := json.Unmarshal(en.After, &after); err != nil {
			t.Fatal(err)
		}
		if after.Evidence.Failed != 1 {
			t.Errorf("auto-halt evidence counts %d failures, want 1 (only those after the resume)", after.Evidence.Failed)
		}
	}
}

// TestIncidentNotificationSurvivesRestart: the incident notification is
// queued in the store with the auto-halt; a server stopped before it could
// deliver it (its receiver was down) leaves it to the next server, which
// delivers it.
func TestIncidentNotificationSurvivesRestart(t *testing.T) {
	dsn := servertest.SQLite(t)
	var down atomic.Int32
	t.Run("first server, receiver down", func(t *testing.T) {
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			down.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		defer recv.Close()
		e := startServer(t, dsn, server.Config{IncidentWebhook: recv.URL, WebhookAllowPrivate: true, WebhookAttempts: 100,
			WebhookBackoff: 50 * time.Millisecond})
		haltOneRelease(e)
		servertest.Eventually(t, 5*time.Second, "first delivery attempt", func() bool { return down.Load() > 0 })
	}) // the first server stops here
	hook := newWebhookReceiver(t)
	startServer(t, dsn, server.Config{IncidentWebhook: hook.URL, WebhookAllowPrivate: true, WebhookBackoff: 10 * time.Millisecond})
	servertest.Eventually(t, 5*time.Second, "notification delivered by the next server", func() bool { return len(hook.received()) == 1 })
	if h := hook.received()[0]; h.Event != "release.auto_halt" || h.Release.Version.String() != "1.1.0" {
		t.Errorf("delivered %+v", h)
	}
}

// haltOneRelease sets up product acme with a policy that halts on one
// failure and has a known installation report corruption on 1.1.0.
func haltOneRelease(e *env) {
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme", "halt": map[string]any{"window": "1h", "min_failures": 1, "failure_share": 0, "min_customers": 1}}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	key := e.enroll("acme", "bigbank", "all")
	e.checkIn(key, checkIn{InstanceID: "i-1", Product: "acme", Version: "1.1.0"})
	e.checkIn(key, checkIn{InstanceID: "i-1", Product: "acme", Version: "1.1.0", Health: &release.Health{Status: release.HealthCorrupt, Detail: "index t_pkey"}})
}

// TestIncidentWebhookRefusesInternalTargets: without --webhook-allow-private
// the webhook never reaches a loopback receiver, and a redirect is not
// followed even when private addresses are allowed.
func TestIncidentWebhookRefusesInternalTargets(t *testing.T) {
	failedOnce := func(e *env) bool {
		_, metrics := e.call("GET", "/metrics", testMetricsToken, nil)
		return bytes.Contains(metrics, []byte(`ringfence_incident_webhooks_total{outcome="failed"} 1`))
	}
	t.Run("loopback", func(t *testing.T) {
		hook := newWebhookReceiver(t)
		logs := &servertest.Buffer{}
		// The URL's path and query hold secrets, as incident tools' URLs do;
		// the logs name only scheme and host.
		e := startServer(t, servertest.SQLite(t), server.Config{IncidentWebhook: hook.URL + "/hooks/s3cr3t-path?token=hunter2",
			WebhookAttempts: 1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		haltOneRelease(e)
		servertest.Eventually(t, 5*time.Second, "webhook attempt refused", func() bool { return failedOnce(e) })
		if n := len(hook.received()); n != 0 {
			t.Fatalf("loopback receiver got %d webhooks without --webhook-allow-private", n)
		}
		out := logs.String()
		if !strings.Contains(out, "incident webhook failed") || !strings.Contains(out, strings.TrimPrefix(hook.URL, "http://")) {
			t.Errorf("logs do not report the refused attempt with its host: %s", out)
		}
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "hunter2") {
			t.Errorf("logs leak the webhook URL's secrets: %s", out)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		hook := newWebhookReceiver(t)
		redirect := httptest.NewServer(http.RedirectHandler(hook.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		e := startServer(t, servertest.SQLite(t), server.Config{IncidentWebhook: redirect.URL, WebhookAllowPrivate: true, WebhookAttempts: 1})
		haltOneRelease(e)
		servertest.Eventually(t, 5*time.Second, "redirected webhook counted as failed", func() bool { return failedOnce(e) })
		if n := len(hook.received()); n != 0 {
			t.Fatalf("redirect target got %d webhooks", n)
		}
	})
}

// TestAdminChanges checks the admin routes' effects: patches, moving a
// customer between rings, revoking enrollment keys and tokens, force
// promotion, and the audit trail of who did it.
func TestAdminChanges(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	const p = "/api/v1/products/acme"
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme"}, http.StatusCreated, nil)
	e.api("POST", p+"/rings", map[string]any{"name": "early", "position": 0, "soak": "720h", "rollout_percent": 100}, http.StatusCreated, nil)
	e.api("POST", p+"/rings", map[string]any{"name": "stable", "position": 1, "soak": "0s", "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", p+"/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	key := e.enroll("acme", "bigbank", "stable")
	c := checkIn{InstanceID: "i-1", Product: "acme", Version: "1.0.0"}
	if a, _ := e.checkIn(key, c); offer(a) != "" {
		t.Fatalf("stable offered %s before the early ring's soak", offer(a))
	}

	// Moving the customer to the early ring changes its offer at once.
	var cust release.Customer
	e.api("PATCH", p+"/customers/bigbank", map[string]any{"ring": "early"}, http.StatusOK, &cust)
	if cust.Ring != "early" {
		t.Fatalf("customer after move = %+v", cust)
	}
	if a, _ := e.checkIn(key, c); offer(a) != "1.1.0" {
		t.Fatalf("offer after moving to early: %q", offer(a))
	}
	// A rollout of 0% in the ring stops offers there.
	var ring release.Ring
	e.api("PATCH", p+"/rings/early", map[string]any{"rollout_percent": 0, "soak": "2h"}, http.StatusOK, &ring)
	if ring.RolloutPercent != 0 || ring.SoakTime != 2*time.Hour || ring.Position != 0 {
		t.Fatalf("ring after patch = %+v", ring)
	}
	if a, _ := e.checkIn(key, c); offer(a) != "" {
		t.Fatalf("offer at 0%% rollout: %q", offer(a))
	}
	e.api("PATCH", p+"/rings/early", map[string]any{"rollout_percent": 101}, http.StatusBadRequest, nil)
	e.api("PATCH", p+"/rings/nope", map[string]any{"rollout_percent": 10}, http.StatusNotFound, nil)

	// Force-promotion into stable needs a reason and is recorded as forced.
	e.api("PATCH", p+"/customers/bigbank", map[string]any{"ring": "stable"}, http.StatusOK, nil)
	releaser := e.token("rita", release.RoleReleaser)
	e.apiAs(releaser, "POST", p+"/releases/1.1.0/promote", map[string]any{"ring": "stable"}, http.StatusBadRequest, nil)
	var rel release.Release
	e.apiAs(releaser, "POST", p+"/releases/1.1.0/promote", map[string]any{"ring": "stable", "reason": "hotfix for bigbank"}, http.StatusOK, &rel)
	var forced bool
	for _, pr := range rel.Rings {
		forced = forced || (pr.Ring == "stable" && pr.Forced && strings.HasPrefix(pr.By, "rita (") && pr.Reason == "hotfix for bigbank")
	}
	if !forced {
		t.Fatalf("release after force-promote = %+v", rel)
	}
	if a, _ := e.checkIn(key, c); offer(a) != "1.1.0" {
		t.Fatalf("stable offer after force-promotion: %q", offer(a))
	}
	e.apiAs(releaser, "POST", p+"/releases/1.1.0/promote", map[string]any{"ring": "stable", "reason": "again"}, http.StatusConflict, nil)

	// The auto-halt policy can be changed; invalid ones are refused.
	var prod release.Product
	e.api("PATCH", p, map[string]any{"halt": map[string]any{"window": "30m", "min_failures": 5, "failure_share": 0.1}}, http.StatusOK, &prod)
	if prod.Policy.Window != 30*time.Minute || prod.Policy.MinFailures != 5 {
		t.Fatalf("product after patch = %+v", prod)
	}
	e.api("PATCH", p, map[string]any{"halt": map[string]any{"min_failures": 0}}, http.StatusBadRequest, nil)

	// A revoked enrollment key is refused from the next check-in on.
	var keys []release.EnrollmentKey
	e.api("GET", p+"/customers/bigbank/keys", nil, http.StatusOK, &keys)
	if len(keys) != 1 || !strings.HasPrefix(key, keys[0].Prefix) {
		t.Fatalf("keys = %+v", keys)
	}
	e.api("DELETE", p+"/customers/bigbank/keys/"+keys[0].ID, nil, http.StatusNoContent, nil)
	if code, _, _ := e.checkInRaw(key, mustJSON(t, checkIn{InstanceID: "i-1", Product: "acme", Version: "1.0.0", Nonce: randomID(t)})); code != http.StatusUnauthorized {
		t.Errorf("check-in with a revoked key: %d, want 401", code)
	}
	// A revoked token is refused.
	var toks []release.Token
	e.api("GET", "/api/v1/tokens", nil, http.StatusOK, &toks)
	for _, tok := range toks {
		if tok.Name == "rita" {
			e.api("DELETE", "/api/v1/tokens/"+tok.ID, nil, http.StatusNoContent, nil)
		}
	}
	e.apiAs(releaser, "GET", "/api/v1/whoami", nil, http.StatusUnauthorized, nil)

	// The audit log names who did what, newest first, and pages with before.
	var audit []release.AuditEntry
	e.api("GET", "/api/v1/audit?limit=3", nil, http.StatusOK, &audit)
	if len(audit) != 3 || audit[0].Action != "token.revoke" || audit[1].Action != "enrollment_key.revoke" || audit[0].ID <= audit[1].ID {
		t.Fatalf("latest audit entries = %+v", audit)
	}
	var older []release.AuditEntry
	e.api("GET", "/api/v1/audit?limit=1&before="+strconv.FormatInt(audit[2].ID, 10), nil, http.StatusOK, &older)
	if len(older) != 1 || older[0].ID >= audit[2].ID {
		t.Fatalf("audit page before %d = %+v", audit[2].ID, older)
	}
	e.api("GET", "/api/v1/audit?limit=0", nil, http.StatusBadRequest, nil)
	var forceEntry bool
	e.api("GET", "/api/v1/audit?limit=1000", nil, http.StatusOK, &audit)
	for _, en := range audit {
		forceEntry = forceEntry || (en.Action == "release.force_promote" && strings.HasPrefix(en.Actor, "rita ("))
	}
	if !forceEntry {
		t.Errorf("audit log lacks rita's force-promotion")
	}
}
