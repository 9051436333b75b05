package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// The operators' console is server-rendered HTML under /admin/.
//
// Invariants:
//   - Roles come from the API's route table only: every console page and
//     action names the API route it corresponds to, and is allowed exactly
//     when that route would be. newConsole refuses to start if a named route
//     is missing from the table.
//   - Every change is made by running that API route's own handler (the
//     same decoding, validation, store method, audit entry and snapshot
//     refresh as over the API), with the logged-in user or token as the
//     caller; the console never writes to the store itself.
//   - Every POST needs the session's anti-CSRF token (derived from the
//     session secret) in the form, and passes net/http's
//     CrossOriginProtection (Sec-Fetch-Site / Origin); a form without the
//     token is refused with 403.
//   - Pages are rendered into a buffer and sent only when complete.

//go:embed templates/console static/console
var consoleFiles embed.FS

// consoleCookie names the session cookie.
const consoleCookie = "ringfence_session"

// csrfField is the form field carrying the anti-CSRF token.
const csrfField = "csrf"

// console serves the operators' console.
type console struct {
	s      *Server
	log    *slog.Logger
	pages  map[string]*template.Template
	routes map[string]Route
	// secure forces Secure cookies (the public URL is https); requests over
	// TLS get them anyway.
	secure bool
	ttl    time.Duration
	logins loginLimiter
	health healthCache
	boards boardCache
}

// newConsole parses the templates and checks that every API route the
// console refers to exists.
func newConsole(s *Server) (*console, error) {
	c := &console{s: s, log: s.log, pages: map[string]*template.Template{}, routes: map[string]Route{}, ttl: s.cfg.SessionTTL}
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Scheme == "https" {
		c.secure = true
	}
	c.logins.m = map[string]*rate.Limiter{}
	for _, rt := range s.Routes() {
		c.routes[rt.Method+" "+rt.Path] = rt
	}
	for _, key := range append(consoleRouteKeys(), statusRouteKeys()...) {
		if _, ok := c.routes[key]; !ok {
			return nil, fmt.Errorf("console: API route %s is not in the route table", key)
		}
	}
	funcs := template.FuncMap{
		"when":    fmtConsoleTime,
		"whenPtr": func(t *time.Time) string { return fmtConsoleTimePtr(t) },
		"ago":     ago,
		"join":    strings.Join,
		"pathEsc": url.PathEscape,
		"may":     c.may,
		"add":     func(a, b int) int { return a + b },
		"args":    func(a ...any) []any { return a },
	}
	// Each page is parsed with layout.html.
	for _, name := range []string{"login", "board", "release", "confirm", "installations", "installation", "tokens", "users", "audit", "error",
		"incidents", "incident", "components", "maintenance", "subscribers"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(consoleFiles, "templates/console/layout.html", "templates/console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// mount registers the console's routes on mux.
func (c *console) mount(mux *http.ServeMux) {
	static, _ := fs.Sub(consoleFiles, "static/console") // a directory embedded above: cannot fail
	cop := http.NewCrossOriginProtection()
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, cop.Handler(h)) }
	mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", staticHandler(http.FileServerFS(static))))
	handle("GET /admin/login", http.HandlerFunc(c.loginPage))
	handle("POST /admin/login", http.HandlerFunc(c.login))
	handle("POST /admin/logout", c.authed(c.logout))
	handle("GET /admin/{$}", c.authed(c.home))
	c.mountPages(handle)
	c.mountActions(handle)
	c.mountStatusPages(handle)
	handle("/admin/", c.authed(func(w http.ResponseWriter, r *http.Request, v *view) error {
		return release.Errorf(release.ENOTFOUND, "no console page %s %s", r.Method, r.URL.Path)
	}))
}

// staticHandler serves embedded assets with a short cache lifetime.
func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// view is what every page template gets: the caller, the anti-CSRF token,
// the navigation, and the page's own data.
type view struct {
	Title    string
	Who      release.Token
	CSRF     string
	Nav      []navItem
	Products []string
	Product  string
	// Notice is a confirmation of what was just done; Error what failed.
	Notice string
	Error  string
	Data   any

	// secret is the session's, for logging out.
	secret string
}

// navItem is one entry of the console's navigation, shown only to callers
// who may use the API route it corresponds to.
type navItem struct {
	Label   string
	Href    string
	Current bool
}

// nav is the console's navigation for v's caller at path.
func (c *console) nav(v *view, path string) []navItem {
	var items []navItem
	add := func(label, href, need string, current bool) {
		if c.may(v.Who, need) {
			items = append(items, navItem{label, href, current})
		}
	}
	under := func(prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	if v.Product != "" {
		p := "/admin/products/" + url.PathEscape(v.Product)
		add("Releases", p, routeStatus, path == p || under(p+"/releases") || under(p+"/holds"))
		add("Installations", p+"/installations", routeInstallations, under(p+"/installations"))
	}
	add("Incidents", "/admin/incidents", routeIncidents, under("/admin/incidents"))
	add("Components", "/admin/components", routeComponents, under("/admin/components"))
	add("Maintenance", "/admin/maintenance", routeMaintenances, under("/admin/maintenance"))
	add("Subscribers", "/admin/subscribers", routeSubscribers, under("/admin/subscribers"))
	add("Audit log", "/admin/audit", routeAudit, under("/admin/audit"))
	add("Tokens", "/admin/tokens", routeTokens, under("/admin/tokens"))
	add("Users", "/admin/users", routeUsers, under("/admin/users"))
	return items
}

// may reports whether who may use the API route key (e.g. "POST
// /api/v1/products/{product}/releases/{version}/pull"): the route table's
// role, as authorize checks it.
func (c *console) may(who release.Token, key string) bool {
	rt, ok := c.routes[key]
	return ok && who.Role.AtLeast(rt.Role)
}

// consoleHandler serves one console request for a logged-in caller.
type consoleHandler func(w http.ResponseWriter, r *http.Request, v *view) error

// authed runs h for a caller with a live session, sending others to the
// login page; for POST it first checks the anti-CSRF token.
func (c *console) authed(h consoleHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(consoleCookie)
		if err != nil {
			c.toLogin(w, r)
			return
		}
		sess, err := c.s.store.LookupSession(r.Context(), cookie.Value)
		if err != nil {
			if release.ErrorCode(err) == release.EUNAUTHORIZED {
				c.clearCookie(w, r)
				c.toLogin(w, r)
				return
			}
			c.fail(w, r, &view{}, err)
			return
		}
		v := &view{Who: sess.Who, CSRF: sqlstore.SessionCSRF(cookie.Value), secret: cookie.Value}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue(csrfField)), []byte(v.CSRF)) != 1 {
				c.fail(w, r, v, release.Errorf(release.EFORBIDDEN, "the form lacks this session's anti-CSRF token; reload the page and try again"))
				return
			}
		}
		if err := c.products(r.Context(), v, r); err != nil {
			c.fail(w, r, v, err)
			return
		}
		if err := h(w, r, v); err != nil {
			c.fail(w, r, v, err)
		}
	})
}

