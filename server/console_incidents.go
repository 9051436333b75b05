package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// The console's pages of incidents, components, maintenance and
// subscribers. Like the release pages, every change runs the API route's
// own handler (callAPI) and is allowed exactly when the route's role is;
// changes that tell subscribers something are confirmed on a page that shows
// the message they will receive, rendered by incident.NewMessage as the
// delivery worker renders it.

// The API routes of these pages.
const (
	routeComponents       = "GET /api/v1/components"
	routeCreateComponent  = "POST /api/v1/components"
	routeComponentStatus  = "POST /api/v1/components/{name}/status"
	routeIncidents        = "GET /api/v1/incidents"
	routeDeclare          = "POST /api/v1/incidents"
	routeIncident         = "GET /api/v1/incidents/{id}"
	routeIncidentUpdate   = "POST /api/v1/incidents/{id}/updates"
	routeIncidentResolve  = "POST /api/v1/incidents/{id}/resolve"
	routeIncidentPublish  = "POST /api/v1/incidents/{id}/publish"
	routePostmortem       = "PUT /api/v1/incidents/{id}/postmortem"
	routeAssignRole       = "PUT /api/v1/incidents/{id}/roles/{role}"
	routeUnassignRole     = "DELETE /api/v1/incidents/{id}/roles/{role}"
	routeTemplates        = "GET /api/v1/incident-templates"
	routeIncidentConfig   = "GET /api/v1/incident-config"
	routeMaintenances     = "GET /api/v1/maintenances"
	routeSchedule         = "POST /api/v1/maintenances"
	routeMoveMaintenance  = "POST /api/v1/maintenances/{id}/status"
	routeSubscribers      = "GET /api/v1/subscribers"
	routeCreateSubscriber = "POST /api/v1/subscribers"
	routeDeleteSubscriber = "DELETE /api/v1/subscribers/{id}"
	routeDeliveries       = "GET /api/v1/deliveries"
	routeReplay           = "POST /api/v1/deliveries/{id}/replay"
)

// statusRouteKeys lists the API routes of these pages.
func statusRouteKeys() []string {
	return []string{routeComponents, routeCreateComponent, routeComponentStatus, routeIncidents, routeDeclare, routeIncident,
		routeIncidentUpdate, routeIncidentResolve, routeIncidentPublish, routePostmortem, routeAssignRole, routeUnassignRole,
		routeTemplates, routeIncidentConfig,
		routeMaintenances, routeSchedule, routeMoveMaintenance, routeSubscribers, routeCreateSubscriber, routeDeleteSubscriber,
		routeDeliveries, routeReplay}
}

// mountStatusPages registers the pages of incidents, components,
// maintenance and subscribers.
func (c *console) mountStatusPages(handle func(string, http.Handler)) {
	handle("GET /admin/incidents", c.authed(c.incidentsPage))
	handle("POST /admin/incidents", c.authed(c.declare))
	handle("GET /admin/incidents/{id}", c.authed(c.incidentPage))
	handle("POST /admin/incidents/{id}/update", c.authed(c.incidentChange(false)))
	handle("POST /admin/incidents/{id}/resolve", c.authed(c.incidentChange(true)))
	handle("POST /admin/incidents/{id}/publish", c.authed(c.publish))
	handle("POST /admin/incidents/{id}/postmortem", c.authed(c.postmortem))
	handle("POST /admin/incidents/{id}/roles", c.authed(c.assignRole))
	handle("GET /admin/components", c.authed(c.componentsPage))
	handle("POST /admin/components", c.authed(c.createComponent))
	handle("POST /admin/components/{name}/status", c.authed(c.componentStatus))
	handle("GET /admin/maintenance", c.authed(c.maintenancePage))
	handle("POST /admin/maintenance", c.authed(c.scheduleMaintenance))
	handle("POST /admin/maintenance/{id}/status", c.authed(c.moveMaintenance))
	handle("GET /admin/subscribers", c.authed(c.subscribersPage))
	handle("POST /admin/subscribers", c.authed(c.createSubscriber))
	handle("POST /admin/subscribers/{id}/delete", c.authed(c.deleteSubscriber))
	handle("POST /admin/deliveries/{id}/replay", c.authed(c.replay))
}

// incidentError turns the incident package's domain errors into release's
// (same codes), which the console shows with their status.
func incidentError(err error) error {
	var ie *incident.Error
	if errors.As(err, &ie) && ie.Code != incident.EINTERNAL {
		return &release.Error{Code: ie.Code, Message: ie.Message}
	}
	return err
}

// --- confirmation and preview ---

