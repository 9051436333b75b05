package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// browser is a cookie-keeping HTTP client of the console that does not
// follow redirects (tests look at them).
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login logs in with form and fails unless it is sent on.
func (b *browser) login(form url.Values) *http.Response {
	b.t.Helper()
	resp, body := b.post("/admin/login", form)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("login %v: status %d: %s", form.Get("name"), resp.StatusCode, body)
	}
	return resp
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the anti-CSRF token from a page.
func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no csrf field in page: %.300s", page)
	}
	return m[1]
}

// TestConsole logs in with a password and with a token, checks the session
// cookie, the board, CSRF protection, roles from the API's table, the
// confirmation step and that changes are the API's (audit actor, answers).
func TestConsole(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	key := setupProduct(e)
	e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": "1.1.0"}, http.StatusCreated, nil)
	ctx := context.Background()
	const pw = "a long enough password"
	if _, err := e.Store.CreateUser(ctx, "test", "rita", release.RoleReleaser, pw); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CreateUser(ctx, "test", "vic", release.RoleViewer, pw); err != nil {
		t.Fatal(err)
	}

	// Not logged in: sent to the login page.
	anon := newBrowser(t, e.URL)
	if resp, _ := anon.get("/admin/products/acme"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login") {
		t.Fatalf("anonymous board: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := anon.post("/admin/login", url.Values{"name": {"rita"}, "password": {"wrong password!"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}

	rita := newBrowser(t, e.URL)
	resp := rita.login(url.Values{"name": {"rita"}, "password": {pw}, "next": {"/admin/products/acme"}})
	if loc := resp.Header.Get("Location"); loc != "/admin/products/acme" {
		t.Fatalf("after login: sent to %q", loc)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "ringfence_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/admin/" || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/admin/ (not Secure over plain http)", cookie)
	}
	resp, board := rita.get("/admin/products/acme")
	if resp.StatusCode != http.StatusOK || !strings.Contains(board, "1.1.0") || !strings.Contains(board, "<caption>") {
		t.Fatalf("board: %d %.500s", resp.StatusCode, board)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("board headers %v", resp.Header)
	}
	// The live refresh: the table alone, and 304 while nothing changed.
	resp, _ = rita.get("/admin/products/acme?part=table")
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", e.URL+"/admin/products/acme?part=table", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, _ := rita.do(req); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged table: %d (etag %q), want 304", resp.StatusCode, etag)
	}

	_, page := rita.get("/admin/products/acme/releases/1.1.0")
	csrf := rita.csrf(page)
	for _, want := range []string{`action="/admin/products/acme/releases/1.1.0/pull"`, `for="pull-reason"`, `action="/admin/products/acme/releases/1.1.0/hold"`} {
		if !strings.Contains(page, want) {
			t.Errorf("release page lacks %s", want)
		}
	}

	// A form without the anti-CSRF token is refused, and changes nothing.
	if resp, _ := rita.post("/admin/products/acme/releases/1.1.0/pause", url.Values{"reason": {"x"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("pause without CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := rita.post("/admin/products/acme/releases/1.1.0/pause", url.Values{"csrf": {"forged"}, "reason": {"x"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("pause with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	// A cross-site POST (as a browser marks it) is refused even with the token.
	req, _ = http.NewRequest("POST", e.URL+"/admin/products/acme/releases/1.1.0/pause",
		strings.NewReader(url.Values{"csrf": {csrf}, "reason": {"x"}, "confirm": {"yes"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := rita.do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site pause: %d, want 403", resp.StatusCode)
	}
	if r := e.getRelease("acme", "1.1.0"); r.Status != release.StatusOK {
		t.Fatalf("refused forms changed the release: %s", r.Status)
	}

	// A reason is required; without confirm=yes nothing happens but a question.
	if resp, _ := rita.post("/admin/products/acme/releases/1.1.0/pull", url.Values{"csrf": {csrf}, "action": {"hold"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("pull without reason: %d, want 400", resp.StatusCode)
	}
	pull := url.Values{"csrf": {csrf}, "reason": {"index order changed"}, "action": {"upgrade"}, "target": {"1.0.0"}}
	resp, body := rita.post("/admin/products/acme/releases/1.1.0/pull", pull)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Confirm: Pull") || e.getRelease("acme", "1.1.0").Status != release.StatusOK {
		t.Fatalf("pull without confirmation: %d, want a confirmation page and no change", resp.StatusCode)
	}
	// The API's own rules apply: an upgrade must go to a newer version.
	pull.Set("confirm", "yes")
	if resp, body := rita.post("/admin/products/acme/releases/1.1.0/pull", pull); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("pull upgrading to an older version: %d %.300s, want 400 from the API's validation", resp.StatusCode, body)
	}
	pull.Set("action", "hold")
	pull.Del("target")

	// A viewer sees no pull form and is refused one, as by the API.
	vic := newBrowser(t, e.URL)
	vic.login(url.Values{"name": {"vic"}, "password": {pw}})
	_, vpage := vic.get("/admin/products/acme/releases/1.1.0")
	if strings.Contains(vpage, "/pull\"") || !strings.Contains(vpage, "/hold\"") {
		t.Fatal("viewer's release page: want a hold form and no pull form")
	}
	vpull := url.Values{"csrf": {vic.csrf(vpage)}, "reason": {"x"}, "action": {"hold"}, "confirm": {"yes"}}
	if resp, body := vic.post("/admin/products/acme/releases/1.1.0/pull", vpull); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "releaser") {
		t.Fatalf("viewer pull: %d, want 403 naming the releaser role", resp.StatusCode)
	}
	if resp, _ := vic.get("/admin/tokens"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer tokens page: %d, want 403 (the tokens API needs admin)", resp.StatusCode)
	}
	// Any user may raise a flag.
	if resp, body := vic.post("/admin/products/acme/releases/1.1.0/hold", url.Values{"csrf": {vic.csrf(vpage)}, "reason": {"smells odd"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("viewer raises a flag: %d %.300s", resp.StatusCode, body)
	}

	// The releaser pulls: installations on it hear of it at their next check-in.
	if resp, body := rita.post("/admin/products/acme/releases/1.1.0/pull", pull); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pull: %d %.300s", resp.StatusCode, body)
	}
	if r := e.getRelease("acme", "1.1.0"); r.Status != release.StatusPulled || r.Pulled.Action != release.ActionHold {
		t.Fatalf("after the console's pull: %+v", r)
	}
	ans, _ := e.checkIn(key, checkIn{InstanceID: "i-1", Product: "acme", Version: "1.1.0"})
	if ans.Current.Status != release.StatusPulled || ans.Current.Action != release.ActionHold {
		t.Fatalf("answer after the pull: %+v", ans.Current)
	}
	pulls := e.auditEntries("release.pull")
	if len(pulls) != 1 || !strings.HasPrefix(pulls[0].Actor, "rita (user:") || pulls[0].Reason != "index order changed" {
		t.Fatalf("audit of the pull: %+v", pulls)
	}
	holds := e.auditEntries("hold.raise")
	if len(holds) != 1 || !strings.HasPrefix(holds[0].Actor, "vic (user:") {
		t.Fatalf("audit of the hold: %+v", holds)
	}

	// Logging in with an API token gives its role; revoking it ends the session.
	tok := e.token("ops-bot", release.RoleAdmin)
	ops := newBrowser(t, e.URL)
	ops.login(url.Values{"token": {tok}})
	if resp, body := ops.get("/admin/tokens"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ops-bot") {
		t.Fatalf("tokens page with an admin token: %d", resp.StatusCode)
	}
	if resp, body := ops.get("/admin/audit?action=release.pull"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "index order changed") || strings.Contains(body, "hold.raise") {
		t.Fatalf("filtered audit log: %d", resp.StatusCode)
	}
	// Routine check-ins are written within the writer's flush interval.
	servertest.Eventually(t, 5*time.Second, "installation i-1 found by its customer", func() bool {
		resp, body := ops.get("/admin/products/acme/installations?q=BigBank")
		return resp.StatusCode == http.StatusOK && strings.Contains(body, ">i-1<")
	})
	if _, body := ops.get("/admin/products/acme/installations?q=nomatch"); strings.Contains(body, ">i-1<") {
		t.Fatal("installation search: i-1 matches nomatch")
	}
	if resp, body := ops.get("/admin/products/acme/installations/bigbank/i-1"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "1.1.0") {
		t.Fatalf("installation page: %d", resp.StatusCode)
	}
	// Resolve vic's hold and promote, through the confirmation step.
	_, page = ops.get("/admin/products/acme/releases/1.0.0")
	opsCSRF := ops.csrf(page)
	if resp, body := ops.post("/admin/products/acme/releases/1.0.0/hold", url.Values{"csrf": {opsCSRF}, "reason": {"check first"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("raise a hold on 1.0.0: %d %.300s", resp.StatusCode, body)
	}
	_, page = ops.get("/admin/products/acme/releases/1.0.0")
	m := regexp.MustCompile(`action="/admin/products/acme/holds/([^/"]+)/resolve"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("release page offers no resolve form for the open hold")
	}
	resolve := url.Values{"csrf": {opsCSRF}, "reason": {"checked"}, "version": {"1.0.0"}}
	if resp, body := ops.post("/admin/products/acme/holds/"+m[1]+"/resolve", resolve); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Confirm: Resolve hold") {
		t.Fatalf("resolve without confirmation: %d", resp.StatusCode)
	}
	resolve.Set("confirm", "yes")
	if resp, _ := ops.post("/admin/products/acme/holds/"+m[1]+"/resolve", resolve); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/products/acme/releases/1.0.0?done=resolve" {
		t.Fatalf("resolve: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The API's conflict comes through: 1.0.0 is in ring all already.
	if resp, _ := ops.post("/admin/products/acme/releases/1.0.0/promote", url.Values{"csrf": {opsCSRF}, "ring": {"all"}, "reason": {"hotfix"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("promote into a ring it is in: %d, want 409", resp.StatusCode)
	}
	e.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "later", "position": 1, "soak": "1h", "rollout_percent": 100}, http.StatusCreated, nil)
	if resp, body := ops.post("/admin/products/acme/releases/1.0.0/promote", url.Values{"csrf": {opsCSRF}, "ring": {"later"}, "reason": {"hotfix"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("promote: %d %.300s", resp.StatusCode, body)
	}
	if r := e.getRelease("acme", "1.0.0"); len(r.Rings) == 0 || !r.Rings[len(r.Rings)-1].Forced {
		t.Fatalf("after the console's promote: %+v", r.Rings)
	}

	// Users and tokens pages (admin): create, see the token once, delete.
	if resp, body := ops.post("/admin/users", url.Values{"csrf": {opsCSRF}, "name": {"newbie"}, "role": {"viewer"}, "password": {"short"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "password needs") {
		t.Fatalf("create a user with a short password: %d", resp.StatusCode)
	}
	if resp, _ := ops.post("/admin/users", url.Values{"csrf": {opsCSRF}, "name": {"newbie"}, "role": {"viewer"}, "password": {pw}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a user: %d", resp.StatusCode)
	}
	newbie := newBrowser(t, e.URL)
	newbie.login(url.Values{"name": {"newbie"}, "password": {pw}})
	if resp, _ := ops.post("/admin/users/newbie/delete", url.Values{"csrf": {opsCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete a user: %d", resp.StatusCode)
	}
	if resp, _ := newbie.get("/admin/products/acme"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a deleted user's session: %d, want a redirect to the login", resp.StatusCode)
	}
	if resp, body := ops.post("/admin/tokens", url.Values{"csrf": {opsCSRF}, "name": {"ci"}, "role": {"releaser"}}); resp.StatusCode != http.StatusOK || !regexp.MustCompile(`value="rft_[^"]+"`).MatchString(body) {
		t.Fatalf("create a token: %d, want its secret shown once", resp.StatusCode)
	}

	var tokens []release.Token
	e.api("GET", "/api/v1/tokens", nil, http.StatusOK, &tokens)
	for _, tk := range tokens {
		if tk.Name == "ops-bot" {
			e.api("DELETE", "/api/v1/tokens/"+tk.ID, nil, http.StatusNoContent, nil)
		}
	}
	if resp, _ := ops.get("/admin/tokens"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session of a revoked token: %d, want a redirect to the login", resp.StatusCode)
	}

	// Logout ends the session on the server, not only in the browser.
	_, page = rita.get("/admin/products/acme")
	if resp, _ := rita.post("/admin/logout", url.Values{"csrf": {rita.csrf(page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	stale := newBrowser(t, e.URL)
	u, _ := url.Parse(e.URL + "/admin/")
	stale.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "ringfence_session", Value: cookie.Value}})
	if resp, _ := stale.get("/admin/products/acme"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a logged-out session's cookie still works: %d", resp.StatusCode)
	}
}

// TestConsoleSecureCookie: with an https public URL the cookie is Secure
// even over plain HTTP (TLS ends in a proxy).
func TestConsoleSecureCookie(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{PublicURL: "https://releases.example.com"})
	if _, err := e.Store.CreateUser(context.Background(), "test", "rita", release.RoleViewer, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	resp := newBrowser(t, e.URL).login(url.Values{"name": {"rita"}, "password": {"a long enough password"}})
	for _, c := range resp.Cookies() {
		if c.Name == "ringfence_session" && !c.Secure {
			t.Fatal("session cookie not Secure with an https public URL")
		}
	}
}

// getRelease reads a release through the API.
func (e *env) getRelease(product, version string) release.Release {
	e.t.Helper()
	var r release.Release
	e.api("GET", "/api/v1/products/"+product+"/releases/"+version, nil, http.StatusOK, &r)
	return r
}