// products fills v's product list and current product (the path's, else
// the first).
func (c *console) products(ctx context.Context, v *view, r *http.Request) error {
	names, err := c.productNames(ctx)
	if err != nil {
		return err
	}
	v.Products = names
	v.Product = r.PathValue("product")
	if v.Product == "" && len(v.Products) > 0 {
		v.Product = v.Products[0]
	}
	return nil
}

// toLogin redirects to the login page, remembering where the caller was
// going (GET only).
func (c *console) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/admin/login"
	if r.Method == http.MethodGet && r.URL.Path != "/admin/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// require fails with EFORBIDDEN unless v's caller may use API route key.
func (c *console) require(v *view, key string) error {
	if c.may(v.Who, key) {
		return nil
	}
	need := c.routes[key].Role
	return release.Errorf(release.EFORBIDDEN, "this needs the %s role; %s has %s", need, v.Who.Name, v.Who.Role)
}

// render executes page into a buffer and sends it with status, or a plain
// 500 if the template fails: never half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	if v.Nav == nil && v.Who.Role != "" {
		v.Nav = c.nav(v, r.URL.Path)
	}
	var buf bytes.Buffer
	buf.Grow(32 << 10) // most pages fit: no regrowing while rendering
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "render console page", slog.String("page", page), slog.Any("err", err))
		http.Error(w, "internal error rendering the page; see the server log", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// setPageHeaders sets the headers of every console page: never cached,
// never framed, scripts and styles only from the console itself.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
}

// fail renders err as the error page with the status its code maps to;
// internal errors are logged and shown without detail.
func (c *console) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	code := release.ErrorCode(err)
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	status := problem.Status(code)
	msg := release.ErrorMessage(err)
	if he != nil {
		msg = he.msg
	}
	if status == http.StatusInternalServerError {
		c.log.ErrorContext(r.Context(), "console request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		msg = "internal error; see the server log"
	}
	v.Title, v.Error = http.StatusText(status), msg
	c.render(w, r, status, "error", v)
}