// consoleChange is one change made through an API route after the caller
// confirmed it.
type consoleChange struct {
	Action     releaseAction
	Subject    string
	Back       string
	PathValues map[string]string
	Body       any
	// Labels name the form fields shown on the confirmation page; fields
	// without a label are carried along unseen.
	Labels map[string]string
	// Preview returns what subscribers receive; nil when no one is told.
	Preview func() (*messagePreview, error)
	// Next is where to go after the change, given the API's answer; nil:
	// Back with ?done=Action.Name.
	Next func(answer []byte) (string, error)
}

// messagePreview is what subscribers receive for a change: the email's
// subject and text, the webhook's JSON payload, and who would get it.
type messagePreview struct {
	// Nobody says why no one is told ("" when someone is).
	Nobody           string
	Kind             string
	Subject, Text    string
	Webhook          string
	Webhooks, Emails int
}

// confirmOrRun shows ch's confirmation page unless the form says
// confirm=yes, and then runs it.
func (c *console) confirmOrRun(w http.ResponseWriter, r *http.Request, v *view, ch consoleChange) error {
	if err := c.require(v, ch.Action.Route); err != nil {
		return err
	}
	if r.PostFormValue("confirm") != "yes" {
		d := confirmData{Action: ch.Action, Subject: ch.Subject, Post: r.URL.Path, Back: ch.Back, Values: postedValues(r, ch.Labels)}
		if ch.Preview != nil {
			p, err := ch.Preview()
			if err != nil {
				return incidentError(err)
			}
			d.Preview = p
		}
		v.Title, v.Data = ch.Action.Label+" "+ch.Subject+"?", d
		c.render(w, r, http.StatusOK, "confirm", v)
		return nil
	}
	out, err := c.callAPI(r, v, ch.Action.Route, ch.PathValues, ch.Body)
	if err != nil {
		return err
	}
	next := ch.Back + "?done=" + ch.Action.Name
	if ch.Next != nil {
		if next, err = ch.Next(out); err != nil {
			return err
		}
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// postedValues lists the posted form's fields (but the anti-CSRF token and
// the confirmation), in name order, labelled by labels; a component status
// field ("component.NAME") is labelled with its component.
func postedValues(r *http.Request, labels map[string]string) []confirmValue {
	keys := make([]string, 0, len(r.PostForm))
	for k := range r.PostForm {
		if k != csrfField && k != "confirm" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []confirmValue
	for _, k := range keys {
		for _, val := range r.PostForm[k] {
			if strings.TrimSpace(val) == "" {
				continue
			}
			label := labels[k]
			if name, ok := strings.CutPrefix(k, "component."); ok {
				label = "Component " + name
			}
			out = append(out, confirmValue{Form: k, Label: label, Value: val})
		}
	}
	return out
}

// componentForm reads the component status fields ("component.NAME" →
// status; empty: unchanged), in name order.
func componentForm(r *http.Request) []api.ComponentStatus {
	var out []api.ComponentStatus
	for k, vals := range r.PostForm {
		name, ok := strings.CutPrefix(k, "component.")
		if !ok || len(vals) == 0 || vals[0] == "" {
			continue
		}
		out = append(out, api.ComponentStatus{Name: name, Status: incident.ComponentStatus(vals[0])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// notifyForm reads the "tell subscribers" checkbox.
func notifyForm(r *http.Request) *bool {
	b := r.PostFormValue("notify") == "yes"
	return &b
}

// resolveChanges gives component changes their ids and current statuses,
// as the store does when it applies them.
func resolveChanges(comps []incident.Component, cs []api.ComponentStatus) ([]incident.ComponentChange, error) {
	out := make([]incident.ComponentChange, 0, len(cs))
	for _, ch := range cs {
		i := slices.IndexFunc(comps, func(c incident.Component) bool { return c.Name == ch.Name })
		if i < 0 {
			return nil, release.Errorf(release.ENOTFOUND, "component %q not found", ch.Name)
		}
		out = append(out, incident.ComponentChange{ComponentID: comps[i].ID, Name: ch.Name, OldStatus: comps[i].Status, NewStatus: ch.Status})
	}
	return out, nil
}

// notifiesNobody is why an incident change makes no notification.
const notifiesNobody = "No one: a draft, or a change without “tell subscribers”, notifies no subscriber."

// preview renders notification n (ok false: none is made, for the reason
// nobody) as the delivery worker will: incident.NewMessage over the status
// page as it will stand after the change (inc, if the change is to an
// incident, as changed; components as changed), and counts the confirmed
// subscribers it would reach.
func (c *console) preview(r *http.Request, n incident.Notification, ok bool, nobody string, inc *incident.Incident, changes []incident.ComponentChange) (*messagePreview, error) {
	if !ok {
		return &messagePreview{Nobody: nobody}, nil
	}
	now := time.Now()
	page, err := c.s.store.StatusPage(r.Context(), now)
	if err != nil {
		return nil, err
	}
	page.Components = slices.Clone(page.Components)
	for _, ch := range changes {
		for i := range page.Components {
			if page.Components[i].ID == ch.ComponentID {
				page.Components[i].Status = ch.NewStatus
			}
		}
	}
	if inc != nil {
		page.Unresolved = slices.DeleteFunc(slices.Clone(page.Unresolved), func(u incident.Incident) bool { return u.ID == inc.ID })
		if inc.Unresolved() && inc.Public() {
			page.Unresolved = append([]incident.Incident{*inc}, page.Unresolved...)
		}
	}
	m, err := incident.NewMessage(n, incident.NewStatuspage(c.s.pages.site, page), webhookDocs)
	if err != nil {
		return nil, err
	}
	p := &messagePreview{Kind: m.Kind, Subject: m.Subject, Text: m.Text}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Body, "", "  "); err != nil {
		return nil, fmt.Errorf("indent the webhook payload: %w", err)
	}
	p.Webhook = pretty.String()
	subs, err := c.s.store.ListSubscribers(r.Context())
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.Wants(m.Components, now) {
			if s.Kind == incident.SubscriberEmail {
				p.Emails++
			} else {
				p.Webhooks++
			}
		}
	}
	return p, nil
}

// --- incidents ---

// incidentForm is what the declare and update forms offer.
type incidentForm struct {
	Components []incident.Component
	Statuses   []incident.ComponentStatus
	Templates  []incident.Template
	Severities incident.Severities
	Impacts    []incident.Impact
}

func (c *console) incidentForm(r *http.Request) (incidentForm, error) {
	f := incidentForm{Statuses: incident.ComponentStatuses(),
		Impacts: []incident.Impact{incident.ImpactNone, incident.ImpactMinor, incident.ImpactMajor, incident.ImpactCritical}}
	var err error
	if f.Components, err = c.s.store.ListComponents(r.Context()); err != nil {
		return f, err
	}
	if f.Templates, err = c.s.store.ListTemplates(r.Context()); err != nil {
		return f, err
	}
	cfg, err := c.s.store.IncidentConfig(r.Context())
	f.Severities = cfg.Severities
	return f, err
}

// incidentsData is the incident list's data.
type incidentsData struct {
	Incidents  []incident.Incident
	Form       incidentForm
	CanDeclare bool
}

func (c *console) incidentsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeIncidents); err != nil {
		return err
	}
	list, err := c.s.store.ListIncidents(r.Context(), false, 100)
	if err != nil {
		return err
	}
	d := incidentsData{Incidents: list, CanDeclare: c.may(v.Who, routeDeclare)}
	if d.CanDeclare {
		if d.Form, err = c.incidentForm(r); err != nil {
			return err
		}
	}
	v.Title, v.Data = "Incidents", d
	c.render(w, r, http.StatusOK, "incidents", v)
	return nil
}

// incidentActions are the console's incident changes, by name.
func incidentActions() map[string]releaseAction {
	return map[string]releaseAction{
		"declare": {Name: "declare", Label: "Declare", Route: routeDeclare,
			Explain: "Declaring opens the incident: unless it is a draft it is on the public status page at once, the components named take their status, and subscribers are told (when “tell subscribers” is ticked). A severity whose policy pauses releases pauses the releases it names.",
			Done:    "Incident declared."},
		"update": {Name: "update", Label: "Post an update to", Route: routeIncidentUpdate,
			Explain: "The update goes on the incident's public timeline and sets the components' statuses.",
			Done:    "Update posted."},
		"resolve": {Name: "resolve", Label: "Resolve", Route: routeIncidentResolve,
			Explain: "Resolving ends the incident; it cannot be reopened. If you set no component status here, every component the incident changed goes back to operational.",
			Done:    "Incident resolved."},
		"publish": {Name: "publish", Label: "Publish", Route: routeIncidentPublish,
			Explain: "Publishing puts the draft on the public status page and tells subscribers.",
			Done:    "Incident published."},
		"postmortem": {Name: "postmortem", Label: "Publish the postmortem of", Route: routePostmortem,
			Explain: "The postmortem is published on the incident's public page and subscribers are told.",
			Done:    "Postmortem published."},
		"assign": {Name: "assign", Label: "Assign a role in", Route: routeAssignRole,
			Explain: "Records who holds the role in the response from now on, replacing its holder (the audit log keeps the hand-over). Staff-only: it is not on the status page, and no one is told.",
			Done:    "Role assigned."},
		"unassign": {Name: "unassign", Label: "Leave a role unassigned in", Route: routeUnassignRole,
			Explain: "Records that nobody holds the role any more. Staff-only: no one is told.",
			Done:    "Role left unassigned."},
	}
}

// incidentLabels names the incident forms' fields on the confirmation page.
func incidentLabels() map[string]string {
	return map[string]string{
		"title": "Title", "template": "Template", "impact": "Impact", "severity": "Severity", "status": "Status",
		"message": "Message", "releases": "Releases", "draft": "Draft", "notify": "Tell subscribers", "postmortem": "Postmortem",
		"role": "Role", "who": "Held by",
	}
}

// declare declares an incident from the form (and template), after
// confirmation with a preview of the first message.
func (c *console) declare(w http.ResponseWriter, r *http.Request, v *view) error {
	req := api.Declaration{Title: strings.TrimSpace(r.PostFormValue("title")), Template: r.PostFormValue("template"),
		Impact: incident.Impact(r.PostFormValue("impact")), Severity: incident.Severity(r.PostFormValue("severity")),
		Status: incident.Status(r.PostFormValue("status")), Message: strings.TrimSpace(r.PostFormValue("message")),
		Components: componentForm(r), Releases: strings.Fields(strings.ReplaceAll(r.PostFormValue("releases"), ",", " ")),
		Draft: r.PostFormValue("draft") == "yes", Notify: notifyForm(r)}
	subject := req.Title
	if subject == "" && req.Template != "" {
		// The template's title; an unknown template is the API's error.
		subject = "from template " + req.Template
		if t, err := c.s.store.GetTemplate(r.Context(), req.Template); err == nil {
			subject = t.Title
		}
	}
	return c.confirmOrRun(w, r, v, consoleChange{
		Action: incidentActions()["declare"], Subject: "“" + subject + "”", Back: "/admin/incidents", Body: req, Labels: incidentLabels(),
		Preview: func() (*messagePreview, error) { return c.previewDeclare(r, v.Who, req) },
		Next: func(out []byte) (string, error) {
			var inc incident.Incident
			if err := json.Unmarshal(out, &inc); err != nil {
				return "", fmt.Errorf("read the declared incident: %w", err)
			}
			return "/admin/incidents/" + strconv.FormatInt(inc.ID, 10) + "?done=declare", nil
		},
	})
}

// previewDeclare builds the incident req would declare, as the API handler
// and the store do, and renders its first notification.
func (c *console) previewDeclare(r *http.Request, who release.Token, req api.Declaration) (*messagePreview, error) {
	d := incident.Declaration{Title: req.Title, Impact: req.Impact, Severity: req.Severity, Status: req.Status, Message: req.Message,
		Draft: req.Draft, Notify: orTrue(req.Notify)}
	if req.Template != "" {
		t, err := c.s.store.GetTemplate(r.Context(), req.Template)
		if err != nil {
			return nil, err
		}
		d = t.Fill(d)
	}
	if d.Status == "" {
		d.Status = incident.StatusInvestigating
	}
	var err error
	if d.Releases, err = releaseRefs(req.Releases); err != nil {
		return nil, err
	}
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return nil, err
	}
	if d.Components, err = resolveChanges(comps, req.Components); err != nil {
		return nil, err
	}
	cfg, err := c.s.store.IncidentConfig(r.Context())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	inc, err := incident.Declare(d, cfg.Severities, who.Actor(), now)
	if err != nil {
		return nil, err
	}
	n, ok := incident.IncidentNotification(inc, &inc.Updates[0], now)
	return c.preview(r, n, ok, notifiesNobody, &inc, d.Components)
}

// incidentData is one incident's page data.
type incidentData struct {
	Incident incident.Incident
	Form     incidentForm
	// Next are the statuses an update may move it to.
	Next    []incident.Status
	Names   map[int64]string
	CanEdit bool
	// Roles are the roles of a response, for the assign form.
	Roles     []incident.Role
	CanAssign bool
}

func (c *console) incidentPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeIncident); err != nil {
		return err
	}
	inc, err := c.incident(r)
	if err != nil {
		return err
	}
	d := incidentData{Incident: inc, CanEdit: c.may(v.Who, routeIncidentUpdate), Names: map[int64]string{},
		Roles: incident.Roles, CanAssign: c.may(v.Who, routeAssignRole)}
	if d.Form, err = c.incidentForm(r); err != nil {
		return err
	}
	for _, comp := range d.Form.Components {
		d.Names[comp.ID] = comp.Name
	}
	for _, s := range []incident.Status{incident.StatusInvestigating, incident.StatusIdentified, incident.StatusMonitoring} {
		if inc.Status.CanBecome(s) == nil {
			d.Next = append(d.Next, s)
		}
	}
	if a, ok := incidentActions()[r.URL.Query().Get("done")]; ok {
		v.Notice = a.Done
	}
	v.Title, v.Data = fmt.Sprintf("Incident %d: %s", inc.ID, inc.Title), d
	c.render(w, r, http.StatusOK, "incident", v)
	return nil
}

