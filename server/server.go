// Package server is ringfence's HTTP face: the check-in endpoint
// installations call, the admin JSON API under /api/v1, health and metrics,
// and the public status page with its subscribers (status*.go: rendered
// once per change, served from memory).
//
// Check-ins are decided from an immutable in-memory snapshot of the release
// facts (release.Snapshot), swapped atomically whenever the store changes —
// in this process, or in another one sharing the same PostgreSQL database —
// and at least every RefreshInterval, so soak times and new evidence take
// effect. Check-ins that report failures are committed before they are
// answered (group commit, ~1 ms batches); routine last-seen updates are
// batched without making anyone wait. A batch the store refuses is written
// again record by record, so one customer's bad record fails alone; input is
// checked (control characters, strict JSON) before it reaches a batch, and
// per-key quotas, counted in memory, bound what one key can store.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/netguard"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// Config configures a Server. Zero values get the defaults named per field.
type Config struct {
	// Store is required.
	Store *sqlstore.Store
	// Logger receives structured logs; default discards.
	Logger *slog.Logger
	// AnswerTTL is how long signed answers stay valid (release.DefaultAnswerTTL).
	AnswerTTL time.Duration
	// RefreshInterval bounds how stale the snapshot gets without changes
	// (2s): soak times ending take effect within it.
	RefreshInterval time.Duration
	// AdoptionInterval is how often adoption — installations per release
	// and ring, healthy and failed — is recounted, a scan of every
	// installation apart from the snapshot rebuilds, which use the last
	// count (10s). Promotion evidence arrives within it, or within
	// 20 times the shorter of the last two counts' durations if that is
	// longer: counting a large fleet (seconds for millions of installations)
	// then runs at most a twentieth of the time (on SQLite at most half a
	// core while it runs: it rests as long as it counts), and one slow count
	// does not hold back the next.
	AdoptionInterval time.Duration
	// CheckInRate and CheckInBurst limit check-ins per enrollment key (a
	// customer's whole fleet): default 50/s with a burst of 200.
	CheckInRate  rate.Limit
	CheckInBurst int
	// CommitWindow is how long the writer gathers check-ins that must be
	// committed before their answer (1ms).
	CommitWindow time.Duration
	// FlushInterval is how often routine last-seen updates are written (100ms).
	FlushInterval time.Duration
	// IncidentWebhook, if set, receives a POST for every auto-halt. It is
	// only ever connected to on public addresses (checked on the resolved
	// address at connect time; loopback, private, link-local/metadata,
	// unique-local and other internal ranges are refused), without a proxy,
	// and redirects are not followed.
	IncidentWebhook string
	// WebhookAllowPrivate lets the incident webhook reach internal addresses
	// (an incident system inside the vendor's network; tests on loopback).
	WebhookAllowPrivate bool
	// WebhookTimeout bounds each webhook attempt (5s); WebhookAttempts is
	// how many are made (4), with exponential backoff from WebhookBackoff (1s).
	WebhookTimeout  time.Duration
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// KeyOverlap is how long after a key rotation the previous signing key
	// still co-signs every answer (30 days), so agents that pinned it keep
	// verifying answers until they learn the new key. Negative disables it.
	// Each co-signature costs one more ed25519 signature per check-in.
	KeyOverlap time.Duration
	// HaltSweepInterval is how often, besides at start, auto-halt looks at
	// every release with failures inside its product's window (1m), so that
	// failures committed just before a crash (whose evaluation was only queued
	// in memory) still halt a release.
	HaltSweepInterval time.Duration
	// MetricsToken, if set, serves /metrics on Handler to requests with
	// Authorization: Bearer <MetricsToken>. Without it Handler has no
	// /metrics (it names products and customers): serve Metrics on a
	// separate, private listener instead.
	MetricsToken string
	// KeyEncryptionKey seals the signing keys' private halves in the store
	// and opens them; required. New seals plain keys an earlier version
	// stored.
	KeyEncryptionKey *sign.KeyEncryptionKey
	// MaintenanceInterval is how often the maintenance scheduler looks for
	// windows that start or end (5s); it also runs at start.
	MaintenanceInterval time.Duration
	// QuotaNewInstances bounds the installations one enrollment key may
	// create per hour (1000); QuotaEvents the events one installation may
	// report per day (1000); QuotaStoredBytes the bytes of instance history
	// one customer may have in the store (256 MiB). Beyond them check-ins
	// that would add to it are answered 429. Negative: no limit.
	QuotaNewInstances int
	QuotaEvents       int
	QuotaStoredBytes  int64
	// Retention is how long instance history (events, health reports,
	// installations not seen since) is kept: 90 days. Negative keeps all.
	Retention time.Duration
	// PublicURL is the public base URL people reach this server at, used in
	// links of emails, feeds and Statuspage payloads (http://localhost:8080).
	// When it is https, console cookies are Secure even if TLS ends in a
	// proxy in front.
	PublicURL string
	// PageTitle names the status page ("Status").
	PageTitle string
	// SMTP is the smtp:// or smtps:// URL email subscribers are served
	// through, SMTPFrom the sender address; without SMTP, email
	// subscriptions are refused.
	SMTP     string
	SMTPFrom string
	// StatusRefresh is how often the status page is rendered without a
	// change, for time-based changes (the day rolling over): 30s.
	StatusRefresh time.Duration
	// Notify tunes subscriber delivery (concurrency, timeout, attempts,
	// backoff); its Store, Site, HTTP and Mailer are set by New.
	Notify notify.Config
	// SessionTTL is how long a console login lasts (12h).
	SessionTTL time.Duration
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	positiveOr(&c.AnswerTTL, release.DefaultAnswerTTL)
	positiveOr(&c.RefreshInterval, 2*time.Second)
	positiveOr(&c.AdoptionInterval, 10*time.Second)
	positiveOr(&c.CheckInRate, 50)
	positiveOr(&c.CheckInBurst, 200)
	positiveOr(&c.CommitWindow, time.Millisecond)
	positiveOr(&c.FlushInterval, 100*time.Millisecond)
	positiveOr(&c.WebhookTimeout, 5*time.Second)
	positiveOr(&c.WebhookAttempts, 4)
	positiveOr(&c.WebhookBackoff, time.Second)
	positiveOr(&c.HaltSweepInterval, time.Minute)
	positiveOr(&c.MaintenanceInterval, 5*time.Second)
	positiveOr(&c.SessionTTL, 12*time.Hour)
	quotaOr(&c.QuotaNewInstances, 1000)
	quotaOr(&c.QuotaEvents, 1000)
	quotaOr(&c.QuotaStoredBytes, 256<<20)
	if c.KeyOverlap == 0 {
		c.KeyOverlap = 30 * 24 * time.Hour
	}
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost:8080"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PageTitle == "" {
		c.PageTitle = "Status"
	}
	positiveOr(&c.StatusRefresh, 30*time.Second)
}

