package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// The API routes console pages and actions correspond to: their roles are
// the console's.
const (
	apiProduct         = "/api/v1/products/{product}"
	apiRelease         = apiProduct + "/releases/{version}"
	routeStatus        = "GET " + apiProduct + "/status"
	routeRelease       = "GET " + apiRelease
	routeInstallations = "GET " + apiProduct + "/installations"
	routeHold          = "POST " + apiRelease + "/holds"
	routeResolve       = "POST " + apiProduct + "/holds/{id}/resolve"
	routePause         = "POST " + apiRelease + "/pause"
	routeResume        = "POST " + apiRelease + "/resume"
	routePull          = "POST " + apiRelease + "/pull"
	routePromote       = "POST " + apiRelease + "/promote"
	routeAudit         = "GET /api/v1/audit"
	routeTokens        = "GET /api/v1/tokens"
	routeCreateToken   = "POST /api/v1/tokens"
	routeRevokeToken   = "DELETE /api/v1/tokens/{id}"
	routeUsers         = "GET /api/v1/users"
	routeCreateUser    = "POST /api/v1/users"
	routeDeleteUser    = "DELETE /api/v1/users/{name}"
)

// consoleRouteKeys lists every API route the console refers to.
func consoleRouteKeys() []string {
	return []string{routeStatus, routeRelease, routeInstallations, routeHold, routeResolve, routePause, routeResume,
		routePull, routePromote, routeAudit, routeTokens, routeCreateToken, routeRevokeToken, routeUsers, routeCreateUser, routeDeleteUser}
}

// mountPages registers the console's pages.
func (c *console) mountPages(handle func(string, http.Handler)) {
	prod := "/admin/products/{product}"
	handle("GET "+prod, c.authed(c.boardPage))
	handle("GET "+prod+"/releases/{version}", c.authed(c.releasePage))
	handle("GET "+prod+"/installations", c.authed(c.installationsPage))
	handle("GET "+prod+"/installations/{customer}/{instance}", c.authed(c.installationPage))
	handle("GET /admin/audit", c.authed(c.auditPage))
	handle("GET /admin/tokens", c.authed(c.tokensPage))
	handle("POST /admin/tokens", c.authed(c.createToken))
	handle("POST /admin/tokens/{id}/revoke", c.authed(c.revokeToken))
	handle("GET /admin/users", c.authed(c.usersPage))
	handle("POST /admin/users", c.authed(c.createUser))
	handle("POST /admin/users/{name}/delete", c.authed(c.deleteUser))
}

// --- releases ---

// releaseData is the release page's data.
type releaseData struct {
	Row        boardRow
	Release    release.Release
	AllHolds   []release.Hold
	Rings      []release.Ring
	Actions    map[string]*releaseAction
	CanResolve bool
}

func (c *console) releasePage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeRelease); err != nil {
		return err
	}
	ver, err := version(r)
	if err != nil {
		return err
	}
	rb, err := c.boardFor(r.Context(), v.Product)
	if err != nil {
		return err
	}
	b := rb.model
	d := releaseData{Rings: b.Rings, Actions: map[string]*releaseAction{}, CanResolve: c.may(v.Who, routeResolve)}
	found := false
	for _, row := range b.Rows {
		if row.Version == ver {
			d.Row, d.Release, found = row, row.Release, true
		}
	}
	if !found {
		return release.Errorf(release.ENOTFOUND, "release %s of %s not found", ver, v.Product)
	}
	if d.AllHolds, err = c.s.store.ListHolds(r.Context(), v.Product, ver); err != nil {
		return err
	}
	for _, a := range releaseActions() {
		if c.may(v.Who, a.Route) && a.applies(d.Release) {
			d.Actions[a.Name] = &a
		}
	}
	if a, ok := actionByName(r.URL.Query().Get("done")); ok {
		v.Notice = a.Done
	}
	v.Title, v.Data = v.Product+" "+ver.String(), d
	c.render(w, r, http.StatusOK, "release", v)
	return nil
}