// incident reads the incident of the {id} path value.
func (c *console) incident(r *http.Request) (incident.Incident, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return incident.Incident{}, release.Errorf(release.EINVALID, "incident id %q is not a positive integer", r.PathValue("id"))
	}
	inc, err := c.s.store.GetIncident(r.Context(), id)
	return inc, incidentError(err)
}

// incidentChange posts an update to, or resolves, the incident in the path.
func (c *console) incidentChange(resolve bool) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, v *view) error {
		inc, err := c.incident(r)
		if err != nil {
			return err
		}
		id := strconv.FormatInt(inc.ID, 10)
		ch := consoleChange{Subject: fmt.Sprintf("incident %d “%s”", inc.ID, inc.Title), Back: "/admin/incidents/" + id,
			PathValues: map[string]string{"id": id}, Labels: incidentLabels()}
		change := incident.Change{Message: strings.TrimSpace(r.PostFormValue("message")), Notify: *notifyForm(r)}
		comps := componentForm(r)
		if resolve {
			ch.Action = incidentActions()["resolve"]
			ch.Body = api.Resolution{Message: change.Message, Components: comps, Notify: notifyForm(r)}
			change.Status = incident.StatusResolved
		} else {
			ch.Action = incidentActions()["update"]
			req := api.IncidentUpdate{Status: incident.Status(r.PostFormValue("status")), Message: change.Message,
				Impact: incident.Impact(r.PostFormValue("impact")), Severity: incident.Severity(r.PostFormValue("severity")),
				Components: comps, Notify: notifyForm(r)}
			ch.Body = req
			change.Status, change.Impact, change.Severity = req.Status, req.Impact, req.Severity
		}
		ch.Preview = func() (*messagePreview, error) { return c.previewChange(r, v.Who, inc, change, comps) }
		return c.confirmOrRun(w, r, v, ch)
	}
}

