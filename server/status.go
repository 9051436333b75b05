package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/netguard"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/release"
)

// The public status page is rendered once per change, not per request: the
// store's change signal (this process's changes, and on PostgreSQL every
// server's) and a ticker for time-based changes (the day rolling over,
// maintenance windows) mark it dirty; statusLoop reads incident.Page once,
// renders every public document — the HTML pages, Statuspage's JSON, the
// feeds — with its gzip form and validators, and swaps the whole set in
// behind an atomic.Pointer. Requests only look a document up in that map.
// When the store cannot be read, the last set keeps being served.

// statusCacheControl lets browsers, CDNs and proxies keep a document 10
// seconds, serve it stale while they revalidate for a minute, and keep
// serving it for a day if ringfence cannot be reached.
const statusCacheControl = "public, max-age=10, stale-while-revalidate=60, stale-if-error=86400"

// document is one rendered public document.
type document struct {
	body, gz    []byte
	contentType string
	etag        string // strong validator of body; gz's is etag with -gz
	modified    time.Time
	// cors: readable from any origin (the JSON and the feeds).
	cors bool
}

// statusSite is every public document of one render, by path.
type statusSite struct {
	docs       map[string]*document
	renderedAt time.Time
	page       incident.Page
}

// markStatusDirty asks statusLoop for a render; it never blocks.
func (s *Server) markStatusDirty() {
	select {
	case s.statusDirty <- struct{}{}:
	default:
	}
}

// statusLoop renders the public documents when marked dirty and every
// StatusRefresh.
func (s *Server) statusLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.StatusRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.statusDirty:
		case <-t.C:
		}
		if err := s.renderStatus(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("render status page; serving the previous render", slog.Any("err", err))
		}
	}
}

// renderStatus reads the page and swaps in its rendered documents.
func (s *Server) renderStatus(ctx context.Context) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	now := time.Now().UTC()
	page, err := s.store.StatusPage(ctx, now)
	if err != nil {
		return err
	}
	docs, err := s.pages.render(page, now)
	if err != nil {
		return err
	}
	site := &statusSite{docs: map[string]*document{}, renderedAt: now, page: page}
	old := s.statusSite.Load()
	for path, d := range docs {
		d.etag = `"` + d.etag + `"`
		d.modified = now.Truncate(time.Second)
		if old != nil {
			if prev, ok := old.docs[path]; ok && prev.etag == d.etag {
				d.modified = prev.modified // unchanged: same validators
				d.gz = prev.gz
			}
		}
		if d.gz == nil {
			if d.gz, err = gzipped(d.body); err != nil {
				return err
			}
		}
		site.docs[path] = d
	}
	s.statusSite.Store(site)
	s.metrics.statusRenders.Inc()
	return nil
}

// newDocument wraps a rendered body; its etag is the hash of body.
func newDocument(contentType string, body []byte, cors bool) *document {
	h := sha256.Sum256(body)
	return &document{body: body, contentType: contentType, etag: hex.EncodeToString(h[:12]), cors: cors}
}

func jsonDocument(v any) (*document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode status json: %w", err)
	}
	return newDocument("application/json; charset=utf-8", b, true), nil
}

func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("gzip status document: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip status document: %w", err)
	}
	return buf.Bytes(), nil
}

// servePublic answers GET and HEAD of every rendered public document, and
// the API's 404 problem for anything else.
func (s *Server) servePublic(w http.ResponseWriter, r *http.Request) {
	site := s.statusSite.Load()
	var d *document
	if site != nil {
		d = site.docs[r.URL.Path]
	}
	if d == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions) {
		if d != nil {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, r.Method+" is not allowed here", http.StatusMethodNotAllowed)
			return
		}
		s.notFound(w, r)
		return
	}
	h := w.Header()
	if d.cors {
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if r.Method == http.MethodOptions {
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, etag := d.body, d.etag
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		body, etag = d.gz, strings.TrimSuffix(d.etag, `"`)+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Type", d.contentType)
	h.Set("Cache-Control", statusCacheControl)
	h.Set("ETag", etag)
	h.Set("Last-Modified", d.modified.Format(http.TimeFormat))
	h.Set("X-Content-Type-Options", "nosniff")
	if notModified(r, etag, d.modified) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// notFound answers a path nothing serves: the API's problem.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, release.ENOTFOUND, "no route "+r.Method+" "+r.URL.Path)
}

// acceptsGzip reports whether the request accepts gzip (and not with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// notModified evaluates If-None-Match (which wins when present) and
// If-Modified-Since.
func notModified(r *http.Request, etag string, modified time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == etag || t == "*" {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !modified.After(t) {
			return true
		}
	}
	return false
}

// webhookDocs is what Statuspage-shaped payloads name as their
// documentation: the payload is Statuspage's.
const webhookDocs = "https://support.atlassian.com/statuspage/docs/enable-webhook-notifications/"

// setupStatus prepares the status page renderer and the subscriber
// delivery worker from the configuration.
func (s *Server) setupStatus() error {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("server: public URL %q is not an absolute http(s) URL without query", s.cfg.PublicURL)
	}
	site := incident.SPPage{ID: statusPageID(s.cfg.PublicURL), Name: s.cfg.PageTitle, URL: s.cfg.PublicURL, TimeZone: "Etc/UTC"}
	nc := s.cfg.Notify
	if nc.Timeout <= 0 {
		nc.Timeout = 10 * time.Second
	}
	if s.cfg.SMTP != "" {
		if s.cfg.SMTPFrom == "" {
			return errors.New("server: Config.SMTP needs Config.SMTPFrom, the sender address")
		}
		if nc.Mailer, err = notify.NewMailer(s.cfg.SMTP, s.cfg.SMTPFrom, nc.Timeout); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if s.pages, err = newStatusRenderer(site, nc.Mailer != nil); err != nil {
		return err
	}
	nc.Store, nc.Logger, nc.Site, nc.Docs = s.store, s.log, site, webhookDocs
	if nc.Retention == 0 {
		nc.Retention = s.cfg.Retention
	}
	if nc.HTTP == nil {
		nc.HTTP = netguard.NewClient(nc.Timeout, s.cfg.WebhookAllowPrivate, 256)
	}
	if s.notifier, err = notify.New(nc); err != nil {
		return err
	}
	s.statusDirty = make(chan struct{}, 1)
	// Public subscriptions send email: a global budget bounds what anyone
	// can make the server send.
	s.subscribe = rate.NewLimiter(2, 30)
	s.metrics.statusRenders = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringfence_status_renders_total",
		Help: "Renders of the public status page documents.",
	})
	deliveries := func(pick func(d, f, x int64) int64) func() float64 {
		return func() float64 { return float64(pick(s.notifier.Stats())) }
	}
	s.metrics.registry.MustRegister(s.metrics.statusRenders,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ringfence_subscriber_deliveries_total",
			Help: "Subscriber delivery attempts by this server, by outcome.", ConstLabels: prometheus.Labels{"outcome": "delivered"}},
			deliveries(func(d, _, _ int64) int64 { return d })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ringfence_subscriber_deliveries_total",
			Help: "Subscriber delivery attempts by this server, by outcome.", ConstLabels: prometheus.Labels{"outcome": "failed"}},
			deliveries(func(_, f, _ int64) int64 { return f })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ringfence_subscriber_deliveries_total",
			Help: "Subscriber delivery attempts by this server, by outcome.", ConstLabels: prometheus.Labels{"outcome": "dead"}},
			deliveries(func(_, _, x int64) int64 { return x })),
	)
	return nil
}
