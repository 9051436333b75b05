package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Air-gapped operation: the agent decides from signed bundles carried in
// (docs/air-gapped.md) instead of answers from the network.
//
// Invariants, beyond the package's:
//   - A bundle is accepted only when it verifies with a trusted key (the
//     trust file is read first), is for
//     the configured product and for the customer of the configured
//     enrollment key (its key checks), is not expired, and its sequence is
//     not lower than the highest accepted; an equal sequence must be the
//     same document. Replaying an old bundle cannot undo a pull.
//   - The clock floor is the latest signed issued_at accepted; a clock
//     behind it decides nothing (no upgrade), so setting the clock back
//     cannot revive an expired bundle.
//   - An expired bundle decides nothing: "no upgrade", never "keep
//     upgrading"; its guidance is still shown as the last word.
//   - Offline check-ins become numbered reports kept in the state until a
//     later bundle acknowledges them; only then are their events dropped.

// Refusal reasons and other air-gapped reason codes of a preflight.
const (
	// ReasonBundleRefused: the bundle given or found was refused.
	ReasonBundleRefused = "bundle_refused"
	// ReasonBundleMissing: no bundle has been accepted.
	ReasonBundleMissing = "bundle_missing"
	// ReasonBundleExpired: the accepted bundle expired.
	ReasonBundleExpired = "bundle_expired"
	// ReasonClockBehind: the clock is behind the latest signed time seen.
	ReasonClockBehind = "clock_behind"
)

// ExpiryWarning is how long before its expiry a bundle is reported as
// expiring soon (status, metric, log).
const ExpiryWarning = 7 * 24 * time.Hour

// exportKeyFile holds the installation's export signing key in the state
// directory.
const exportKeyFile = "export_key.json"

// OfflineState is what the agent keeps about air-gapped operation.
type OfflineState struct {
	// Customer is the customer of the accepted bundles.
	Customer string `json:"customer,omitempty"`
	// Sequence is the highest bundle sequence accepted.
	Sequence int64 `json:"sequence,omitempty"`
	// ClockFloor is the latest signed issued_at accepted; a clock behind
	// it by more than sign.MaxClockSkew decides nothing.
	ClockFloor time.Time `json:"clock_floor,omitzero"`
	// Bundle is the accepted bundle exactly as carried in; it is verified
	// again whenever it is used.
	Bundle     *sign.Envelope `json:"bundle,omitempty"`
	BundleFile string         `json:"bundle_file,omitempty"`
	AcceptedAt time.Time      `json:"accepted_at,omitzero"`
	// Reports are offline check-ins no bundle has acknowledged yet.
	Reports []OfflineReport `json:"reports,omitempty"`
	// LastReport is the sequence of the latest report made.
	LastReport int64 `json:"last_report,omitempty"`
	// LastVersion and LastHealth are those of the latest report, so a
	// routine offline check-in that changes nothing adds no report.
	LastVersion release.Version      `json:"last_version,omitzero"`
	LastHealth  release.HealthStatus `json:"last_health,omitempty"`
}

// OfflineReport is one offline check-in waiting for acknowledgement, with
// the outbox files of its events.
type OfflineReport struct {
	release.Report
	Outbox []string `json:"outbox,omitempty"`
}

// BundleError is a bundle the agent refused, and why.
type BundleError struct {
	Code string
	Err  error
}

// Error implements error.
func (e *BundleError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *BundleError) Unwrap() error { return e.Err }

func refuse(code, format string, args ...any) *BundleError {
	return &BundleError{Code: code, Err: fmt.Errorf(format, args...)}
}

// maxBundleFile bounds a bundle file the agent reads (a bundle of a
// thousand releases is well under 1 MiB).
const maxBundleFile = 16 << 20