// previewChange applies change to a copy of inc as the store would and
// renders the notification it makes.
func (c *console) previewChange(r *http.Request, who release.Token, inc incident.Incident, change incident.Change, comps []api.ComponentStatus) (*messagePreview, error) {
	cfg, err := c.s.store.IncidentConfig(r.Context())
	if err != nil {
		return nil, err
	}
	if err := change.Validate(cfg.Severities); err != nil {
		return nil, err
	}
	all, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return nil, err
	}
	if change.Components, err = resolveChanges(all, comps); err != nil {
		return nil, err
	}
	if change.Status == incident.StatusResolved && len(comps) == 0 {
		// As the store applies it: unchanged components drop out.
		for _, ch := range inc.ResolveChanges() {
			i := slices.IndexFunc(all, func(c incident.Component) bool { return c.ID == ch.ComponentID })
			if i >= 0 && all[i].Status != ch.NewStatus {
				ch.Name, ch.OldStatus = all[i].Name, all[i].Status
				change.Components = append(change.Components, ch)
			}
		}
	}
	inc.Updates = slices.Clone(inc.Updates)
	now := time.Now()
	u, err := inc.Apply(change, who.Actor(), now)
	if err != nil {
		return nil, err
	}
	n, ok := incident.IncidentNotification(inc, &u, now)
	return c.preview(r, n, ok, notifiesNobody, &inc, change.Components)
}