// releaseAction is a change of a release the console offers: the API route
// it runs and the form fields that become the route's JSON body.
type releaseAction struct {
	Name   string
	Label  string
	Route  string
	Fields []actionField
	// Explain says what the action does, on the confirmation page; Done
	// confirms it was done.
	Explain string
	Done    string
	// On lists the release statuses it applies to (empty: any).
	On []release.Status
}

// actionField maps a form field to a JSON key of the route's body.
type actionField struct {
	Form, JSON, Label string
	Required          bool
}

func (a releaseAction) applies(rel release.Release) bool {
	if len(a.On) == 0 {
		return true
	}
	for _, s := range a.On {
		if rel.Status == s {
			return true
		}
	}
	return false
}

func reasonField(json string) actionField {
	return actionField{Form: "reason", JSON: json, Label: "Reason", Required: true}
}

// releaseActions lists the console's release actions.
func releaseActions() []releaseAction {
	incident := actionField{Form: "incident_url", JSON: "incident_url", Label: "Incident URL"}
	return []releaseAction{
		{Name: "hold", Label: "Raise a flag", Route: routeHold, Fields: []actionField{reasonField("reason")},
			Explain: "A hold keeps the release out of every ring it has not entered yet, until someone resolves it. Everyone sees it.",
			Done:    "Flag raised: the release enters no further ring until the hold is resolved."},
		{Name: "pause", Label: "Pause", Route: routePause, Fields: []actionField{reasonField("reason"), incident}, On: []release.Status{release.StatusOK},
			Explain: "Pausing stops every new offer of this release, in every ring, at once. Installations already on it carry on.",
			Done:    "Release paused: no new offers anywhere."},
		{Name: "resume", Label: "Resume", Route: routeResume, Fields: []actionField{reasonField("reason")}, On: []release.Status{release.StatusPaused},
			Explain: "Resuming offers the release again where it was; the soak in its current ring counts again from now.",
			Done:    "Release resumed."},
		{Name: "promote", Label: "Promote", Route: routePromote, On: []release.Status{release.StatusOK},
			Fields:  []actionField{{Form: "ring", JSON: "ring", Label: "Into ring", Required: true}, reasonField("reason")},
			Explain: "Promoting forces the release into the ring (and every ring before it) now, past gates, holds, soak time and evidence.",
			Done:    "Release promoted."},
		{Name: "pull", Label: "Pull", Route: routePull, On: []release.Status{release.StatusOK, release.StatusPaused},
			Fields: []actionField{reasonField("reason"), incident,
				{Form: "action", JSON: "action", Label: "Installations on it should", Required: true},
				{Form: "target", JSON: "target", Label: "Target version"}},
			Explain: "Pulling stops every offer for good and tells installations already on the release what to do. It cannot be undone.",
			Done:    "Release pulled: installations on it get the guidance with their next check-in."},
	}
}

// resolveAction resolves a hold; it is offered per hold, not per release.
func resolveAction() releaseAction {
	return releaseAction{Name: "resolve", Label: "Resolve hold", Route: routeResolve, Fields: []actionField{reasonField("resolution")},
		Explain: "Resolving the hold lets the release be promoted again (if nothing else holds it back).",
		Done:    "Hold resolved."}
}

func actionByName(name string) (releaseAction, bool) {
	for _, a := range append(releaseActions(), resolveAction()) {
		if a.Name == name {
			return a, true
		}
	}
	return releaseAction{}, false
}

// confirmData is the confirmation page's data.
type confirmData struct {
	Action  releaseAction
	Subject string
	Post    string
	Back    string
	Values  []confirmValue
	// Preview is what subscribers receive, for changes that tell them.
	Preview *messagePreview
}

type confirmValue struct{ Form, Label, Value string }

