package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// countObserver counts observations (the writer observes one per
// transaction).
type countObserver struct{ n int }

func (c *countObserver) Observe(float64) { c.n++ }

// TestWriterChunksKeepArrivalOrder: a flush larger than the chunk is
// written in several transactions, in arrival order: every installation is
// stored with its latest record, a waiting record gets its outcome, and an
// event reported after a routine check-in of its installation in another
// chunk is seen on that check-in's version.
func TestWriterChunksKeepArrivalOrder(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "ringfence.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	batches := &countObserver{}
	w := newWriter(writerDeps{store: store, quotas: newQuotas(Config{}), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		batch: batches, failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"}),
		commitWindow: time.Millisecond, flushInterval: time.Hour, chunk: 3})
	v1, v2 := release.MustParseVersion("1.0.0"), release.MustParseVersion("2.0.0")
	now := time.Now().UTC()
	rec := func(id string, v release.Version) sqlstore.CheckInRecord {
		return sqlstore.CheckInRecord{Product: "acme", Customer: "c", InstanceID: id, Version: v, ReceivedAt: now}
	}
	for i := range 7 {
		w.enqueue(rec(fmt.Sprintf("i%d", i), v1), "key")
	}
	// The event of i0 is queued last, after i0's routine record in the
	// first chunk: it must be seen on 1.0.0.
	done := make(chan error, 1)
	go func() {
		r := rec("i0", v2)
		r.Events = []release.Event{{Kind: release.EventUpgradeFailed, From: v1, To: v2, At: now, Detail: "late"}}
		done <- w.commit(ctx, r, "key")
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		w.mu.Lock()
		queued := len(w.wait)
		w.mu.Unlock()
		if queued == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting record was not queued")
		}
		time.Sleep(time.Millisecond)
	}
	w.flush(ctx)
	if err := <-done; err != nil {
		t.Fatalf("waiting record: %v", err)
	}
	if batches.n != 3 {
		t.Errorf("8 records in %d transactions, want 3 of at most 3", batches.n)
	}
	insts, err := store.ListInstallations(ctx, "acme", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]release.Version{}
	for _, in := range insts {
		got[in.InstanceID] = in.Version
	}
	for i := range 7 {
		id, want := fmt.Sprintf("i%d", i), v1
		if i == 0 {
			want = v2
		}
		if got[id] != want {
			t.Errorf("%s on %s, want %s", id, got[id], want)
		}
	}
	// Known before it reported (seen on 1.0.0): counted, not ignored.
	c, err := store.HaltCounts(ctx, "acme", v2, now.Add(-time.Minute), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed != 1 || c.Ignored != 0 {
		t.Errorf("halt counts of 2.0.0: %d failed, %d ignored; want 1 and 0", c.Failed, c.Ignored)
	}
}