// publish publishes a draft incident.
func (c *console) publish(w http.ResponseWriter, r *http.Request, v *view) error {
	inc, err := c.incident(r)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(inc.ID, 10)
	return c.confirmOrRun(w, r, v, consoleChange{Action: incidentActions()["publish"], Subject: fmt.Sprintf("incident %d “%s”", inc.ID, inc.Title),
		Back: "/admin/incidents/" + id, PathValues: map[string]string{"id": id}, Body: api.Empty{},
		Preview: func() (*messagePreview, error) {
			now := time.Now()
			if err := inc.Publish(now); err != nil {
				return nil, err
			}
			n, ok := incident.IncidentNotification(inc, nil, now)
			return c.preview(r, n, ok, notifiesNobody, &inc, nil)
		}})
}

// postmortem publishes (or revises) the postmortem of a resolved incident.
func (c *console) postmortem(w http.ResponseWriter, r *http.Request, v *view) error {
	inc, err := c.incident(r)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(inc.ID, 10)
	text := strings.TrimSpace(r.PostFormValue("postmortem"))
	return c.confirmOrRun(w, r, v, consoleChange{Action: incidentActions()["postmortem"], Subject: fmt.Sprintf("incident %d “%s”", inc.ID, inc.Title),
		Back: "/admin/incidents/" + id, PathValues: map[string]string{"id": id}, Body: api.Postmortem{Postmortem: text}, Labels: incidentLabels(),
		Preview: func() (*messagePreview, error) {
			now := time.Now()
			if err := inc.SetPostmortem(text, now); err != nil {
				return nil, err
			}
			if inc.Draft {
				return c.preview(r, incident.Notification{}, false, notifiesNobody, &inc, nil)
			}
			n := incident.Notification{Kind: incident.KindIncidentUpdated, Incident: &inc, Components: slices.Clone(inc.Components), At: now}
			return c.preview(r, n, true, "", &inc, nil)
		}})
}