// mountActions registers the release actions.
func (c *console) mountActions(handle func(string, http.Handler)) {
	rel := "/admin/products/{product}/releases/{version}"
	for _, a := range releaseActions() {
		handle("POST "+rel+"/"+a.Name, c.authed(c.act(a)))
	}
	handle("POST /admin/products/{product}/holds/{id}/resolve", c.authed(c.act(resolveAction())))
}

// act serves a release action: without confirm=yes it shows what will
// happen and asks to confirm; with it, it runs the action's API route.
func (c *console) act(a releaseAction) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, v *view) error {
		if err := c.require(v, a.Route); err != nil {
			return err
		}
		ver := r.PathValue("version")
		pathValues := map[string]string{"product": v.Product}
		back := "/admin/products/" + url.PathEscape(v.Product)
		subject := v.Product
		if ver != "" {
			pathValues["version"] = ver
			back += "/releases/" + url.PathEscape(ver)
			subject += " " + ver
		} else {
			pathValues["id"] = r.PathValue("id")
			if rv := r.PostFormValue("version"); rv != "" {
				back += "/releases/" + url.PathEscape(rv)
			}
			subject = "hold " + r.PathValue("id") + " on " + subject
		}
		body := map[string]string{}
		d := confirmData{Action: a, Subject: subject, Post: r.URL.Path, Back: back}
		for _, f := range a.Fields {
			val := strings.TrimSpace(r.PostFormValue(f.Form))
			if val == "" {
				if f.Required {
					return release.Errorf(release.EINVALID, "%s: %s is required", a.Label, strings.ToLower(f.Label))
				}
				continue
			}
			body[f.JSON] = val
			d.Values = append(d.Values, confirmValue{f.Form, f.Label, val})
		}
		if rv := r.PostFormValue("version"); rv != "" {
			d.Values = append(d.Values, confirmValue{"version", "", rv})
		}
		if r.PostFormValue("confirm") != "yes" {
			v.Title, v.Data = a.Label+" "+subject+"?", d
			c.render(w, r, http.StatusOK, "confirm", v)
			return nil
		}
		if _, err := c.callAPI(r, v, a.Route, pathValues, body); err != nil {
			return err
		}
		http.Redirect(w, r, back+"?done="+a.Name, http.StatusSeeOther)
		return nil
	}
}

// --- installations ---

// installationsPerPage is the installation list's page size.
const installationsPerPage = 50

// installationsData is the installation list's data.
type installationsData struct {
	Query         string
	Installations []release.Installation
	Total         int
	Page, Pages   int
	PrevURL       string
	NextURL       string
}

func (c *console) installationsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeInstallations); err != nil {
		return err
	}
	if _, err := c.s.existingProduct(r); err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	page, err := queryInt(r, "page", 1, 1_000_000)
	if err != nil {
		return err
	}
	list, total, err := c.s.store.SearchInstallations(r.Context(), v.Product, q, (page-1)*installationsPerPage, installationsPerPage)
	if err != nil {
		return err
	}
	d := installationsData{Query: q, Installations: list, Total: total, Page: page, Pages: max(1, (total+installationsPerPage-1)/installationsPerPage)}
	link := func(p int) string {
		vals := url.Values{}
		if q != "" {
			vals.Set("q", q)
		}
		vals.Set("page", strconv.Itoa(p))
		return "?" + vals.Encode()
	}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if page < d.Pages {
		d.NextURL = link(page + 1)
	}
	v.Title, v.Data = "Installations of "+v.Product, d
	c.render(w, r, http.StatusOK, "installations", v)
	return nil
}

func (c *console) installationPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeInstallations); err != nil {
		return err
	}
	h, err := c.s.store.GetInstallationHistory(r.Context(), v.Product, r.PathValue("customer"), r.PathValue("instance"), 100)
	if err != nil {
		return err
	}
	v.Title, v.Data = "Installation "+h.Installation.InstanceID, h
	c.render(w, r, http.StatusOK, "installation", v)
	return nil
}

