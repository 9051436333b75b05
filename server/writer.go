package server

import (
	"context"
	"hash/fnv"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/internal/fault"
	"github.com/ringfence/ringfence/sqlstore"
)

// writer batches check-in records into store transactions. Records that
// must be durable before their answer wait for the commit of their batch;
// routine ones are coalesced per installation and flushed periodically.
//
// Invariants: records are written in arrival order (a record queued later
// never lands before an earlier one of the same installation); a record
// someone waits for is reported to it exactly once, after its batch
// committed or failed; a batch the store refuses is written again record
// by record, so only the record that fails fails; after close, run writes
// what is queued and commit refuses new records.
type writer struct {
	deps writerDeps

	mu   sync.Mutex
	seq  uint64
	busy map[instanceRef]queued // routine records by installation
	wait []queued               // records someone waits for
	// closed is set before the final flush; commits after it are refused.
	closed bool
	kick   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// writerDeps is what a writer needs: the store it writes to, the quotas it
// tells what was stored, where it logs and counts, and its timing.
type writerDeps struct {
	store  *sqlstore.Store
	quotas *quotas
	log    *slog.Logger
	// batch observes the records per transaction; failed counts records
	// the store refused even alone.
	batch  prometheus.Observer
	failed prometheus.Counter
	// commitWindow is how long a batch someone waits for gathers more
	// records; flushInterval how often routine records are written.
	commitWindow, flushInterval time.Duration
	// chunk is the most records written in one transaction, the writer
	// yielding between them; 0 is no limit.
	chunk int
}

type queued struct {
	seq   uint64
	rec   sqlstore.CheckInRecord
	keyID string     // the enrollment key that sent it, for quotas
	done  chan error // nil for routine records
}

func newWriter(deps writerDeps) *writer {
	return &writer{deps: deps, busy: map[instanceRef]queued{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// writerShards are the shards of the check-in writer: an installation's
// records always go to the same one, so concurrent transactions never touch
// the same rows (no lock waits, no deadlocks, order kept per installation).
type writerShards []*writer

// of returns the shard of rec's installation.
func (ws writerShards) of(rec sqlstore.CheckInRecord) *writer {
	if len(ws) == 1 {
		return ws[0]
	}
	h := fnv.New32a()
	h.Write([]byte(rec.Product))
	h.Write([]byte{0})
	h.Write([]byte(rec.Customer))
	h.Write([]byte{0})
	h.Write([]byte(rec.InstanceID))
	return ws[h.Sum32()%uint32(len(ws))]
}

// enqueue queues a routine record, replacing an older one of the same
// installation.
func (w *writer) enqueue(rec sqlstore.CheckInRecord, keyID string) {
	k := instanceRef{Product: rec.Product, Customer: rec.Customer, InstanceID: rec.InstanceID}
	w.mu.Lock()
	w.seq++
	if old, ok := w.busy[k]; ok {
		// Keep when the installation was first seen: promotion evidence
		// depends on it (installations first seen before a release).
		rec.FirstSeen = old.rec.ReceivedAt
		if !old.rec.FirstSeen.IsZero() && old.rec.FirstSeen.Before(rec.FirstSeen) {
			rec.FirstSeen = old.rec.FirstSeen
		}
	}
	w.busy[k] = queued{seq: w.seq, rec: rec, keyID: keyID}
	w.mu.Unlock()
}

// commit queues rec and waits until the batch holding it committed.
func (w *writer) commit(ctx context.Context, rec sqlstore.CheckInRecord, keyID string) error {
	done := make(chan error, 1)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errWriterClosed
	}
	w.seq++
	// An older routine record of the installation stays queued: it is older
	// than rec (lower seq) and tells auto-halt the installation was known
	// before rec reported (RecordCheckIns keeps the latest row).
	w.wait = append(w.wait, queued{seq: w.seq, rec: rec, keyID: keyID, done: done})
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		// Closed meanwhile: the final flush still reports through done.
		return <-done
	}
}

// errWriterClosed refuses commits during shutdown.
const errWriterClosed fault.Const = "server is shutting down"

// close makes run flush what is queued and return.
func (w *writer) close() { w.once.Do(func() { close(w.done) }) }

// run writes batches until closed, then flushes the rest.
func (w *writer) run(ctx context.Context) {
	t := time.NewTicker(w.deps.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.kick:
			// An idle writer gathers what arrives within the commit window
			// into this batch.
			time.Sleep(w.deps.commitWindow)
		case <-t.C:
		case <-w.done:
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.flush(ctx)
			return
		}
		// Records someone waits for that arrived while a batch was being
		// committed already form the next group: commit them right away
		// instead of waiting another window.
		for w.flush(ctx) {
			select {
			case <-w.kick:
			default:
			}
		}
	}
}

// flush writes everything queued in one transaction, in arrival order, and
// says whether records someone waits for were queued meanwhile.
func (w *writer) flush(ctx context.Context) (more bool) {
	defer func() {
		w.mu.Lock()
		more = len(w.wait) > 0 && !w.closed
		w.mu.Unlock()
	}()
	w.mu.Lock()
	batch := make([]queued, 0, len(w.busy)+len(w.wait))
	for _, q := range w.busy {
		batch = append(batch, q)
	}
	batch = append(batch, w.wait...)
	if len(w.busy) > 0 {
		w.busy = make(map[instanceRef]queued, len(w.busy))
	}
	w.wait = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	slices.SortFunc(batch, func(a, b queued) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	// A large batch is written in chunks, the writer yielding its core to
	// the handlers between them: on SQLite the writer's statements run on
	// this goroutine, and a flush of a fleet's routine check-ins written at
	// once would take one of the machine's cores from the handlers for
	// milliseconds every FlushInterval (which set the check-ins' p99,
	// bench/README.md). Chunks are written in order, so the arrival order
	// holds.
	for len(batch) > 0 {
		n := len(batch)
		if w.deps.chunk > 0 {
			n = min(n, w.deps.chunk)
		}
		w.write(ctx, batch[:n])
		batch = batch[n:]
		if len(batch) > 0 {
			runtime.Gosched()
		}
	}
	return more // set by the deferred check
}

// write writes batch in one transaction and reports each record's outcome.
func (w *writer) write(ctx context.Context, batch []queued) {
	recs := make([]sqlstore.CheckInRecord, len(batch))
	for i, q := range batch {
		recs[i] = q.rec
	}
	d := w.deps
	created, err := d.store.WriteCheckIns(ctx, recs)
	if err == nil {
		d.quotas.committed(batch, created, time.Now())
	}
	d.batch.Observe(float64(len(recs)))
	if err == nil || len(batch) == 1 || ctx.Err() != nil {
		if err != nil {
			d.log.Error("write check-in batch", slog.Int("records", len(recs)), slog.Any("err", err))
		}
		for _, q := range batch {
			w.finish(q, err)
		}
		return
	}
	// One bad record must not cost the others theirs (one customer's input
	// must not block everyone's check-ins): write them one by one, so only
	// the record that fails fails.
	d.log.Warn("check-in batch failed; writing its records one by one", slog.Int("records", len(recs)), slog.Any("err", err))
	for _, q := range batch {
		created, err := d.store.WriteCheckIns(ctx, []sqlstore.CheckInRecord{q.rec})
		if err == nil {
			d.quotas.committed([]queued{q}, created, time.Now())
		}
		w.finish(q, err)
	}
}

// finish reports the outcome of q's write to whoever waits for it, or logs
// the loss of a routine record.
func (w *writer) finish(q queued, err error) {
	if err != nil {
		w.deps.failed.Inc()
		if q.done == nil {
			w.deps.log.Error("write routine check-in", slog.String("product", q.rec.Product), slog.String("customer", q.rec.Customer),
				slog.String("instance_id", q.rec.InstanceID), slog.Any("err", err))
		}
	}
	if q.done != nil {
		q.done <- err
	}
}

// sqliteChunk is the most check-ins the writer commits in one SQLite
// transaction: about 2 ms of the writer's CPU (BenchmarkRecordCheckIns:
// 14.5 ms per 1,000 routine check-ins).
const sqliteChunk = 128