// positiveOr sets *v to def unless *v is positive.
func positiveOr[T ~int | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// quotaOr sets a zero quota to def and a negative one to 0 (no limit).
func quotaOr[T ~int | ~int64](v *T, def T) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		*v = 0
	}
}

// Server serves ringfence's HTTP API. Create it with New, serve Handler and
// keep Run running.
type Server struct {
	cfg     Config
	store   *sqlstore.Store
	log     *slog.Logger
	metrics *metrics
	handler http.Handler

	state atomic.Pointer[state]
	// refreshMu serialises snapshot rebuilds; dirty asks the refresher for
	// one.
	refreshMu sync.Mutex
	dirty     chan struct{}
	// counts is the last adoption count, which rebuilds use (adoption.go).
	counts atomic.Pointer[adoptionCounts]

	// writers are the shards of the check-in writer (writer.go).
	writers writerShards
	halts   *haltQueue
	limits  limiters
	quotas  *quotas
	webhook *http.Client
	// outboxKick wakes the outbox loop after an auto-halt queued a
	// notification.
	outboxKick chan struct{}
	running    atomic.Bool

	// The public status page: the rendered documents, swapped whole (see
	// status.go), and the subscriber delivery worker.
	pages       *statusRenderer
	statusSite  atomic.Pointer[statusSite]
	statusMu    sync.Mutex
	statusDirty chan struct{}
	notifier    *notify.Worker
	subscribe   *rate.Limiter
	console     *console
}

