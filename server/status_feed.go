package server

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"sort"
	"time"

	"github.com/ringfence/ringfence/incident"
)

// The history feeds list the incidents and maintenances of the last 90
// days, newest change first; each entry's id is its page's URL, which never
// changes, and its content the whole timeline as HTML.

type feedEntry struct {
	id, title, summary string
	published, updated time.Time
}

var feedContent = template.Must(template.New("entry").Parse(`{{range .}}<p><strong>{{.Status}}</strong> ({{.At.UTC.Format "Jan 2, 15:04 UTC"}}): {{.Body}}</p>{{end}}`))

func feedEntries(v pageView) ([]feedEntry, error) {
	var out []feedEntry
	add := func(url, title string, created, updated time.Time, updates []updateView) error {
		var b bytes.Buffer
		if err := feedContent.Execute(&b, updates); err != nil {
			return fmt.Errorf("render feed entry: %w", err)
		}
		out = append(out, feedEntry{id: url, title: title, summary: b.String(), published: created, updated: updated})
		return nil
	}
	for _, inc := range append(append([]incidentView{}, v.Unresolved...), v.Recent...) {
		if err := add(inc.URL, inc.Title, inc.CreatedAt, inc.UpdatedAt, inc.Updates); err != nil {
			return nil, err
		}
	}
	for _, m := range v.Maintenances {
		if err := add(m.URL, "Maintenance: "+m.Title, m.From, m.UpdatedAt, m.Updates); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].updated.After(out[j].updated) })
	return out, nil
}

// feedUpdated is the latest entry's update, or the page's.
func feedUpdated(v pageView, entries []feedEntry) time.Time {
	t := v.UpdatedAt
	if len(entries) > 0 && entries[0].updated.After(t) {
		t = entries[0].updated
	}
	return t.UTC()
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Body string `xml:",chardata"`
}

type atomEntry struct {
	ID        string   `xml:"id"`
	Title     string   `xml:"title"`
	Updated   string   `xml:"updated"`
	Published string   `xml:"published"`
	Link      atomLink `xml:"link"`
	Content   atomText `xml:"content"`
}

type atomDoc struct {
	XMLName xml.Name   `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string     `xml:"xml:lang,attr"`
	ID      string     `xml:"id"`
	Title   string     `xml:"title"`
	Updated string     `xml:"updated"`
	Links   []atomLink `xml:"link"`
	Author  struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

func atomFeed(site incident.SPPage, v pageView, _ time.Time) (*document, error) {
	entries, err := feedEntries(v)
	if err != nil {
		return nil, err
	}
	self := site.URL + "/history.atom"
	d := atomDoc{Lang: "en", ID: self, Title: site.Name + " status history", Updated: feedUpdated(v, entries).Format(time.RFC3339),
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: self}, {Rel: "alternate", Type: "text/html", Href: site.URL + "/"}}}
	d.Author.Name = site.Name
	for _, e := range entries {
		d.Entries = append(d.Entries, atomEntry{ID: e.id, Title: e.title, Updated: e.updated.UTC().Format(time.RFC3339),
			Published: e.published.UTC().Format(time.RFC3339), Link: atomLink{Rel: "alternate", Type: "text/html", Href: e.id},
			Content: atomText{Type: "html", Body: e.summary}})
	}
	return xmlDocument("application/atom+xml; charset=utf-8", d)
}

type rssItem struct {
	Title string `xml:"title"`
	Link  string `xml:"link"`
	GUID  struct {
		IsPermaLink string `xml:"isPermaLink,attr"`
		Body        string `xml:",chardata"`
	} `xml:"guid"`
	PubDate     string `xml:"pubDate"`
	Description string `xml:"description"`
}

type rssDoc struct {
	XMLName xml.Name `xml:"rss"`
	Version string   `xml:"version,attr"`
	AtomNS  string   `xml:"xmlns:atom,attr"`
	Channel struct {
		Title         string `xml:"title"`
		Link          string `xml:"link"`
		Description   string `xml:"description"`
		Language      string `xml:"language"`
		LastBuildDate string `xml:"lastBuildDate"`
		Self          struct {
			Href string `xml:"href,attr"`
			Rel  string `xml:"rel,attr"`
			Type string `xml:"type,attr"`
		} `xml:"atom:link"`
		Items []rssItem `xml:"item"`
	} `xml:"channel"`
}

func rssFeed(site incident.SPPage, v pageView, _ time.Time) (*document, error) {
	entries, err := feedEntries(v)
	if err != nil {
		return nil, err
	}
	var d rssDoc
	d.Version, d.AtomNS = "2.0", "http://www.w3.org/2005/Atom"
	c := &d.Channel
	c.Title, c.Link, c.Description, c.Language = site.Name+" status history", site.URL+"/", "Incidents and maintenance of "+site.Name, "en"
	c.LastBuildDate = feedUpdated(v, entries).Format(time.RFC1123Z)
	c.Self.Href, c.Self.Rel, c.Self.Type = site.URL+"/history.rss", "self", "application/rss+xml"
	for _, e := range entries {
		it := rssItem{Title: e.title, Link: e.id, PubDate: e.updated.UTC().Format(time.RFC1123Z), Description: e.summary}
		it.GUID.IsPermaLink, it.GUID.Body = "true", e.id
		c.Items = append(c.Items, it)
	}
	return xmlDocument("application/rss+xml; charset=utf-8", d)
}

func xmlDocument(contentType string, v any) (*document, error) {
	b, err := xml.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode feed: %w", err)
	}
	return newDocument(contentType, append([]byte(xml.Header), b...), true), nil
}