// cookie returns the session cookie with value, living maxAge seconds
// (negative deletes it).
func (c *console) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     consoleCookie,
		Value:    value,
		Path:     "/admin/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

func (c *console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, "", -1))
}

// loginPage shows the login form.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", &view{Title: "Log in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// loginData is the login page's data.
type loginData struct {
	Next string
	Name string
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, `\`) {
		return next
	}
	return "/admin/"
}

// login checks a user's password or an API token and starts a session.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	d := loginData{Next: safeNext(r.PostFormValue("next")), Name: r.PostFormValue("name")}
	v := &view{Title: "Log in", Data: d}
	if !c.logins.allow(r) {
		v.Error = "too many login attempts from your address; wait a minute"
		c.render(w, r, http.StatusTooManyRequests, "login", v)
		return
	}
	var who release.Token
	var err error
	if tok := strings.TrimSpace(r.PostFormValue("token")); tok != "" {
		who, err = c.s.store.Authenticate(r.Context(), tok)
	} else {
		var u sqlstore.User
		u, err = c.s.store.VerifyPassword(r.Context(), d.Name, r.PostFormValue("password"))
		who = u.Identity()
	}
	if err != nil {
		if release.ErrorCode(err) == release.EUNAUTHORIZED {
			v.Error = "Unknown user or wrong password (or an unknown or revoked API token)."
			c.render(w, r, http.StatusUnauthorized, "login", v)
			return
		}
		c.fail(w, r, v, err)
		return
	}
	secret, _, err := c.s.store.CreateSession(r.Context(), who, c.ttl)
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	http.SetCookie(w, c.cookie(r, secret, int(c.ttl/time.Second)))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// logout ends the session.
func (c *console) logout(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.s.store.EndSession(r.Context(), v.secret); err != nil {
		return err
	}
	c.clearCookie(w, r)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

// home opens the first product's board.
func (c *console) home(w http.ResponseWriter, r *http.Request, v *view) error {
	if v.Product == "" {
		v.Title = "No products yet"
		v.Notice = "There are no products yet: create one with `ringfence product create` (admin)."
		c.render(w, r, http.StatusOK, "error", v)
		return nil
	}
	http.Redirect(w, r, "/admin/products/"+url.PathEscape(v.Product), http.StatusSeeOther)
	return nil
}

// loginLimiter bounds login attempts per client address (a token bucket:
// 10 at once, then one every 6 seconds), so passwords cannot be guessed
// quickly; the table is reset when it grows past 10,000 addresses.
type loginLimiter struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (l *loginLimiter) allow(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[host]
	if lim == nil {
		if len(l.m) >= 10000 {
			clear(l.m)
		}
		lim = rate.NewLimiter(rate.Every(6*time.Second), 10)
		l.m[host] = lim
	}
	return lim.Allow()
}

// --- running API routes for the console ---

// callAPI runs the API route key as v's caller would over the API: the
// route's role, then its own handler with body encoded as JSON and the path
// values given. It returns the handler's error (domain errors keep their
// code) and the answer's body.
func (c *console) callAPI(r *http.Request, v *view, key string, pathValues map[string]string, body any) ([]byte, error) {
	if err := c.require(v, key); err != nil {
		return nil, err
	}
	rt := c.routes[key]
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", key, err)
	}
	path := rt.Path
	for k, val := range pathValues {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(val))
	}
	req, err := http.NewRequestWithContext(r.Context(), rt.Method, path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", key, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, val := range pathValues {
		req.SetPathValue(k, val)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	if err := rt.handle(rec, req, v.Who); err != nil {
		return nil, err
	}
	if rec.status < 200 || rec.status > 299 {
		return nil, fmt.Errorf("%s answered %d: %s", key, rec.status, rec.body.String())
	}
	return rec.body.Bytes(), nil
}

// recorder keeps what an API handler answers, for callAPI.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header         { return rec.header }
func (rec *recorder) Write(p []byte) (int, error) { return rec.body.Write(p) }
func (rec *recorder) WriteHeader(status int)      { rec.status = status }

// --- formatting ---

func fmtConsoleTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func fmtConsoleTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtConsoleTime(*t)
}

// ago says how long before now t was, coarsely.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtDuration(time.Since(t)) + " ago"
}

// fmtDuration rounds d for people: 42s, 5m, 3h 20m, 2d 4h.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