// assignRole records who holds a role in the response to an incident, or
// (no one named) that nobody does, after confirmation.
func (c *console) assignRole(w http.ResponseWriter, r *http.Request, v *view) error {
	inc, err := c.incident(r)
	if err != nil {
		return err
	}
	role, err := incident.ParseRole(r.PostFormValue("role"))
	if err != nil {
		return incidentError(err)
	}
	id := strconv.FormatInt(inc.ID, 10)
	ch := consoleChange{Action: incidentActions()["assign"], Subject: fmt.Sprintf("incident %d “%s”", inc.ID, inc.Title),
		Back: "/admin/incidents/" + id, PathValues: map[string]string{"id": id, "role": string(role)},
		Body: api.RoleHolder{Who: strings.TrimSpace(r.PostFormValue("who"))}, Labels: incidentLabels()}
	if strings.TrimSpace(r.PostFormValue("who")) == "" {
		ch.Action, ch.Body = incidentActions()["unassign"], nil
	}
	return c.confirmOrRun(w, r, v, ch)
}

// --- components ---

// componentsData is the components page's data.
type componentsData struct {
	Components []incident.Component
	Statuses   []incident.ComponentStatus
	CanEdit    bool
}

func (c *console) componentsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeComponents); err != nil {
		return err
	}
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("done") {
	case "create":
		v.Notice = "Component created."
	case "status":
		v.Notice = "Component status set."
	}
	v.Title, v.Data = "Components", componentsData{Components: comps, Statuses: incident.ComponentStatuses(), CanEdit: c.may(v.Who, routeCreateComponent)}
	c.render(w, r, http.StatusOK, "components", v)
	return nil
}

func (c *console) createComponent(w http.ResponseWriter, r *http.Request, v *view) error {
	req := api.NewComponent{Name: strings.TrimSpace(r.PostFormValue("name")), Group: strings.TrimSpace(r.PostFormValue("group")),
		Description: strings.TrimSpace(r.PostFormValue("description")), Status: incident.Operational}
	if _, err := c.callAPI(r, v, routeCreateComponent, nil, req); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/components?done=create", http.StatusSeeOther)
	return nil
}

// componentStatus sets a component's status outside any incident, with a
// required reason, after confirmation (subscribers are told).
func (c *console) componentStatus(w http.ResponseWriter, r *http.Request, v *view) error {
	name := r.PathValue("name")
	req := api.ComponentStatusChange{Status: incident.ComponentStatus(r.PostFormValue("status")), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if req.Reason == "" {
		return release.Errorf(release.EINVALID, "set status: a reason is required")
	}
	return c.confirmOrRun(w, r, v, consoleChange{
		Action: releaseAction{Name: "status", Label: "Set the status of", Route: routeComponentStatus,
			Explain: "The component's status changes on the public status page at once, and subscribers to it are told."},
		Subject: "component " + name, Back: "/admin/components", PathValues: map[string]string{"name": name}, Body: req,
		Labels:  map[string]string{"status": "New status", "reason": "Reason"},
		Preview: func() (*messagePreview, error) { return c.previewComponentStatus(r, name, req.Status) }})
}

// previewComponentStatus renders the notification of setting component
// name to status, as the store makes it.
func (c *console) previewComponentStatus(r *http.Request, name string, status incident.ComponentStatus) (*messagePreview, error) {
	if _, err := incident.ParseComponentStatus(string(status)); err != nil {
		return nil, err
	}
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return nil, err
	}
	changes, err := resolveChanges(comps, []api.ComponentStatus{{Name: name, Status: status}})
	if err != nil {
		return nil, err
	}
	ch := changes[0]
	if ch.OldStatus == ch.NewStatus {
		return c.preview(r, incident.Notification{}, false, "No one: the component already has this status, so nothing changes.", nil, nil)
	}
	comp := comps[slices.IndexFunc(comps, func(c incident.Component) bool { return c.ID == ch.ComponentID })]
	now := time.Now()
	comp.Status, comp.UpdatedAt = status, now
	n := incident.Notification{Kind: incident.KindComponentStatus, Component: &comp, Change: &ch, Components: []int64{comp.ID}, At: now}
	return c.preview(r, n, true, "", nil, changes)
}

