// Package agent is the installation side of ringfence: a thin loop over
// client (check-ins and answer verification) and pgcheck (the database
// watch) that checks in, verifies what it is told, watches its databases for
// collation drift, gates upgrades (Preflight) and reports what happened.
//
// Invariants:
//   - An answer is acted on only when client.VerifyAnswer accepts it with a
//     trusted key, this request's nonce and this installation's id, before
//     it expires. Anything else — unreachable, unverified, expired — means
//     "no upgrade": Preflight never says go on doubt.
//   - Pinned keys come only from a local trust file (authoritative: its
//     keys are the pinned keys) or one explicit trust-on-first-use. The
//     trusted keys are the pinned ones plus those learnt during a key
//     rotation, each from a verified payload that a trusted key signed and
//     that names it (sign.Introductions), and each trusted only while the
//     key that vouched for it is. Nothing is learnt from /v1/keys.
//   - An event is written to the outbox (fsynced file and directory) before
//     anything relies on it, and removed only after an answer to a check-in
//     that carried it verified: a crash or kill -9 loses nothing.
//   - Every state file is replaced atomically (temporary file, fsync,
//     rename, directory fsync); the directory is 0700, its files 0600.
//   - A database that cannot be reached or checked is unknown, never ok.
//   - One check-in at a time per state directory, across processes (flock).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Agent checks in for one installation.
type Agent struct {
	cfg    Config
	state  *StateDir
	client *client.Client
	log    *slog.Logger

	// bundleDir, when set (UseBundles), makes Preflight decide offline.
	bundleDir string
}

// New validates cfg and opens the state directory.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	sd, err := OpenStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	for _, d := range cfg.DSNs {
		if _, _, err := dbLabel(d); err != nil {
			return nil, err
		}
	}
	opts := []client.Option{client.WithClock(cfg.Now)}
	if cfg.HTTPClient != nil {
		opts = append(opts, client.WithHTTPClient(cfg.HTTPClient))
	}
	c, err := client.New(cfg.Server, cfg.Key, opts...)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, state: sd, client: c, log: cfg.Logger}, nil
}

// State returns the agent's state directory.
func (a *Agent) State() *StateDir { return a.state }

// Result is what one check-in brought.
type Result struct {
	Answer    release.Answer
	Version   release.Version
	Health    *release.Health
	Databases []*DatabaseHealth
	// Delivered counts the events the answer acknowledged; More is true
	// when more were waiting than one check-in carries.
	Delivered int
	More      bool
}

// CheckIn checks in now: reads the running version (queueing
// upgrade_succeeded when it changed since the last check-in), watches every
// database (queueing integrity_failed when one starts failing), sends the
// health and up to release.MaxCheckInEvents queued events, verifies the
// answer, and only then removes the delivered events and keeps the answer.
// The error, if any, wraps client.ErrUnverified or is the transport's or
// server's (*client.Error); the database watch is in Result even then.
func (a *Agent) CheckIn(ctx context.Context) (Result, error) {
	unlock, err := a.state.Lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	st, err := a.state.Load()
	if err != nil {
		return Result{}, err
	}
	res, err := a.checkIn(ctx, st)
	now := a.cfg.Now().UTC()
	st.LastAttempt = now
	if err != nil {
		st.LastError, st.Failures = err.Error(), st.Failures+1
	} else {
		st.LastError, st.Failures = "", 0
	}
	if serr := a.state.Save(st); serr != nil {
		return res, errors.Join(err, serr)
	}
	a.cfg.Metrics.observe(st, res, err, now)
	if a.cfg.Metrics != nil {
		if q, qerr := a.state.Outbox(); qerr == nil {
			a.cfg.Metrics.SetUndelivered(len(q))
		}
	}
	return res, err
}

// observeLocal is what every check-in, online or offline, does first: it
// gives the installation its id, pins trust, reads the running version
// (queueing upgrade_succeeded when it changed) and watches the databases.
func (a *Agent) observeLocal(ctx context.Context, st *State) (Result, error) {
	var res Result
	if st.InstanceID == "" {
		st.InstanceID = newInstanceID()
		a.log.Info("new installation id", "instance_id", st.InstanceID)
		if err := a.state.Save(st); err != nil {
			return res, err
		}
	}
	if err := a.ensureTrust(ctx, st); err != nil {
		return res, &ConfigError{err}
	}
	v, err := a.cfg.readVersion(ctx)
	if err != nil {
		return res, &ConfigError{err}
	}
	res.Version = v
	if err := a.noticeUpgrade(st, v); err != nil {
		return res, err
	}
	if err := a.watch(ctx, st, v, &res); err != nil {
		return res, err
	}
	return res, nil
}

