package server

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
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
	s.metrics.checkIn(rec.status)
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
	c, err := release.ParseCheckIn(body)
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

	ans.SigningKeys = st.signers
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
		if err := s.writers.of(record).commit(r.Context(), record, key.ID); err != nil {
			s.log.ErrorContext(r.Context(), "record check-in events", slog.String("instance_id", c.InstanceID), slog.Any("err", err))
			writeProblem(w, problem.Unavailable, "could not record the reported events; retry later")
			return
		}
		for _, v := range failing {
			s.halts.add(c.Product, v)
		}
	} else {
		s.writers.of(record).enqueue(record, key.ID)
	}

	s.metrics.decision(string(ans.Current.Status), string(ans.Current.Action), ans.Offer != nil)
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
