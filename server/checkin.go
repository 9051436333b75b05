package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// limiters holds one token bucket per enrollment key.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// allow takes a token from key's bucket, or says how many seconds to wait.
func (l *limiters) allow(key string, r rate.Limit, burst int, now time.Time) (bool, int) {
	l.mu.Lock()
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(r, burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, 1
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records code and passes it on.
func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// checkIn is POST /v1/checkin.
func (s *Server) checkIn(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.answerCheckIn(rec, r, start)
	s.metrics.checkIns.WithLabelValues(strconv.Itoa(rec.status)).Inc()
	s.metrics.latency.Observe(time.Since(start).Seconds())
}

func (s *Server) answerCheckIn(w http.ResponseWriter, r *http.Request, now time.Time) {
	st := s.state.Load()
	secret, ok := bearer(r)
	if !ok {
		writeProblem(w, release.EUNAUTHORIZED, "check-ins need Authorization: Bearer <enrollment key>")
		return
	}
	key, ok := st.keys[sha256.Sum256([]byte(secret))]
	if !ok {
		writeProblem(w, release.EUNAUTHORIZED, "unknown or revoked enrollment key")
		return
	}
	if ok, wait := s.limits.allow(key.ID, s.cfg.CheckInRate, s.cfg.CheckInBurst, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeProblem(w, problem.RateLimited, "check-in rate limit of this enrollment key exceeded")
		return
	}
	if err := jsonContentType(r); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, release.DefaultMaxCheckInBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeProblem(w, problem.TooLarge, fmt.Sprintf("check-in larger than %d bytes", release.DefaultMaxCheckInBytes))
		return
	}
	if err != nil {
		writeProblem(w, release.EINVALID, "read check-in: "+err.Error())
		return
	}
	c, err := release.DecodeCheckIn(bytes.NewReader(body), release.DefaultMaxCheckInBytes)
	if err != nil {
		writeProblem(w, release.ErrorCode(err), release.ErrorMessage(err))
		return
	}
	if c.Product != key.Product {
		writeProblem(w, release.EFORBIDDEN, "this enrollment key is for product "+key.Product+", not "+c.Product)
		return
	}
	stores := len(c.Events) > 0 || (c.Health != nil && c.Health.Status.Failing())
	ref := sqlstore.InstallationRef{Product: c.Product, Customer: key.Customer, InstanceID: c.InstanceID}
	if quota, wait, err := s.quotaExceeded(r.Context(), key.ID, ref, len(c.Events), stores, now); err != nil {
		s.fail(w, r, err)
		return
	} else if quota != "" {
		s.metrics.quotaRejections.WithLabelValues(quota).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeProblem(w, problem.RateLimited, "quota "+quota+" of this enrollment key's customer exhausted (limits: "+s.quotaLimits()+")")
		return
	}
	inst := release.Installation{InstanceID: c.InstanceID, Product: c.Product, Customer: key.Customer, Version: c.Version}
	if c.Health != nil {
		inst.Health = *c.Health
	}
	ans, err := release.Decide(st.snap, inst, c.Nonce, now.UTC())
	if err != nil {
		s.fail(w, r, err)
		return
	}

	// Sign first: the answer does not depend on the commit below, and the
	// signature's CPU time then overlaps the wait for it.
	env, err := st.ring.SignJSON(ans)
	if err != nil {
		s.fail(w, r, err)
		return
	}

	record := sqlstore.CheckInRecord{Product: c.Product, Customer: key.Customer, InstanceID: c.InstanceID,
		Version: c.Version, Health: c.Health, Events: c.Events, ReceivedAt: now.UTC()}
	failing := failedVersions(c)
	if stores {
		// Reported events must survive a crash once the agent saw its answer:
		// it will not send them again.
		if err := s.writerFor(record).commit(r.Context(), record, key.ID); err != nil {
			s.log.ErrorContext(r.Context(), "record check-in events", slog.String("instance_id", c.InstanceID), slog.Any("err", err))
			writeProblem(w, problem.Unavailable, "could not record the reported events; retry later")
			return
		}
		for _, v := range failing {
			s.halts.add(c.Product, v)
		}
	} else {
		s.writerFor(record).enqueue(record, key.ID)
	}

	offer := "no"
	if ans.Offer != nil {
		offer = "yes"
	}
	s.metrics.decisions.WithLabelValues(string(ans.Current.Status), string(ans.Current.Action), offer).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(env)
}

// quotaLimits describes the quotas for a problem's detail.
func (s *Server) quotaLimits() string {
	q := s.quotas
	return fmt.Sprintf("%d new installations per key per hour, %d events per installation per day, %d stored bytes per customer; 0 is no limit",
		q.newPerHour, q.eventsPerDay, q.storedBytes)
}

// failedVersions lists the versions a check-in reports failures of, which
// auto-halt must look at.
func failedVersions(c release.CheckIn) []release.Version {
	var out []release.Version
	add := func(v release.Version) {
		for _, o := range out {
			if o == v {
				return
			}
		}
		out = append(out, v)
	}
	for _, e := range c.Events {
		if e.Kind == release.EventUpgradeFailed || e.Kind == release.EventIntegrityFailed {
			add(e.To)
		}
	}
	if c.Health != nil && c.Health.Status.Failing() {
		add(c.Version)
	}
	return out
}

// writerFor returns the writer shard of rec's installation.
func (s *Server) writerFor(rec sqlstore.CheckInRecord) *writer {
	if len(s.writers) == 1 {
		return s.writers[0]
	}
	h := fnv.New32a()
	h.Write([]byte(rec.Product))
	h.Write([]byte{0})
	h.Write([]byte(rec.Customer))
	h.Write([]byte{0})
	h.Write([]byte(rec.InstanceID))
	return s.writers[h.Sum32()%uint32(len(s.writers))]
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// writer batches check-in records into store transactions. Records that
// must be durable before their answer wait for the commit of their batch;
// routine ones are coalesced per installation and flushed periodically.
type writer struct {
	s    *Server
	mu   sync.Mutex
	seq  uint64
	busy map[[3]string]queued // routine records by product, customer and instance
	wait []queued             // records someone waits for
	// closed is set before the final flush; commits after it are refused.
	closed bool
	kick   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type queued struct {
	seq   uint64
	rec   sqlstore.CheckInRecord
	keyID string     // the enrollment key that sent it, for quotas
	done  chan error // nil for routine records
}

func newWriter(s *Server) *writer {
	return &writer{s: s, busy: map[[3]string]queued{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue queues a routine record, replacing an older one of the same
// installation.
func (w *writer) enqueue(rec sqlstore.CheckInRecord, keyID string) {
	k := [3]string{rec.Product, rec.Customer, rec.InstanceID}
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

// constError is an error that can be a constant.
type constError string

// Error implements error.
func (e constError) Error() string { return string(e) }

// errWriterClosed refuses commits during shutdown.
const errWriterClosed constError = "server is shutting down"

// close makes run flush what is queued and return.
func (w *writer) close() { w.once.Do(func() { close(w.done) }) }

// run writes batches until closed, then flushes the rest.
func (w *writer) run(ctx context.Context) {
	t := time.NewTicker(w.s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.kick:
			// Gather what arrives within the commit window into this batch.
			time.Sleep(w.s.cfg.CommitWindow)
		case <-t.C:
		case <-w.done:
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.flush(ctx)
			return
		}
		w.flush(ctx)
	}
}

// flush writes everything queued in one transaction, in arrival order.
func (w *writer) flush(ctx context.Context) {
	w.mu.Lock()
	batch := make([]queued, 0, len(w.busy)+len(w.wait))
	for _, q := range w.busy {
		batch = append(batch, q)
	}
	batch = append(batch, w.wait...)
	w.busy, w.wait = map[[3]string]queued{}, nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
	recs := make([]sqlstore.CheckInRecord, len(batch))
	for i, q := range batch {
		recs[i] = q.rec
	}
	created, err := w.s.store.WriteCheckIns(ctx, recs)
	if err == nil {
		w.s.quotas.committed(batch, created, time.Now())
	}
	w.s.metrics.batch.Observe(float64(len(recs)))
	if err == nil || len(batch) == 1 || ctx.Err() != nil {
		if err != nil {
			w.s.log.Error("write check-in batch", slog.Int("records", len(recs)), slog.Any("err", err))
		}
		for _, q := range batch {
			q.finish(w.s, err)
		}
		return
	}
	// One bad record must not cost the others theirs (one customer's input
	// must not block everyone's check-ins): write them one by one, so only
	// the record that fails fails.
	w.s.log.Warn("check-in batch failed; writing its records one by one", slog.Int("records", len(recs)), slog.Any("err", err))
	for _, q := range batch {
		created, err := w.s.store.WriteCheckIns(ctx, []sqlstore.CheckInRecord{q.rec})
		if err == nil {
			w.s.quotas.committed([]queued{q}, created, time.Now())
		}
		q.finish(w.s, err)
	}
}

// finish reports the outcome of q's write to whoever waits for it, or logs
// the loss of a routine record.
func (q queued) finish(s *Server, err error) {
	if err != nil {
		s.metrics.failedRecords.Inc()
		if q.done == nil {
			s.log.Error("write routine check-in", slog.String("product", q.rec.Product), slog.String("customer", q.rec.Customer),
				slog.String("instance_id", q.rec.InstanceID), slog.Any("err", err))
		}
	}
	if q.done != nil {
		q.done <- err
	}
}