func (a *Agent) checkIn(ctx context.Context, st *State) (Result, error) {
	res, err := a.observeLocal(ctx, st)
	if err != nil {
		return res, err
	}
	v := res.Version
	// Saved before the network: the version and the database results stay
	// accounted for (and their events queued) whatever happens next.
	if err := a.state.Save(st); err != nil {
		return res, err
	}

	if err := a.setAsideUndecodable(); err != nil {
		return res, err
	}
	var (
		queued []QueuedEvent
		more   bool
		ans    release.Answer
		env    sign.Envelope
		nonce  string
	)
	// A check-in the server refuses for one of its events sets that event
	// aside and goes again without it (a few times at most), so that one
	// event never blocks every later check-in.
	for attempt := 0; ; attempt++ {
		all, err := a.state.Outbox()
		if err != nil {
			return res, err
		}
		if nonce, err = client.NewNonce(); err != nil {
			return res, err
		}
		req := release.CheckIn{InstanceID: st.InstanceID, Product: a.cfg.Product, Version: v, Nonce: nonce}
		if res.Health != nil {
			h := *res.Health
			h.Detail = release.CleanText(h.Detail)
			req.Health = &h
		}
		if queued, req.Events, err = checkInEvents(req, all); err != nil {
			return res, err
		}
		more = len(queued) < len(all)
		trusted := st.trusted()
		ans, env, err = a.client.CheckIn(ctx, req, trusted)
		if err == nil {
			a.learn(st, env, trusted)
			trusted = st.trusted()
		}
		st.UnpinnedSigners = unpinnedSigners(env, trusted)
		if err == nil {
			break
		}
		if i, ok := refusedEvent(err, len(queued)); ok && attempt < 3 {
			// What happened here stays a fact whatever the server says: an
			// upgrade that failed stays refused (failed_here). (A refused
			// success is not applied: earlier events are not delivered yet.)
			if queued[i].Event.Kind == release.EventUpgradeFailed {
				rememberOutcome(st, queued[i].Event)
			}
			if serr := a.state.Save(st); serr != nil {
				return res, errors.Join(err, serr)
			}
			if rerr := a.state.Reject(queued[i].Name, err.Error()); rerr != nil {
				return res, errors.Join(err, rerr)
			}
			a.log.Error("EVENT REFUSED by the server: set aside in outbox/rejected; check-in again without it",
				"event", queued[i].Name, "kind", string(queued[i].Event.Kind), "err", err)
			continue
		}
		if errors.Is(err, client.ErrUnverified) && len(st.UnpinnedSigners) > 0 {
			err = fmt.Errorf("%w (signed by key %v, which is not pinned: put the vendor's current keys in the trust file)", err, st.UnpinnedSigners)
		}
		a.log.Warn("check-in failed; no upgrade", "err", err, "undelivered_events", len(all))
		return res, err
	}
	names := make([]string, len(queued))
	for i, q := range queued {
		names[i] = q.Name
		rememberOutcome(st, q.Event)
	}
	// The outcomes are saved before their events are removed: a crash in
	// between must not lose a failed upgrade (failed_here).
	if err := a.state.Save(st); err != nil {
		return res, err
	}
	if err := a.state.Delivered(names); err != nil {
		return res, err
	}
	res.Answer, res.Delivered, res.More = ans, len(queued), more
	st.Last = &KeptAnswer{Envelope: env, Nonce: nonce, InstanceID: st.InstanceID, ReceivedAt: a.cfg.Now().UTC()}
	a.logAnswer(ans, len(queued), st.UnpinnedSigners)
	return res, nil
}

// setAsideUndecodable moves the outbox files that do not decode as an
// event to outbox/rejected (logged; status lists them): one such file must
// not stop every later check-in.
func (a *Agent) setAsideUndecodable() error {
	_, bad, err := a.state.readOutbox()
	if err != nil {
		return err
	}
	for name, derr := range bad {
		if err := a.state.Reject(name, "not an event: "+derr.Error()); err != nil {
			return err
		}
		a.log.Error("EVENT SET ASIDE: an outbox file that is no event was moved to outbox/rejected", "file", name, "err", derr)
	}
	return nil
}

