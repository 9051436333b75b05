package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ringfence/ringfence/release"
)

// haltQueue collects the releases auto-halt must look at, each once however
// many failures arrive meanwhile.
type haltQueue struct {
	mu      sync.Mutex
	pending map[haltKey]bool
	kick    chan struct{}
}

type haltKey struct {
	product string
	version release.Version
}

func newHaltQueue() *haltQueue {
	return &haltQueue{pending: map[haltKey]bool{}, kick: make(chan struct{}, 1)}
}

func (q *haltQueue) add(product string, v release.Version) {
	q.mu.Lock()
	q.pending[haltKey{product, v}] = true
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *haltQueue) take() []haltKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]haltKey, 0, len(q.pending))
	for k := range q.pending {
		out = append(out, k)
	}
	q.pending = map[haltKey]bool{}
	return out
}

// haltLoop evaluates auto-halt for releases with newly reported failures
// and, at start and every HaltSweepInterval, for every release with
// failures inside the longest window of any product (the queue is only in
// memory: a crash between a failure's commit and its evaluation would
// otherwise lose the halt).
func (s *Server) haltLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.HaltSweepInterval)
	defer t.Stop()
	s.sweepHalts(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.halts.kick:
		case <-t.C:
			s.sweepHalts(ctx)
		}
		for _, k := range s.halts.take() {
			if err := s.evaluateHalt(ctx, k.product, k.version); err != nil && ctx.Err() == nil {
				s.log.Error("evaluate auto-halt", slog.String("product", k.product), slog.String("version", k.version.String()), slog.Any("err", err))
			}
		}
	}
}

// sweepHalts queues every release with failures inside the longest auto-halt
// window of any product.
func (s *Server) sweepHalts(ctx context.Context) {
	products, err := s.store.ListProducts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("auto-halt sweep: list products", slog.Any("err", err))
		}
		return
	}
	var window time.Duration
	for _, p := range products {
		if !p.Policy.Disabled {
			window = max(window, p.Policy.Window)
		}
	}
	if window == 0 {
		return
	}
	refs, err := s.store.ReleasesWithFailures(ctx, time.Now().Add(-window))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("auto-halt sweep", slog.Any("err", err))
		}
		return
	}
	for _, r := range refs {
		s.halts.add(r.Product, r.Version)
	}
}

// evaluateHalt applies the product's policy to the evidence about release v
// and, when it says so, pauses v (once, whichever server gets there first),
// refreshes the snapshot and fires the incident webhook.
func (s *Server) evaluateHalt(ctx context.Context, product string, v release.Version) error {
	snap := s.state.Load().snap
	p, err := snap.Product(product)
	if err != nil {
		return nil // product deleted meanwhile
	}
	rel, err := snap.Release(product, v)
	if err != nil || rel.Status != release.StatusOK || p.Policy.Disabled {
		return nil // unknown version, already paused or pulled, or auto-halt off
	}
	now := time.Now().UTC()
	since := release.HaltSince(p.Policy, rel, now)
	counts, err := s.store.HaltCounts(ctx, product, v, since, now)
	if err != nil {
		return err
	}
	halt, ev := release.JudgeHalt(p.Policy, product, v, counts, since, now)
	if !halt {
		return nil
	}
	var notify func(release.Release) ([]byte, error)
	if s.cfg.IncidentWebhook != "" {
		notify = func(paused release.Release) ([]byte, error) {
			return json.Marshal(IncidentHook{Event: "release.auto_halt", At: now, Release: paused, Evidence: ev})
		}
	}
	halted, paused, err := s.store.AutoHalt(ctx, product, v, ev, notify)
	if err != nil || !halted {
		return err
	}
	s.metrics.autoHalts.WithLabelValues(product).Inc()
	s.log.Warn("auto-halt paused a release", slog.String("release", paused.ID()), slog.String("reason", ev.Reason))
	if err := s.refresh(ctx); err != nil {
		s.log.Error("rebuild snapshot after auto-halt", slog.Any("err", err))
	}
	if notify != nil {
		select {
		case s.outboxKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// IncidentHook is the JSON body POSTed to the incident webhook when
// auto-halt pauses a release.
type IncidentHook struct {
	// Event is "release.auto_halt".
	Event    string           `json:"event"`
	At       time.Time        `json:"at"`
	Release  release.Release  `json:"release"`
	Evidence release.Evidence `json:"evidence"`
}

// outboxLoop delivers the queued incident notifications (sqlstore's
// outbox, written with the auto-halt that caused them) to the webhook:
// when kicked after a halt and every WebhookBackoff (at most a second), it
// claims the due ones and makes one attempt each. A failed attempt is
// retried after WebhookBackoff, doubling per attempt up to an hour, until
// WebhookAttempts were made. Attempts survive restarts: a notification
// queued or claimed by a server that died is delivered by the next one.
func (s *Server) outboxLoop(ctx context.Context) {
	if s.cfg.IncidentWebhook == "" {
		return
	}
	t := time.NewTicker(min(s.cfg.WebhookBackoff, time.Second))
	defer t.Stop()
	for {
		s.deliverOutbox(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.outboxKick:
		case <-t.C:
		}
	}
}

// deliverOutbox makes one attempt at each due notification.
func (s *Server) deliverOutbox(ctx context.Context) {
	lease := 2*s.cfg.WebhookTimeout + time.Second // longer than one attempt
	items, err := s.store.ClaimOutbox(ctx, 10, lease)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("claim incident notifications", slog.Any("err", err))
		}
		return
	}
	for _, it := range items {
		err := s.postWebhook(ctx, it.Body)
		giveUp := err != nil && it.Attempts >= s.cfg.WebhookAttempts
		backoff := min(s.cfg.WebhookBackoff<<min(it.Attempts-1, 20), time.Hour)
		switch {
		case err == nil:
			s.metrics.webhooks.WithLabelValues("delivered").Inc()
		case giveUp:
			s.log.Error("incident webhook failed; giving up", slog.Int("attempt", it.Attempts), slog.Any("err", err))
			s.metrics.webhooks.WithLabelValues("failed").Inc()
		default:
			s.log.Warn("incident webhook failed", slog.Int("attempt", it.Attempts), slog.Any("err", err))
		}
		if ferr := s.store.FinishOutbox(context.WithoutCancel(ctx), it.ID, err, time.Now().Add(backoff), giveUp); ferr != nil {
			s.log.Error("record incident notification delivery", slog.Any("err", ferr))
		}
	}
}

func (s *Server) postWebhook(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.IncidentWebhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ringfence")
	resp, err := s.webhook.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, whose path or query may hold a
		// secret (many incident tools put their token there): log the
		// scheme and host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post webhook to %s: %w", redactURL(s.cfg.IncidentWebhook), err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post webhook to %s: status %s", redactURL(s.cfg.IncidentWebhook), resp.Status)
	}
	return nil
}

// redactURL returns the scheme and host of raw, for logs and errors: the
// user info, path and query of a webhook URL may be secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}