// ReadBundleFile reads a signed envelope from path (at most 16 MiB).
func ReadBundleFile(path string) (sign.Envelope, error) {
	var env sign.Envelope
	f, err := os.Open(path)
	if err != nil {
		return env, fmt.Errorf("read bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBundleFile+1))
	if err != nil {
		return env, fmt.Errorf("read bundle: %w", err)
	}
	if len(data) > maxBundleFile {
		return env, fmt.Errorf("bundle %s is larger than %d bytes: not a bundle", path, maxBundleFile)
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("bundle %s is not a signed envelope: %w", path, err)
	}
	return env, nil
}

// keyHash is the SHA-256 of the configured enrollment key: what the server
// stores, and the key of the HMACs that tie bundles and exports to it.
func (a *Agent) keyHash() [32]byte { return sha256.Sum256([]byte(a.cfg.Key)) }

// acceptBundle checks env against the state at now and, when it passes,
// makes it the bundle the installation runs on, raises the clock floor and
// drops the reports it acknowledges. A refusal leaves st as it was.
func (a *Agent) acceptBundle(st *State, env sign.Envelope, file string, now time.Time) (release.Bundle, error) {
	off := st.offline()
	if len(st.Pinned) == 0 {
		return release.Bundle{}, refuse(ReasonConfiguration, "no answer-signing key is pinned: give --trust FILE with the vendor's keys")
	}
	if behind(now, off.ClockFloor) {
		return release.Bundle{}, refuse(ReasonClockBehind, "the clock (%s) is behind the latest signed time this installation has seen (%s): fix the clock; no upgrade until then",
			now.UTC().Format(time.RFC3339), off.ClockFloor.Format(time.RFC3339))
	}
	trusted := st.trusted()
	payload, err := sign.Verify(env, trusted, now)
	if err != nil {
		if signers := unpinnedSigners(env, trusted); errors.Is(err, sign.ErrNoTrustedSignature) && len(signers) > 0 {
			err = fmt.Errorf("%w (signed by %v, which is not pinned)", err, signers)
		}
		return release.Bundle{}, refuse(ReasonBundleRefused, "bundle %s refused: %w", file, err)
	}
	b, err := release.DecodeBundle(payload)
	if err != nil {
		return release.Bundle{}, refuse(ReasonBundleRefused, "bundle %s refused: %s", file, release.ErrorMessage(err))
	}
	switch {
	case b.Product != a.cfg.Product:
		return b, refuse(ReasonBundleRefused, "bundle %s refused: it is for product %s, not %s", file, b.Product, a.cfg.Product)
	case !b.ForKey(a.keyHash()):
		return b, refuse(ReasonBundleRefused, "bundle %s refused: it is for customer %s, whose enrollment keys do not include this installation's", file, b.Customer)
	case off.Customer != "" && b.Customer != off.Customer:
		return b, refuse(ReasonBundleRefused, "bundle %s refused: it is for customer %s, this installation runs on bundles of %s", file, b.Customer, off.Customer)
	case b.Sequence < off.Sequence:
		return b, refuse(ReasonBundleRefused, "bundle %s refused: sequence %d is older than the accepted bundle %d (a replayed bundle cannot undo a newer one)", file, b.Sequence, off.Sequence)
	case b.Sequence == off.Sequence && off.Bundle != nil && !bytes.Equal(off.Bundle.Payload, env.Payload):
		return b, refuse(ReasonBundleRefused, "bundle %s refused: sequence %d was accepted with different content", file, b.Sequence)
	}
	if b.Sequence > off.Sequence || off.Bundle == nil {
		off.Bundle, off.BundleFile, off.AcceptedAt = &env, file, now.UTC()
		a.log.Info("accepted offline bundle", "sequence", b.Sequence, "customer", b.Customer, "expires_at", b.ExpiresAt.Format(time.RFC3339), "file", file)
	}
	off.Customer, off.Sequence = b.Customer, b.Sequence
	if b.IssuedAt.After(off.ClockFloor) {
		off.ClockFloor = b.IssuedAt.UTC()
	}
	if err := a.acknowledge(st, off, b.Acked(st.InstanceID)); err != nil {
		return b, err
	}
	st.Offline = off
	a.learn(st, env, trusted)
	return b, nil
}

// acknowledge drops the reports up to through and their events, and
// remembers their outcomes as a delivered check-in does: an upgrade that
// failed here stays refused (failed_here) once the vendor has its report.
func (a *Agent) acknowledge(st *State, off *OfflineState, through int64) error {
	var keep []OfflineReport
	var done []string
	for _, r := range off.Reports {
		if r.Seq <= through {
			done = append(done, r.Outbox...)
		} else {
			keep = append(keep, r)
		}
	}
	if len(done) > 0 || len(keep) < len(off.Reports) {
		queued, err := a.state.Outbox()
		if err != nil {
			return err
		}
		for _, q := range queued {
			if slices.Contains(done, q.Name) {
				rememberOutcome(st, q.Event)
			}
		}
		// Saved before the events are removed (see Agent.checkIn).
		dropped := len(off.Reports) - len(keep)
		off.Reports = keep
		saved := *st
		saved.Offline = off
		if err := a.state.Save(&saved); err != nil {
			return err
		}
		if err := a.state.Delivered(done); err != nil {
			return err
		}
		a.log.Info("the bundle acknowledges exported reports", "through", through, "dropped_reports", dropped, "dropped_events", len(done))
	}
	off.Reports = keep
	return nil
}

// offline returns st's offline state, a copy to change (st keeps the old
// one until the caller stores it back).
func (st *State) offline() *OfflineState {
	if st.Offline == nil {
		return &OfflineState{}
	}
	c := *st.Offline
	c.Reports = append([]OfflineReport(nil), st.Offline.Reports...)
	return &c
}

// behind reports whether the clock reads now behind floor by more than the
// clock skew signatures allow.
func behind(now, floor time.Time) bool { return now.Before(floor.Add(-sign.MaxClockSkew)) }

// currentBundle returns the accepted bundle if it verifies and is valid at
// now (reason codes: ReasonBundleMissing, ReasonClockBehind,
// ReasonBundleExpired, ReasonBundleRefused).
func currentBundle(st *State, now time.Time) (release.Bundle, error) {
	off := st.Offline
	if off == nil || off.Bundle == nil {
		return release.Bundle{}, refuse(ReasonBundleMissing, "no offline bundle accepted yet: drop one from the vendor into the bundle directory (no upgrade until then)")
	}
	if behind(now, off.ClockFloor) {
		return release.Bundle{}, refuse(ReasonClockBehind, "the clock (%s) is behind the latest signed time seen (%s): no upgrade until it is fixed",
			now.UTC().Format(time.RFC3339), off.ClockFloor.Format(time.RFC3339))
	}
	payload, err := sign.Verify(*off.Bundle, st.trusted(), now)
	if errors.Is(err, sign.ErrExpired) {
		return release.Bundle{}, refuse(ReasonBundleExpired, "offline bundle %d %v: no upgrade until a newer bundle is carried in", off.Sequence, err)
	}
	if err != nil {
		return release.Bundle{}, refuse(ReasonBundleRefused, "the kept offline bundle does not verify: %w", err)
	}
	b, err := release.DecodeBundle(payload)
	if err != nil {
		return release.Bundle{}, refuse(ReasonBundleRefused, "the kept offline bundle: %s", release.ErrorMessage(err))
	}
	return b, nil
}

// observe is an offline check-in without the network: it reads the running
// version (queueing upgrade_succeeded when it changed), watches the
// databases, and records a report when there are events not yet in one or
// the version or health changed since the last report.
func (a *Agent) observe(ctx context.Context, st *State, now time.Time) (Result, error) {
	// Keys come from the trust file here: trust on first use would need
	// the network, and fails.
	res, err := a.observeLocal(ctx, st)
	if err != nil {
		return res, err
	}
	v := res.Version
	if err := a.setAsideUndecodable(); err != nil {
		return res, err
	}
	off := st.offline()
	reported := map[string]bool{}
	for _, r := range off.Reports {
		for _, n := range r.Outbox {
			reported[n] = true
		}
	}
	queued, err := a.state.Outbox()
	if err != nil {
		return res, err
	}
	rep := OfflineReport{Report: release.Report{At: now.UTC(), Version: v, Health: res.Health}}
	for _, q := range queued {
		if !reported[q.Name] && len(rep.Events) < release.MaxCheckInEvents {
			rep.Events = append(rep.Events, q.Event)
			rep.Outbox = append(rep.Outbox, q.Name)
		}
	}
	health := release.HealthUnknown
	if res.Health != nil {
		health = res.Health.Status
	}
	if len(rep.Events) > 0 || v != off.LastVersion || health != off.LastHealth || off.LastReport == 0 {
		off.LastReport++
		rep.Seq = off.LastReport
		off.Reports = append(off.Reports, rep)
		off.LastVersion, off.LastHealth = v, health
	}
	st.Offline = off
	return res, nil
}

// decideOffline answers the installation from the accepted bundle at now.
func (a *Agent) decideOffline(st *State, res Result, now time.Time) (release.Answer, error) {
	b, err := currentBundle(st, now)
	if err != nil {
		return release.Answer{}, err
	}
	inst := release.Installation{InstanceID: st.InstanceID, Product: a.cfg.Product, Version: res.Version}
	if res.Health != nil {
		inst.Health = *res.Health
	}
	// Within the clock skew sign.Verify allows, a bundle may be issued
	// slightly after now: decide as of its issue.
	at := now
	if at.Before(b.IssuedAt) {
		at = b.IssuedAt
	}
	ans, err := release.DecideBundle(b, inst, at)
	if err != nil {
		return release.Answer{}, refuse(ReasonBundleRefused, "decide from bundle %d: %s", b.Sequence, release.ErrorMessage(err))
	}
	return ans, nil
}

// PreflightBundle decides offline whether upgrading to `to` may go ahead:
// it accepts the bundle in file (if given), makes an offline check-in and
// decides from the accepted bundle exactly as Preflight decides from an
// answer, failed_here included. A refused, missing or expired bundle, or a
// clock behind the latest signed time, is undecided: never a go, except
// for the version already running (a restart; see Preflight).
func (a *Agent) PreflightBundle(ctx context.Context, file string, to release.Version) Decision {
	ctx, restart, cancel := a.restart(ctx, to)
	defer cancel()
	return a.conclude(a.preflightBundle(ctx, file, to), to, restart)
}

// preflightBundle is PreflightBundle's decision before conclude.
func (a *Agent) preflightBundle(ctx context.Context, file string, to release.Version) Decision {
	d := Decision{To: to, Notices: []release.Notice{}}
	unlock, err := a.state.Lock(ctx)
	if err != nil {
		d.Reasons = append(d.Reasons, Reason{Code: ReasonConfiguration, Undecided: true, Message: err.Error()})
		return finish(d)
	}
	defer unlock()
	st, err := a.state.Load()
	if err != nil {
		d.Reasons = append(d.Reasons, Reason{Code: ReasonConfiguration, Undecided: true, Message: err.Error()})
		return finish(d)
	}
	now := a.cfg.Now().UTC()
	if err := a.ensureExportKey(); err != nil {
		d.Reasons = append(d.Reasons, Reason{Code: ReasonConfiguration, Undecided: true, Message: err.Error()})
		return finish(d)
	}
	res, err := a.observe(ctx, st, now)
	if err == nil && ctx.Err() != nil {
		// The deadline cut the watch short (a deep check, say): what it
		// did not finish proves nothing, and online the check-in would
		// have failed here too.
		err = fmt.Errorf("no decision in time: %w", ctx.Err())
	}
	if err != nil {
		d.Current, d.Databases = res.Version, res.Databases
		d.Reasons = append(d.Reasons, bundleReason(err))
		d.Reasons = append(d.Reasons, databaseReasons(res.Databases)...)
		return finish(d)
	}
	var ans release.Answer
	if file != "" {
		var env sign.Envelope
		if env, err = ReadBundleFile(file); err == nil {
			_, err = a.acceptBundle(st, env, file, now)
		} else {
			err = &BundleError{Code: ReasonBundleRefused, Err: err}
		}
	}
	if err == nil {
		ans, err = a.decideOffline(st, res, now)
	}
	if serr := a.state.Save(st); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		d.Current, d.Databases = res.Version, res.Databases
		d.Reasons = append(d.Reasons, bundleReason(err))
		d.Reasons = append(d.Reasons, databaseReasons(res.Databases)...)
		return finish(d)
	}
	return Decide(ans, to, res.Databases)
}

// bundleReason is the undecided reason for an offline failure.
func bundleReason(err error) Reason {
	var be *BundleError
	if errors.As(err, &be) {
		return Reason{Code: be.Code, Undecided: true, Message: be.Error()}
	}
	return failureReason(err)
}

// OfflineCheckIn is the offline counterpart of CheckIn: it accepts the
// newest valid bundle in dir (refusals are logged and returned in
// Refused), makes an offline check-in and decides from the accepted bundle.
// The error says why there is no decision (no upgrade).
func (a *Agent) OfflineCheckIn(ctx context.Context, dir string) (OfflineResult, error) {
	var out OfflineResult
	unlock, err := a.state.Lock(ctx)
	if err != nil {
		return out, err
	}
	defer unlock()
	st, err := a.state.Load()
	if err != nil {
		return out, err
	}
	if err := a.ensureExportKey(); err != nil {
		return out, &ConfigError{err}
	}
	// The trust file first: a bundle is never accepted with keys it
	// revoked or no longer lists.
	if err := a.ensureTrust(ctx, st); err != nil {
		return out, &ConfigError{err}
	}
	now := a.cfg.Now().UTC()
	out.Refused = a.scanBundleDir(st, dir, now)
	out.Result, err = a.observe(ctx, st, now)
	if err == nil {
		out.Result.Answer, err = a.decideOffline(st, out.Result, now)
	}
	st.LastAttempt = now
	if err != nil {
		st.LastError = err.Error()
	} else {
		st.LastError = ""
	}
	if serr := a.state.Save(st); serr != nil {
		return out, errors.Join(err, serr)
	}
	if err == nil {
		a.logAnswer(out.Result.Answer, 0, nil)
	} else {
		a.log.Warn("offline check-in: no decision; no upgrade", "err", err)
	}
	if b, berr := currentBundle(st, now); berr == nil && b.ExpiresAt.Sub(now) < ExpiryWarning {
		a.log.Warn("OFFLINE BUNDLE EXPIRES SOON: carry in a new one", "sequence", b.Sequence, "expires_at", b.ExpiresAt.Format(time.RFC3339))
	}
	return out, err
}

// OfflineResult is what one offline check-in brought.
type OfflineResult struct {
	Result
	// Refused are the bundle files refused in this round, with why.
	Refused []string
}

// scanBundleDir offers every bundle file (*.json) in dir to acceptBundle,
// lowest sequence first, so the newest valid one ends up accepted.
func (a *Agent) scanBundleDir(st *State, dir string, now time.Time) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		a.log.Warn("read bundle directory", "dir", dir, "err", err)
		return []string{err.Error()}
	}
	type candidate struct {
		path string
		env  sign.Envelope
		seq  int64
	}
	var cands []candidate
	var refused []string
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		env, err := ReadBundleFile(path)
		if err != nil {
			refused = append(refused, err.Error())
			continue
		}
		// The sequence only orders the attempts; acceptBundle verifies.
		var head struct {
			Sequence int64 `json:"sequence"`
		}
		_ = json.Unmarshal(env.Payload, &head)
		cands = append(cands, candidate{path, env, head.Sequence})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].seq < cands[j].seq })
	cur := int64(0)
	if st.Offline != nil {
		cur = st.Offline.Sequence
	}
	for _, c := range cands {
		if c.seq < cur {
			continue // an older bundle left in the directory: not a replay attempt worth a warning each round
		}
		if _, err := a.acceptBundle(st, c.env, c.path, now); err != nil {
			refused = append(refused, err.Error())
			a.log.Warn("offline bundle refused", "file", c.path, "err", err)
		}
	}
	return refused
}

