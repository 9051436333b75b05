package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/incident"
)

//go:embed templates/status
var statusTemplates embed.FS

// statusRenderer turns an incident.Page into the public documents. Its
// templates are parsed once, at start-up.
type statusRenderer struct {
	site         incident.SPPage
	canSubscribe bool
	pages        map[string]*template.Template
}

// statusPageID derives the page's Statuspage id from its public URL: stable
// for one page, distinct between pages.
func statusPageID(publicURL string) string {
	h := sha256.Sum256([]byte(publicURL))
	return hex.EncodeToString(h[:6])
}

func newStatusRenderer(site incident.SPPage, canSubscribe bool) (*statusRenderer, error) {
	funcs := template.FuncMap{
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"when":    func(t time.Time) string { return t.UTC().Format("Jan 2, 2006 15:04 UTC") },
	}
	r := &statusRenderer{site: site, canSubscribe: canSubscribe, pages: map[string]*template.Template{}}
	for _, name := range []string{"index", "incident", "maintenance", "history", "message"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(statusTemplates, "templates/status/layout.html", "templates/status/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse status page template %s: %w", name, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// --- view models: what the templates show ---

type pageView struct {
	Site      incident.SPPage
	Heading   string
	UpdatedAt time.Time

	Indicator, Description string
	Pulled                 []pulledView
	Unresolved, Recent     []incidentView
	Active, Upcoming       []maintView
	Maintenances           []maintView
	Entries                []entryView
	CanSubscribe           bool
	AllComponents          []incident.Component

	Incident    *incidentView
	Maintenance *maintView

	// message pages
	Paragraphs     []string
	Action, Button string
}

type updateView struct {
	Status, Body string
	At           time.Time
}

type incidentView struct {
	ID                             int64
	Title, URL, Impact, StatusText string
	CreatedAt, UpdatedAt           time.Time
	Latest                         *updateView
	Updates                        []updateView
	Components, Postmortem         string
}

type maintView struct {
	ID                                 int64
	Title, URL, StatusText, Components string
	From, Until, UpdatedAt             time.Time
	Latest                             *updateView
	Updates                            []updateView
}

type pulledView struct {
	Key, Product, Versions, Advice, Reason string
	At                                     time.Time
	Incidents                              []incidentView
}

type entryView struct {
	Group      bool
	Name       string
	Status     incident.ComponentStatus
	StatusText string
	Components []compView
}

type compView struct {
	Name       string
	Status     incident.ComponentStatus
	StatusText string
	Bars       []bar
	Summary    string
}

type bar struct {
	X, W         int
	Class, Title string
}

var statusText = map[string]string{
	"operational": "Operational", "degraded_performance": "Degraded performance", "partial_outage": "Partial outage",
	"major_outage": "Major outage", "under_maintenance": "Under maintenance",
	"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring", "resolved": "Resolved",
	"postmortem": "Postmortem", "scheduled": "Scheduled", "in_progress": "In progress", "verifying": "Verifying",
	"completed": "Completed", "cancelled": "Cancelled",
}

func words(s string) string {
	if w, ok := statusText[s]; ok {
		return w
	}
	return s
}

// barClass is a day's bar colour class.
var barClass = map[incident.ComponentStatus]string{
	incident.Operational: "o", incident.DegradedPerformance: "d", incident.PartialOutage: "p",
	incident.MajorOutage: "m", incident.UnderMaintenance: "u", "": "n",
}

// bars draws a component's days as run-length rectangles: consecutive
// operational days without incidents are one rectangle; every other day is
// its own, with a title saying what happened. Each day is 5 units wide.
func bars(h incident.ComponentHistory, names map[int64]string) ([]bar, string) {
	var out []bar
	counts := map[incident.ComponentStatus]int{}
	for i, d := range h.Days {
		counts[d.Worst]++
		quiet := (d.Worst == incident.Operational || d.Worst == "") && len(d.Incidents) == 0
		cls := barClass[d.Worst]
		if quiet && len(out) > 0 && out[len(out)-1].Class == cls && out[len(out)-1].Title == "" && out[len(out)-1].X+out[len(out)-1].W+1 == i*5 {
			out[len(out)-1].W += 5
			continue
		}
		b := bar{X: i * 5, W: 4, Class: cls}
		if !quiet {
			var what []string
			for _, id := range d.Incidents {
				what = append(what, names[id])
			}
			b.Title = d.Date.Format("Jan 2") + ": " + words(string(d.Worst))
			if len(what) > 0 {
				b.Title += " — " + strings.Join(what, "; ")
			}
		}
		out = append(out, b)
	}
	days := func(n int) string {
		if n == 1 {
			return "1 day"
		}
		return strconv.Itoa(n) + " days"
	}
	var parts []string
	for _, st := range incident.ComponentStatuses() {
		if n := counts[st]; n > 0 {
			parts = append(parts, days(n)+" "+strings.ToLower(words(string(st))))
		}
	}
	if n := counts[""]; n > 0 {
		parts = append(parts, days(n)+" before it existed")
	}
	return out, strings.Join(parts, ", ")
}

func (r *statusRenderer) incidentView(inc incident.Incident, comps map[int64]incident.Component) incidentView {
	v := incidentView{ID: inc.ID, Title: inc.Title, URL: incident.IncidentURL(r.site.URL, inc.ID), Impact: string(inc.Impact),
		StatusText: words(string(inc.Status)), CreatedAt: inc.CreatedAt, UpdatedAt: inc.UpdatedAt, Postmortem: inc.Postmortem,
		Components: componentNames(inc.Components, comps)}
	for _, u := range inc.Updates {
		v.Updates = append(v.Updates, updateView{Status: words(string(u.Status)), Body: u.Body, At: u.At})
	}
	v.Latest = latest(v.Updates)
	return v
}

func (r *statusRenderer) maintView(m incident.Maintenance, comps map[int64]incident.Component) maintView {
	v := maintView{ID: m.ID, Title: m.Title, URL: incident.MaintenanceURL(r.site.URL, m.ID), StatusText: words(string(m.Status)),
		From: m.ScheduledFor, Until: m.ScheduledUntil, UpdatedAt: m.UpdatedAt, Components: componentNames(m.Components, comps)}
	for _, u := range m.Updates {
		v.Updates = append(v.Updates, updateView{Status: words(string(u.Status)), Body: u.Body, At: u.At})
	}
	v.Latest = latest(v.Updates)
	return v
}

// latest is the newest of updates (they are newest first), nil if none.
func latest(updates []updateView) *updateView {
	if len(updates) == 0 {
		return nil
	}
	return &updates[0]
}

// componentNames lists the names of the components ids names.
func componentNames(ids []int64, comps map[int64]incident.Component) string {
	var names []string
	for _, id := range ids {
		if c, ok := comps[id]; ok {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
}

// versionRange writes pulled versions: "3.30.0–3.30.2" when they are
// consecutive patch releases, otherwise every one of them.
func versionRange(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	consecutive := true
	var prefix string
	var last int
	for i, v := range vs {
		dot := strings.LastIndexByte(v, '.')
		p, err := strconv.Atoi(v[dot+1:])
		if dot < 0 || err != nil || (i > 0 && (v[:dot] != prefix || p != last+1)) {
			consecutive = false
			break
		}
		prefix, last = v[:dot], p
	}
	if consecutive && len(vs) > 2 {
		return vs[0] + "–" + vs[len(vs)-1]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}

func advice(n incident.PulledNotice) string {
	switch n.Action {
	case "upgrade":
		return "Upgrade to " + n.Target + "."
	case "rollback":
		return "Roll back to " + n.Target + "."
	}
	return "Stay on the version you run until further notice."
}

// view builds the index page's view of p.
func (r *statusRenderer) view(p incident.Page) pageView {
	ind, desc := p.Status()
	v := pageView{Site: r.site, UpdatedAt: p.UpdatedAt, Indicator: string(ind), Description: desc, CanSubscribe: r.canSubscribe}
	comps := map[int64]incident.Component{}
	for _, c := range p.Components {
		comps[c.ID] = c
	}
	incNames := map[int64]string{}
	incidents := map[int64]incidentView{}
	for _, inc := range append(append([]incident.Incident{}, p.Unresolved...), p.Incidents...) {
		incNames[inc.ID] = inc.Title
		incidents[inc.ID] = r.incidentView(inc, comps)
	}
	for _, inc := range p.Unresolved {
		v.Unresolved = append(v.Unresolved, incidents[inc.ID])
	}
	for _, inc := range p.Incidents {
		if !inc.Unresolved() {
			v.Recent = append(v.Recent, incidents[inc.ID])
		}
	}
	for _, m := range p.Active() {
		v.Active = append(v.Active, r.maintView(m, comps))
	}
	for _, m := range p.Upcoming() {
		v.Upcoming = append(v.Upcoming, r.maintView(m, comps))
	}
	for _, m := range p.Maintenances {
		v.Maintenances = append(v.Maintenances, r.maintView(m, comps))
	}
	for i, n := range p.Pulled {
		pv := pulledView{Key: strconv.Itoa(i), Product: n.Product, Versions: versionRange(n.Versions), Advice: advice(n), Reason: n.Reason, At: n.At}
		for _, id := range n.Incidents {
			if iv, ok := incidents[id]; ok {
				pv.Incidents = append(pv.Incidents, iv)
			}
		}
		v.Pulled = append(v.Pulled, pv)
	}
	history := map[int64]incident.ComponentHistory{}
	for _, h := range p.History {
		history[h.ComponentID] = h
	}
	groupIndex := map[int64]int{}
	for _, c := range p.Components {
		if c.OnlyShowIfDegraded && c.Status == incident.Operational {
			continue
		}
		cv := compView{Name: c.Name, Status: c.Status, StatusText: words(string(c.Status))}
		cv.Bars, cv.Summary = bars(history[c.ID], incNames)
		v.AllComponents = append(v.AllComponents, c)
		if c.GroupID == 0 {
			v.Entries = append(v.Entries, entryView{Name: c.Name, Components: []compView{cv}})
			continue
		}
		i, ok := groupIndex[c.GroupID]
		if !ok {
			i = len(v.Entries)
			groupIndex[c.GroupID] = i
			v.Entries = append(v.Entries, entryView{Group: true, Name: c.Group, Status: incident.Operational})
		}
		e := &v.Entries[i]
		e.Components = append(e.Components, cv)
		e.Status = incident.Worst(e.Status, c.Status)
		e.StatusText = words(string(e.Status))
	}
	return v
}

func (r *statusRenderer) html(name string, v pageView) (*document, error) {
	var buf bytes.Buffer
	if err := r.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		return nil, fmt.Errorf("render status page %s: %w", name, err)
	}
	return newDocument("text/html; charset=utf-8", buf.Bytes(), false), nil
}

// render returns every public document of p by path.
func (r *statusRenderer) render(p incident.Page, now time.Time) (map[string]*document, error) {
	docs := map[string]*document{}
	v := r.view(p)
	var err error
	if docs["/"], err = r.html("index", v); err != nil {
		return nil, err
	}
	hv := v
	hv.Heading = "Incident history"
	if docs["/history"], err = r.html("history", hv); err != nil {
		return nil, err
	}
	comps := map[int64]incident.Component{}
	for _, c := range p.Components {
		comps[c.ID] = c
	}
	for _, inc := range append(append([]incident.Incident{}, p.Unresolved...), p.Incidents...) {
		iv := r.incidentView(inc, comps)
		pv := pageView{Site: r.site, Heading: inc.Title, UpdatedAt: p.UpdatedAt, Incident: &iv}
		if docs["/incidents/"+strconv.FormatInt(inc.ID, 10)], err = r.html("incident", pv); err != nil {
			return nil, err
		}
	}
	for _, m := range p.Maintenances {
		mv := r.maintView(m, comps)
		pv := pageView{Site: r.site, Heading: m.Title, UpdatedAt: p.UpdatedAt, Maintenance: &mv}
		if docs["/maintenance/"+strconv.FormatInt(m.ID, 10)], err = r.html("maintenance", pv); err != nil {
			return nil, err
		}
	}
	sp := incident.NewStatuspage(r.site, p)
	for path, body := range map[string]any{
		"/api/v2/summary.json":                         sp.Summary(),
		"/api/v2/status.json":                          sp.StatusBody(),
		"/api/v2/components.json":                      sp.ComponentsBody(),
		"/api/v2/incidents.json":                       sp.IncidentsBody(),
		"/api/v2/incidents/unresolved.json":            sp.UnresolvedBody(),
		"/api/v2/scheduled-maintenances.json":          sp.MaintenancesBody(),
		"/api/v2/scheduled-maintenances/upcoming.json": sp.UpcomingBody(),
		"/api/v2/scheduled-maintenances/active.json":   sp.ActiveBody(),
	} {
		if docs[path], err = jsonDocument(body); err != nil {
			return nil, err
		}
	}
	if docs["/history.atom"], err = atomFeed(r.site, v, now); err != nil {
		return nil, err
	}
	if docs["/history.rss"], err = rssFeed(r.site, v, now); err != nil {
		return nil, err
	}
	return docs, nil
}

// message renders a page that says something (subscription flows), with an
// optional form button posting to action.
func (r *statusRenderer) message(heading string, paragraphs []string, action, button string) ([]byte, error) {
	d, err := r.html("message", pageView{Site: r.site, Heading: heading, UpdatedAt: time.Now().UTC(), Paragraphs: paragraphs,
		Action: action, Button: button})
	if err != nil {
		return nil, err
	}
	return d.body, nil
}