// state is what the check-in path reads, swapped as a whole.
type state struct {
	snap *release.Snapshot
	keys map[[32]byte]release.EnrollmentKey
	ring *sign.KeyRing
	// signers name the keys that sign during a rotation overlap (nil
	// otherwise); answers and bundles carry them (release.SigningKey).
	signers []release.SigningKey
}

// introduced returns the keys ring signs with when they are more than one
// (during a rotation overlap), for answers and bundles to name: an agent
// that trusts only the previous key learns the new one from them.
func introduced(ring *sign.KeyRing) []release.SigningKey {
	signers := ring.Signers()
	if len(signers) < 2 {
		return nil
	}
	out := make([]release.SigningKey, len(signers))
	for i, k := range signers {
		out[i] = release.SigningKey{KeyID: k.ID, PublicKey: k.Key}
	}
	return out
}

// New creates a server on cfg.Store: it creates the first signing key if the
// store has none and builds the first snapshot.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	cfg.defaults()
	if cfg.IncidentWebhook != "" {
		u, err := url.Parse(cfg.IncidentWebhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("server: incident webhook %s is not an absolute http(s) URL", redactURL(cfg.IncidentWebhook))
		}
	}
	s := &Server{
		cfg:        cfg,
		store:      cfg.Store,
		log:        cfg.Logger,
		metrics:    newMetrics(),
		dirty:      make(chan struct{}, 1),
		halts:      newHaltQueue(),
		outboxKick: make(chan struct{}, 1),
		webhook:    netguard.NewClient(cfg.WebhookTimeout, cfg.WebhookAllowPrivate, 2),
		quotas:     newQuotas(cfg),
	}
	s.metrics.registry.MustRegister(quotaCollector{s: s, desc: prometheus.NewDesc("ringfence_quota_usage",
		"Each customer's use of its quotas: installations created this hour (all its keys), the most events of one installation today, estimated stored bytes.",
		[]string{"product", "customer", "quota"}, nil)})
	s.limits.m = map[string]*rate.Limiter{}
	if err := s.setupStatus(); err != nil {
		return nil, err
	}
	// SQLite has one writing connection, and its statements run on the
	// writer's goroutine: a flush commits at most sqliteChunk records a
	// transaction and yields between them. PostgreSQL's statements run in
	// its own processes (chunks would only cost round trips); two batches
	// in flight did best with the check-in bench, four made smaller batches
	// that cost PostgreSQL more CPU per check-in (bench/README.md).
	shards, chunk := 1, sqliteChunk
	if cfg.Store.Dialect() == sqlstore.Postgres {
		shards, chunk = 2, 0
	}
	for range shards {
		s.writers = append(s.writers, newWriter(writerDeps{store: s.store, quotas: s.quotas, log: s.log,
			batch: s.metrics.batch, failed: s.metrics.failedRecords, commitWindow: cfg.CommitWindow, flushInterval: cfg.FlushInterval,
			chunk: chunk}))
	}
	if cfg.KeyEncryptionKey == nil {
		return nil, errors.New("server: no key-encryption key (Config.KeyEncryptionKey): signing keys are never stored in plain text")
	}
	if n, err := s.store.UseKeyEncryptionKey(ctx, sqlstore.ActorSystem, cfg.KeyEncryptionKey); err != nil {
		return nil, err
	} else if n > 0 {
		s.log.Info("encrypted the signing keys stored in plain text", slog.Int("keys", n))
	}
	key, err := sign.GenerateKey(rand.Reader, storeTime())
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	if added, err := s.store.AddSigningKey(ctx, sqlstore.ActorSystem, key, true); err != nil {
		return nil, err
	} else if added {
		s.log.Info("created the first signing key", slog.String("keyid", key.ID))
	}
	if err := s.recount(ctx, false); err != nil { // nothing served yet: no need to pace
		return nil, fmt.Errorf("count adoption: %w", err)
	}
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	if err := s.recountBytes(ctx); err != nil {
		return nil, err
	}
	if err := s.renderStatus(ctx); err != nil {
		return nil, fmt.Errorf("render status page: %w", err)
	}
	if s.console, err = newConsole(s); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics returns the handler of /metrics, without authentication, for a
// private listener (also mounted on Handler behind Config.MetricsToken).
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}