// checkInEvents picks the oldest queued events that fit one check-in: at
// most release.MaxCheckInEvents, and, with the rest of req, well within
// the server's body limit (release.DefaultMaxCheckInBytes). Their details
// are cleaned (release.CleanText), for files queued before they were.
func checkInEvents(req release.CheckIn, queued []QueuedEvent) ([]QueuedEvent, []release.Event, error) {
	base, err := json.Marshal(req)
	if err != nil {
		return nil, nil, fmt.Errorf("encode check-in: %w", err)
	}
	room := release.DefaultMaxCheckInBytes - len(base) - 4<<10
	var evs []release.Event
	for _, q := range queued {
		if len(evs) == release.MaxCheckInEvents {
			break
		}
		e := q.Event
		e.Detail = release.CleanText(e.Detail)
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, fmt.Errorf("encode outbox event %s: %w", q.Name, err)
		}
		if len(b)+1 > room && len(evs) > 0 {
			break
		}
		room -= len(b) + 1
		evs = append(evs, e)
	}
	return queued[:len(evs)], evs, nil
}

// refusedEvent returns the index of the event a check-in was refused for,
// by the server (400 naming "events[i]" or "event i") or by the client's
// own check of the request, when it names one of n.
func refusedEvent(err error, n int) (int, bool) {
	var ce *client.Error
	var msg string
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusBadRequest:
		msg = ce.Detail
	case !errors.As(err, &ce) && release.ErrorCode(err) == release.EINVALID:
		msg = release.ErrorMessage(err)
	default:
		return 0, false
	}
	m := refusedEventRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	i, convErr := strconv.Atoi(m[1])
	if convErr != nil || i >= n {
		return 0, false
	}
	return i, true
}

// refusedEventRE matches the server's names of a refused event, at the
// start of its message or after a prefix ("check-in: "): the path of a
// field ("events[3].detail: ...") or the event's number ("event 3: ...").
var refusedEventRE = regexp.MustCompile(`(?:^|: )events?(?:\[| )(\d+)`)

// rememberOutcome keeps the upgrades that failed here until one to the same
// version succeeds.
func rememberOutcome(st *State, e release.Event) {
	switch e.Kind {
	case release.EventUpgradeFailed:
		if st.FailedUpgrades == nil {
			st.FailedUpgrades = map[string]release.Event{}
		}
		st.FailedUpgrades[e.To.String()] = e
	case release.EventUpgradeSucceeded:
		delete(st.FailedUpgrades, e.To.String())
	}
}

// noticeUpgrade queues upgrade_succeeded when the running version is
// higher than the one seen at the previous check-in (unless a report
// already queued it), and upgrade_failed when it is lower: going back is a
// rollback, so the upgrade to the version left failed here (auto-halt
// counts it, and preflight refuses that version from then on). It
// remembers the version.
func (a *Agent) noticeUpgrade(st *State, v release.Version) error {
	if st.Version.IsZero() || st.Version == v {
		st.Version = v
		return nil
	}
	// Running it now: whatever failed before, the upgrade to it worked.
	delete(st.FailedUpgrades, v.String())
	queued, err := a.state.Outbox()
	if err != nil {
		return err
	}
	e := release.Event{Kind: release.EventUpgradeSucceeded, From: st.Version, To: v, At: a.cfg.Now().UTC(),
		Detail: "running version changed between check-ins (seen by the agent)"}
	if v.Less(st.Version) {
		e = release.Event{Kind: release.EventUpgradeFailed, From: v, To: st.Version, At: a.cfg.Now().UTC(),
			Detail: fmt.Sprintf("rolled back from %s to %s (seen by the agent)", st.Version, v)}
	}
	if !slices.ContainsFunc(queued, func(q QueuedEvent) bool { return q.Event.Kind == e.Kind && q.Event.To == e.To }) {
		if _, err := a.state.Enqueue(e); err != nil {
			return err
		}
		if e.Kind == release.EventUpgradeFailed {
			a.log.Warn("ROLLBACK: the running version went back; reporting the upgrade to the version left as failed",
				"from", st.Version.String(), "to", v.String())
		} else {
			a.log.Info("running version changed: reporting upgrade_succeeded", "from", st.Version.String(), "to", v.String())
		}
	}
	st.Version = v
	return nil
}

// watch checks every database and queues integrity_failed for each that
// starts failing.
func (a *Agent) watch(ctx context.Context, st *State, v release.Version, res *Result) error {
	if len(a.cfg.DSNs) == 0 {
		st.Databases = nil
		return nil
	}
	seen := map[string]*DatabaseHealth{}
	for _, dsn := range a.cfg.DSNs {
		name, _, _ := dbLabel(dsn)
		h := a.watchDatabase(ctx, dsn, st.Databases[name])
		if h.Status.Failing() && h.Reported != h.Status {
			e := release.Event{Kind: release.EventIntegrityFailed, To: v, At: h.CheckedAt,
				Detail: clip(h.Name+": "+string(h.Status)+": "+h.Detail, 4096)}
			if _, err := a.state.Enqueue(e); err != nil {
				return err
			}
			h.Reported = h.Status
			a.log.Error("DATABASE INTEGRITY: "+string(h.Status), "database", h.Name, "detail", h.Detail)
		} else if h.Status == release.HealthOK {
			// Only an intact database ends a failure: one that was
			// unreachable for a while and fails again is not reported anew.
			h.Reported = ""
		}
		if h.Status == release.HealthUnknown {
			a.log.Warn("database could not be checked: health unknown", "database", h.Name, "detail", h.Detail)
		}
		seen[h.Name] = h
		res.Databases = append(res.Databases, h)
	}
	st.Databases = seen
	res.Health = aggregate(res.Databases)
	return nil
}