// --- maintenance ---

// maintenanceData is the maintenance page's data.
type maintenanceData struct {
	Maintenances []incident.Maintenance
	Components   []incident.Component
	Names        map[int64]string
	Moves        []incident.MaintenanceStatus
	CanEdit      bool
}

func (c *console) maintenancePage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeMaintenances); err != nil {
		return err
	}
	ms, err := c.s.store.ListMaintenances(r.Context(), false, 100)
	if err != nil {
		return err
	}
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return err
	}
	d := maintenanceData{Maintenances: ms, Components: comps, Names: map[int64]string{}, CanEdit: c.may(v.Who, routeSchedule),
		Moves: []incident.MaintenanceStatus{incident.MaintenanceInProgress, incident.MaintenanceVerifying, incident.MaintenanceCompleted, incident.MaintenanceCancelled}}
	for _, comp := range comps {
		d.Names[comp.ID] = comp.Name
	}
	switch r.URL.Query().Get("done") {
	case "schedule":
		v.Notice = "Maintenance scheduled and announced."
	case "move":
		v.Notice = "Maintenance moved."
	}
	v.Title, v.Data = "Maintenance", d
	c.render(w, r, http.StatusOK, "maintenance", v)
	return nil
}

// consoleTimeLayouts are how browsers send a datetime-local field (read
// as UTC): to the minute, or with seconds.
func consoleTimeLayouts() []string { return []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} }

func (c *console) scheduleMaintenance(w http.ResponseWriter, r *http.Request, v *view) error {
	parse := func(field, label string) (time.Time, error) {
		for _, layout := range consoleTimeLayouts() {
			if t, err := time.Parse(layout, strings.TrimSpace(r.PostFormValue(field))); err == nil {
				return t, nil
			}
		}
		return time.Time{}, release.Errorf(release.EINVALID, "%s: write it as YYYY-MM-DDTHH:MM (UTC)", label)
	}
	start, err := parse("start", "start")
	if err != nil {
		return err
	}
	end, err := parse("end", "end")
	if err != nil {
		return err
	}
	req := api.NewMaintenance{Title: strings.TrimSpace(r.PostFormValue("title")), Message: strings.TrimSpace(r.PostFormValue("message")),
		Start: start, End: end, Components: r.PostForm["components"]}
	return c.confirmOrRun(w, r, v, consoleChange{
		Action: releaseAction{Name: "schedule", Label: "Schedule", Route: routeSchedule,
			Explain: "The maintenance is announced on the public status page and to subscribers now; the components go under maintenance when it starts."},
		Subject: "maintenance “" + req.Title + "”", Back: "/admin/maintenance", Body: req,
		Labels:  map[string]string{"title": "Title", "message": "Message", "start": "Start (UTC)", "end": "End (UTC)", "components": "Component"},
		Preview: func() (*messagePreview, error) { return c.previewSchedule(r, v.Who, req) }})
}

// previewSchedule renders the announcement of the maintenance req
// schedules, as the store makes it.
func (c *console) previewSchedule(r *http.Request, who release.Token, req api.NewMaintenance) (*messagePreview, error) {
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return nil, err
	}
	ids := []int64{}
	for _, name := range req.Components {
		i := slices.IndexFunc(comps, func(c incident.Component) bool { return c.Name == name })
		if i < 0 {
			return nil, release.Errorf(release.ENOTFOUND, "component %q not found", name)
		}
		if !slices.Contains(ids, comps[i].ID) {
			ids = append(ids, comps[i].ID)
		}
	}
	now := time.Now()
	m, err := incident.Schedule(req.Title, req.Message, req.Start, req.End, ids, who.Actor(), now)
	if err != nil {
		return nil, err
	}
	n, ok := incident.MaintenanceNotification(m, m.Updates[0], now)
	return c.preview(r, n, ok, "No one: this move is not announced.", nil, nil)
}

func (c *console) moveMaintenance(w http.ResponseWriter, r *http.Request, v *view) error {
	id := r.PathValue("id")
	req := api.MaintenanceStatusChange{Status: incident.MaintenanceStatus(r.PostFormValue("status")), Message: strings.TrimSpace(r.PostFormValue("message"))}
	return c.confirmOrRun(w, r, v, consoleChange{
		Action: releaseAction{Name: "move", Label: "Move", Route: routeMoveMaintenance,
			Explain: "The maintenance moves on its public timeline; starting and ending it change its components and tell subscribers."},
		Subject: "maintenance " + id, Back: "/admin/maintenance", PathValues: map[string]string{"id": id}, Body: req,
		Labels: map[string]string{"status": "New status", "message": "Message"}})
}

// --- subscribers ---

