package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/ringfence/ringfence/release"
)

// adoptionCounts are the adoption counts of one recount, which every
// snapshot rebuild until the next recount uses.
type adoptionCounts struct {
	adoption  []release.Adoption
	ringSizes []release.RingSize
	at        time.Time     // when the count finished
	took      time.Duration // how long it took
	// pace is the shorter of this count's and the previous one's durations
	// (none before the first): the next count waits 20 times it, so that
	// counting a large fleet takes a small share of the time, and one slow
	// count (a pause of the machine) does not hold back the next one for 20
	// times its length.
	pace time.Duration
}

// recount counts adoption (a scan of every installation) and publishes the
// counts for the next snapshot rebuild; paced while check-ins are served
// (sqlstore.Store.CountAdoption).
func (s *Server) recount(ctx context.Context, paced bool) error {
	start := time.Now()
	adoption, sizes, err := s.store.CountAdoption(ctx, paced)
	if err != nil {
		return err
	}
	c := &adoptionCounts{adoption: adoption, ringSizes: sizes, at: time.Now(), took: time.Since(start)}
	if prev := s.counts.Load(); prev != nil {
		c.pace = min(c.took, prev.took)
	}
	s.counts.Store(c)
	return nil
}

// adoptionLoop recounts adoption every AdoptionInterval, or 20 times the
// count's pace if that is longer, and has the snapshot rebuilt
// with each new count. It counts apart from the rebuilds: a rebuild, which
// a pause or a pull waits for, never waits for a count (seconds with
// millions of installations).
func (s *Server) adoptionLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		c := s.counts.Load()
		t.Reset(time.Until(c.at.Add(max(s.cfg.AdoptionInterval, 20*c.pace))))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.recount(ctx, true); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("count adoption; the snapshot keeps the last count", slog.Any("err", err))
			// Try again after a whole interval, not at once.
			s.counts.Store(&adoptionCounts{adoption: c.adoption, ringSizes: c.ringSizes, at: time.Now(), took: c.took, pace: c.pace})
			continue
		}
		s.markDirty()
	}
}
