package server

import (
	"context"
	"encoding/json"
	"log/slog"
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