// Run runs the background work — snapshot refreshes on change and on a
// timer, the check-in writer, auto-halt evaluation, incident notification
// delivery, pruning — until ctx ends, then writes the check-ins still
// queued. Notifications not delivered yet stay in the store's outbox for
// the next run.
func (s *Server) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)
	var wg sync.WaitGroup
	loop := func(fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); fn(ctx) }()
	}
	loop(func(ctx context.Context) {
		_ = s.store.Watch(ctx, func() { s.markDirty(); s.markStatusDirty(); s.notifier.Kick() }, func(err error) {
			s.log.Error("watch the store for changes by other servers; retrying", slog.Any("err", err))
		})
	})
	loop(s.refresher)
	loop(s.adoptionLoop)
	loop(s.haltLoop)
	loop(s.outboxLoop)
	loop(s.pruneLoop)
	loop(s.maintenanceLoop)
	loop(s.statusLoop)
	loop(func(ctx context.Context) { _ = s.notifier.Run(ctx) })
	// The writers outlive ctx: they drain what handlers queued.
	writerCtx, stopWriters := context.WithCancel(context.WithoutCancel(ctx))
	var writers sync.WaitGroup
	for _, w := range s.writers {
		writers.Add(1)
		go func() { defer writers.Done(); w.run(writerCtx) }()
	}
	<-ctx.Done()
	wg.Wait()
	for _, w := range s.writers {
		w.close()
	}
	writers.Wait()
	stopWriters()
	return nil
}

// markDirty asks the refresher for a rebuild; it never blocks.
func (s *Server) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// refresher rebuilds the snapshot when marked dirty and on a timer.
func (s *Server) refresher(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		case <-t.C:
		}
		if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rebuild snapshot", slog.Any("err", err))
		}
	}
}

// refresh rebuilds the snapshot from the store and records the promotions
// that fell due.
func (s *Server) refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	facts, err := s.store.LoadFacts(ctx)
	if err != nil {
		return fmt.Errorf("rebuild snapshot: %w", err)
	}
	c := s.counts.Load()
	facts.Adoption, facts.RingSizes = c.adoption, c.ringSizes
	keys, err := s.store.LiveEnrollmentKeys(ctx)
	if err != nil {
		return fmt.Errorf("rebuild snapshot: %w", err)
	}
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("rebuild snapshot: %w", err)
	}
	ring, err := sign.NewKeyRing(stored...)
	if err != nil {
		return fmt.Errorf("rebuild snapshot: %w", err)
	}
	ring = ring.WithOverlap(time.Now(), s.cfg.KeyOverlap)
	snap := release.NewSnapshot(facts, s.cfg.AnswerTTL, time.Now())
	s.state.Store(&state{snap: snap, keys: keys, ring: ring, signers: introduced(ring)})
	s.metrics.snapshots.Inc()
	if due := snap.Due(); len(due) > 0 {
		n, err := s.store.RecordPromotions(ctx, due)
		if err != nil {
			return fmt.Errorf("record promotions: %w", err)
		}
		if n > 0 {
			s.log.Info("recorded promotions", slog.Int("count", n))
			s.markDirty()
		}
	}
	return nil
}

// pruneLoop deletes instance history older than the retention, hourly.
func (s *Server) pruneLoop(ctx context.Context) {
	if s.cfg.Retention < 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.store.Prune(ctx, time.Now().Add(-s.cfg.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("prune instance history", slog.Any("err", err))
		case n > 0:
			s.log.Info("pruned instance history", slog.Int64("rows", n))
		}
		// The status page shows 90 days whatever the retention: keep a day more.
		keep := max(s.cfg.Retention, time.Duration(incident.HistoryDays+1)*24*time.Hour)
		if n, err := s.store.PruneStatusHistory(ctx, time.Now().Add(-keep)); err != nil && ctx.Err() == nil {
			s.log.Error("prune status history", slog.Any("err", err))
		} else if n > 0 {
			s.log.Info("pruned status history", slog.Int64("rows", n))
		}
		if err := s.recountBytes(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("recount stored bytes per customer", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeTime is now as the store keeps times (sqlstore.Now), so what an
// answer shows equals what is read back.
func storeTime() time.Time { return sqlstore.Now() }