// subscriberRow is a subscriber with the state of its recent deliveries.
type subscriberRow struct {
	incident.Subscriber
	Components               []string
	Pending, Delivered, Dead int
	LastError                string
	LastErrorAt              time.Time
}

// subscribersData is the subscribers page's data.
type subscribersData struct {
	Subscribers []subscriberRow
	// Window is how many of the latest deliveries the counts cover.
	Window     int
	Dead       []incident.Delivery
	Components []incident.Component
	Created    *api.CreatedSubscriber
	CanEdit    bool
}

// deliveryWindow is how many of the latest deliveries the subscribers page
// sums up per subscriber.
const deliveryWindow = 2000

func (c *console) subscribersPage(w http.ResponseWriter, r *http.Request, v *view) error {
	return c.showSubscribers(w, r, v, nil)
}

func (c *console) showSubscribers(w http.ResponseWriter, r *http.Request, v *view, created *api.CreatedSubscriber) error {
	if err := c.require(v, routeSubscribers); err != nil {
		return err
	}
	if err := c.require(v, routeDeliveries); err != nil {
		return err
	}
	subs, err := c.s.store.ListSubscribers(r.Context())
	if err != nil {
		return err
	}
	comps, err := c.s.store.ListComponents(r.Context())
	if err != nil {
		return err
	}
	recent, err := c.s.store.ListDeliveries(r.Context(), "", deliveryWindow)
	if err != nil {
		return err
	}
	dead, err := c.s.store.ListDeliveries(r.Context(), incident.DeliveryDead, 100)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, comp := range comps {
		names[comp.ID] = comp.Name
	}
	d := subscribersData{Window: deliveryWindow, Dead: dead, Components: comps, Created: created, CanEdit: c.may(v.Who, routeCreateSubscriber)}
	index := map[string]int{}
	for _, s := range subs {
		row := subscriberRow{Subscriber: s.Redacted()}
		for _, id := range s.Components {
			row.Components = append(row.Components, names[id])
		}
		index[s.ID] = len(d.Subscribers)
		d.Subscribers = append(d.Subscribers, row)
	}
	for _, del := range recent {
		i, ok := index[del.SubscriberID]
		if !ok {
			continue
		}
		row := &d.Subscribers[i]
		switch del.State {
		case incident.DeliveryPending:
			row.Pending++
		case incident.DeliveryDelivered:
			row.Delivered++
		case incident.DeliveryDead:
			row.Dead++
		}
		if del.LastError != "" && del.CreatedAt.After(row.LastErrorAt) {
			row.LastError, row.LastErrorAt = del.LastError, del.CreatedAt
		}
	}
	for i := range d.Dead {
		d.Dead[i].Target = incident.RedactURL(d.Dead[i].Target)
	}
	switch r.URL.Query().Get("done") {
	case "delete":
		v.Notice = "Subscriber removed."
	case "replay":
		v.Notice = "Delivery queued again."
	}
	v.Title, v.Data = "Subscribers", d
	c.render(w, r, http.StatusOK, "subscribers", v)
	return nil
}

func (c *console) createSubscriber(w http.ResponseWriter, r *http.Request, v *view) error {
	req := api.NewSubscriber{Webhook: strings.TrimSpace(r.PostFormValue("webhook")), Email: strings.TrimSpace(r.PostFormValue("email")),
		Components: r.PostForm["components"]}
	out, err := c.callAPI(r, v, routeCreateSubscriber, nil, req)
	if err != nil {
		return err
	}
	var created api.CreatedSubscriber
	if err := json.Unmarshal(out, &created); err != nil {
		return fmt.Errorf("read the new subscriber: %w", err)
	}
	if created.Kind == incident.SubscriberWebhook {
		v.Notice = "Webhook subscriber added. Copy its signing secret now: it is shown only this once."
	} else {
		v.Notice = "Email subscriber added: it receives a confirmation request first."
	}
	return c.showSubscribers(w, r, v, &created)
}

func (c *console) deleteSubscriber(w http.ResponseWriter, r *http.Request, v *view) error {
	id := r.PathValue("id")
	return c.confirmOrRun(w, r, v, consoleChange{
		Action: releaseAction{Name: "delete", Label: "Remove", Route: routeDeleteSubscriber,
			Explain: "The subscriber is told nothing more; deliveries not yet made to it are dropped."},
		Subject: "subscriber " + id, Back: "/admin/subscribers", PathValues: map[string]string{"id": id}})
}

func (c *console) replay(w http.ResponseWriter, r *http.Request, v *view) error {
	if _, err := c.callAPI(r, v, routeReplay, map[string]string{"id": r.PathValue("id")}, api.Empty{}); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/subscribers?done=replay", http.StatusSeeOther)
	return nil
}