// --- audit log ---

// auditData is the audit page's data.
type auditData struct {
	Filter  sqlstore.AuditFilter
	Entries []release.AuditEntry
	NextURL string
}

func (c *console) auditPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeAudit); err != nil {
		return err
	}
	qv := r.URL.Query()
	f := sqlstore.AuditFilter{Actor: qv.Get("actor"), Action: qv.Get("action"), Target: qv.Get("target"), Limit: 100}
	if b := qv.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return release.Errorf(release.EINVALID, "before must be a positive audit entry id")
		}
		f.Before = n
	}
	es, err := c.s.store.SearchAudit(r.Context(), f)
	if err != nil {
		return err
	}
	d := auditData{Filter: f, Entries: es}
	if len(es) == f.Limit {
		next := url.Values{"actor": {f.Actor}, "action": {f.Action}, "target": {f.Target}, "before": {strconv.FormatInt(es[len(es)-1].ID, 10)}}
		d.NextURL = "?" + next.Encode()
	}
	v.Title, v.Data = "Audit log", d
	c.render(w, r, http.StatusOK, "audit", v)
	return nil
}

// --- tokens and users ---

// tokensData is the tokens page's data; Created holds a token just
// created, whose secret is shown this once.
type tokensData struct {
	Tokens  []release.Token
	Created *newToken
	CanEdit bool
}

func (c *console) tokensPage(w http.ResponseWriter, r *http.Request, v *view) error {
	return c.showTokens(w, r, v, nil)
}

func (c *console) showTokens(w http.ResponseWriter, r *http.Request, v *view, created *newToken) error {
	if err := c.require(v, routeTokens); err != nil {
		return err
	}
	ts, err := c.s.store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	v.Title, v.Data = "API tokens", tokensData{Tokens: ts, Created: created, CanEdit: c.may(v.Who, routeCreateToken)}
	c.render(w, r, http.StatusOK, "tokens", v)
	return nil
}

func (c *console) createToken(w http.ResponseWriter, r *http.Request, v *view) error {
	out, err := c.callAPI(r, v, routeCreateToken, nil, tokenRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Role: release.Role(r.PostFormValue("role"))})
	if err != nil {
		return err
	}
	var t newToken
	if err := json.Unmarshal(out, &t); err != nil {
		return err
	}
	v.Notice = "Token " + t.Name + " created. Copy it now: it is shown only this once."
	return c.showTokens(w, r, v, &t)
}

func (c *console) revokeToken(w http.ResponseWriter, r *http.Request, v *view) error {
	if _, err := c.callAPI(r, v, routeRevokeToken, map[string]string{"id": r.PathValue("id")}, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/tokens", http.StatusSeeOther)
	return nil
}

// usersData is the users page's data.
type usersData struct {
	Users   []sqlstore.User
	CanEdit bool
	MinLen  int
}

func (c *console) usersPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeUsers); err != nil {
		return err
	}
	us, err := c.s.store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	if r.URL.Query().Get("done") == "create" {
		v.Notice = "User created."
	}
	v.Title, v.Data = "Users", usersData{Users: us, CanEdit: c.may(v.Who, routeCreateUser), MinLen: sqlstore.MinPasswordLen}
	c.render(w, r, http.StatusOK, "users", v)
	return nil
}

func (c *console) createUser(w http.ResponseWriter, r *http.Request, v *view) error {
	req := userRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Role: release.Role(r.PostFormValue("role")), Password: r.PostFormValue("password")}
	if _, err := c.callAPI(r, v, routeCreateUser, nil, req); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/users?done=create", http.StatusSeeOther)
	return nil
}

func (c *console) deleteUser(w http.ResponseWriter, r *http.Request, v *view) error {
	if _, err := c.callAPI(r, v, routeDeleteUser, map[string]string{"name": r.PathValue("name")}, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	return nil
}