// unpinnedSigners lists the key ids that signed env but are not pinned.
func unpinnedSigners(env sign.Envelope, pinned []sign.PublicKey) []string {
	var out []string
	for _, s := range env.Signatures {
		if !slices.ContainsFunc(pinned, func(k sign.PublicKey) bool { return k.ID == s.KeyID }) {
			out = append(out, s.KeyID)
		}
	}
	return out
}

// logAnswer logs a verified answer: notices and guidance prominently.
func (a *Agent) logAnswer(ans release.Answer, delivered int, unpinned []string) {
	attrs := []any{"version", ans.Current.Version.String(), "status", string(ans.Current.Status), "delivered_events", delivered}
	if ans.Offer != nil {
		attrs = append(attrs, "offer", ans.Offer.Version.String())
	}
	a.log.Info("checked in", attrs...)
	if ans.Current.Status != release.StatusOK {
		a.log.Warn("GUIDANCE: "+Guidance(ans), "status", string(ans.Current.Status), "action", string(ans.Current.Action),
			"incident_url", ans.Current.IncidentURL)
	}
	for _, n := range ans.Notices {
		a.log.Warn("NOTICE: "+n.Message, "kind", string(n.Kind), "url", n.URL)
	}
	if len(unpinned) > 0 {
		a.log.Warn("answers are co-signed by a key this agent has not pinned (a key rotation): add the vendor's new key to the trust file before the overlap ends, or answers will stop verifying",
			"keys", fmt.Sprint(unpinned))
	}
}

// Run checks in at once and then until ctx is done, waiting between
// check-ins a random time in [Interval/2, Interval], and after failures an
// exponentially growing, jittered backoff (at least Retry-After after a
// 429). It returns nil when ctx is done; failed check-ins are logged, not
// returned, except configuration errors at the first check-in.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "server", a.cfg.Server, "product", a.cfg.Product, "interval", a.cfg.Interval.String(),
		"databases", len(a.cfg.DSNs), "state", a.state.Path())
	for first := true; ; first = false {
		res, err := a.CheckIn(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ce *ConfigError
		if first && errors.As(err, &ce) {
			return err
		}
		st, lerr := a.state.Load()
		if lerr != nil {
			return lerr
		}
		wait := a.nextWait(err, st.Failures)
		if err == nil && res.More {
			wait = min(wait, time.Second) // more may be waiting: send them soon
		}
		if serr := a.setNextDue(ctx, a.cfg.Now().Add(wait)); serr != nil {
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

// ConfigError is a check-in that failed before reaching the server, for a
// reason of the installation's configuration: no pinned key, no readable
// version. Agent.Run stops on one at its first check-in.
type ConfigError struct{ Err error }

// Error implements error.
func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// nextWait is the time until the next check-in after err (nil: success)
// and failures failed check-ins in a row.
func (a *Agent) nextWait(err error, failures int) time.Duration {
	iv := a.cfg.Interval
	if err == nil {
		return iv/2 + rand.N(iv/2+1)
	}
	limit := max(iv, MaxBackoff)
	d := iv
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	wait := d/2 + rand.N(d/2+1)
	var ce *client.Error
	if errors.As(err, &ce) && (ce.Status == http.StatusTooManyRequests || ce.Status == http.StatusServiceUnavailable) && ce.RetryAfter > wait {
		wait = ce.RetryAfter + rand.N(ce.RetryAfter/10+1)
	}
	return wait
}

// setNextDue records when the running agent checks in next (for status).
func (a *Agent) setNextDue(ctx context.Context, at time.Time) error {
	unlock, err := a.state.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := a.state.Load()
	if err != nil {
		return err
	}
	st.NextDue = at.UTC()
	return a.state.Save(st)
}

// Report queues an outcome event in the state directory's outbox, durably;
// the next check-in (of agent run, or of the caller) delivers it.
func Report(sd *StateDir, e release.Event) (string, error) {
	return sd.Enqueue(e)
}
