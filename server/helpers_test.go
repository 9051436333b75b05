package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// env is one running server on :0 with an admin token.
type env struct {
	t     testing.TB
	URL   string
	Store *sqlstore.Store
	Srv   *server.Server
	Admin string
}

// testMetricsToken is the metrics token startServer gives servers.
const testMetricsToken = "test-metrics-token"

// startServer runs a server on store dsn with cfg (Store is filled in),
// served over real HTTP on :0, stopped when the test ends.
func startServer(t testing.TB, dsn string, cfg server.Config) *env {
	t.Helper()
	if cfg.MetricsToken == "" {
		cfg.MetricsToken = testMetricsToken
	}
	s := servertest.Start(t, dsn, cfg)
	return &env{t: t, URL: s.URL, Store: s.Store, Srv: s.Srv, Admin: s.Admin}
}

func randomID(t testing.TB) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// call makes an API request with token (none if empty) and returns status
// and body.
func (e *env) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// api makes an admin request that must answer want; it decodes the answer
// into out (if not nil).
func (e *env) api(method, path string, body any, want int, out any) {
	e.t.Helper()
	e.apiAs(e.Admin, method, path, body, want, out)
}

func (e *env) apiAs(token, method, path string, body any, want int, out any) {
	e.t.Helper()
	code, b := e.call(method, path, token, body)
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// auditEntries returns the last 1000 audit entries recording action.
func (e *env) auditEntries(action string) []release.AuditEntry {
	e.t.Helper()
	var all, out []release.AuditEntry
	e.api("GET", "/api/v1/audit?limit=1000", nil, http.StatusOK, &all)
	for _, en := range all {
		if en.Action == action {
			out = append(out, en)
		}
	}
	return out
}

// token creates an API token with role and returns its secret.
func (e *env) token(name string, role release.Role) string {
	e.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	e.api("POST", "/api/v1/tokens", map[string]any{"name": name, "role": role}, http.StatusCreated, &out)
	return out.Token
}

// enroll creates a customer in ring and returns an enrollment key for it.
func (e *env) enroll(product, customer, ring string) string {
	e.t.Helper()
	e.api("POST", "/api/v1/products/"+product+"/customers", map[string]any{"name": customer, "ring": ring}, http.StatusCreated, nil)
	var out struct {
		Key string `json:"key"`
	}
	e.api("POST", "/api/v1/products/"+product+"/customers/"+customer+"/keys", map[string]any{}, http.StatusCreated, &out)
	return out.Key
}

// checkIn is an agent's check-in.
type checkIn struct {
	InstanceID string           `json:"instance_id"`
	Product    string           `json:"product"`
	Version    string           `json:"version"`
	Nonce      string           `json:"nonce"`
	Health     *release.Health  `json:"health,omitempty"`
	Events     []map[string]any `json:"events,omitempty"`
}

// checkInRaw posts body with key and returns status, headers and body.
func (e *env) checkInRaw(key string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.URL+"/v1/checkin", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// checkIn posts c with key, verifies the signed answer against /v1/keys and
// returns it with the raw envelope.
func (e *env) checkIn(key string, c checkIn) (release.Answer, sign.Envelope) {
	e.t.Helper()
	if c.Nonce == "" {
		c.Nonce = randomID(e.t)
	}
	body, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	code, _, b := e.checkInRaw(key, body)
	if code != http.StatusOK {
		e.t.Fatalf("check-in of %s on %s: status %d: %s", c.InstanceID, c.Version, code, b)
	}
	var env sign.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		e.t.Fatalf("decode envelope %s: %v", b, err)
	}
	payload, err := sign.Verify(env, e.publicKeys(), time.Now())
	if err != nil {
		e.t.Fatalf("answer does not verify against /v1/keys: %v", err)
	}
	var ans release.Answer
	if err := json.Unmarshal(payload, &ans); err != nil {
		e.t.Fatalf("decode answer %s: %v", payload, err)
	}
	if ans.Nonce != c.Nonce || ans.InstanceID != c.InstanceID {
		e.t.Fatalf("answer for %s/%s, want %s/%s", ans.InstanceID, ans.Nonce, c.InstanceID, c.Nonce)
	}
	return ans, env
}

// publicKeys fetches /v1/keys.
func (e *env) publicKeys() []sign.PublicKey {
	e.t.Helper()
	var out struct {
		Keys []sign.PublicKey `json:"keys"`
	}
	e.api("GET", "/v1/keys", nil, http.StatusOK, &out)
	return out.Keys
}

// offer returns the offered version, or "" for none.
func offer(a release.Answer) string {
	if a.Offer == nil {
		return ""
	}
	return a.Offer.Version.String()
}

// webhookReceiver is a real HTTP receiver for incident webhooks on :0.
type webhookReceiver struct {
	URL  string
	mu   sync.Mutex
	hits []server.IncidentHook
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var h server.IncidentHook
		if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.hits = append(w.hits, h)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	w.URL = hs.URL
	return w
}

func (w *webhookReceiver) received() []server.IncidentHook {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]server.IncidentHook(nil), w.hits...)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