// UseBundles makes the agent air-gapped: Preflight (and so the preflight
// HTTP gate) decides from the accepted bundle instead of checking in, and
// RunOffline reads bundles from dir.
func (a *Agent) UseBundles(dir string) { a.bundleDir = dir }

// RunOffline is Run for an air-gapped installation: it makes an offline
// check-in from the bundles in dir at once and then every Interval (with
// the same jitter) until ctx is done, updating m. Configuration errors at
// the first round stop it.
func (a *Agent) RunOffline(ctx context.Context, dir string, m *BundleMetrics) error {
	a.log.Info("agent starting offline", "bundle_dir", dir, "product", a.cfg.Product, "interval", a.cfg.Interval.String(), "state", a.state.Path())
	for first := true; ; first = false {
		out, err := a.OfflineCheckIn(ctx, dir)
		if ctx.Err() != nil {
			return nil
		}
		var ce *ConfigError
		if first && errors.As(err, &ce) {
			return err
		}
		now := a.cfg.Now()
		if st, lerr := a.state.Load(); lerr == nil {
			// The same metrics as online: the release's standing from the
			// bundle, the databases' health, the check-ins.
			a.cfg.Metrics.observe(st, out.Result, err, now)
		}
		if st, lerr := ReadStatus(a.state, now); lerr == nil {
			m.observe(st.Bundle, len(st.Undelivered))
		}
		wait := a.nextWait(nil, 0)
		if serr := a.setNextDue(ctx, now.Add(wait)); serr != nil {
			a.log.Warn("save next check-in time", "err", serr)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// BundleStatus is what `agent status` shows of air-gapped operation.
type BundleStatus struct {
	Customer string `json:"customer"`
	Sequence int64  `json:"sequence"`
	File     string `json:"file,omitempty"`
	// Verified is true when the kept bundle verifies with the pinned keys
	// (as of its issue time once expired).
	Verified   bool      `json:"verified"`
	Error      string    `json:"error,omitempty"`
	IssuedAt   time.Time `json:"issued_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// Expired: the bundle permits no upgrade any more. ExpiresSoon: it
	// expires within ExpiryWarning.
	Expired     bool      `json:"expired"`
	ExpiresSoon bool      `json:"expires_soon"`
	ClockFloor  time.Time `json:"clock_floor,omitzero"`
	// ClockBehind: the clock is behind ClockFloor (no decision).
	ClockBehind bool `json:"clock_behind,omitempty"`
	// Answer is what the bundle says about the last seen version now.
	Answer *release.Answer `json:"answer,omitempty"`
	// UnacknowledgedReports are offline check-ins waiting for export and
	// acknowledgement; LastReport the latest one's sequence.
	UnacknowledgedReports int   `json:"unacknowledged_reports"`
	LastReport            int64 `json:"last_report"`
}

// bundleStatus describes st's air-gapped state at now; nil when the
// installation has never run offline.
func bundleStatus(st *State, now time.Time) *BundleStatus {
	off := st.Offline
	if off == nil {
		return nil
	}
	bs := &BundleStatus{Customer: off.Customer, Sequence: off.Sequence, File: off.BundleFile, AcceptedAt: off.AcceptedAt,
		ClockFloor: off.ClockFloor, ClockBehind: behind(now, off.ClockFloor), UnacknowledgedReports: len(off.Reports), LastReport: off.LastReport}
	if off.Bundle == nil {
		bs.Error = "no bundle accepted yet"
		return bs
	}
	var head struct {
		IssuedAt  time.Time `json:"issued_at"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	_ = json.Unmarshal(off.Bundle.Payload, &head)
	at := now
	if !now.Before(head.ExpiresAt) || now.Before(head.IssuedAt) {
		bs.Expired, at = !now.Before(head.ExpiresAt), head.IssuedAt
	}
	payload, err := sign.Verify(*off.Bundle, st.trusted(), at)
	if err != nil {
		bs.Error = err.Error()
		return bs
	}
	b, err := release.DecodeBundle(payload)
	if err != nil {
		bs.Error = release.ErrorMessage(err)
		return bs
	}
	bs.Verified, bs.IssuedAt, bs.ExpiresAt = true, b.IssuedAt, b.ExpiresAt
	bs.ExpiresSoon = !bs.Expired && b.ExpiresAt.Sub(now) < ExpiryWarning
	if !st.Version.IsZero() {
		if ans, err := release.DecideBundle(b, release.Installation{InstanceID: st.InstanceID, Product: b.Product, Version: st.Version}, at); err == nil {
			bs.Answer = &ans
		}
	}
	return bs
}
