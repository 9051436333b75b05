package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Preflight outcomes and their exit codes.
const (
	// Go: the upgrade may proceed (exit 0).
	Go = "go"
	// NoGo: the upgrade must not proceed, for the reasons given (exit 1).
	NoGo = "no-go"
	// Undecided: the agent could not decide (exit 2); never a go.
	Undecided = "undecided"
)

// Reason codes of a preflight decision.
const (
	ReasonNotOffered       = "not_offered"
	ReasonPaused           = "paused"
	ReasonPulled           = "pulled"
	ReasonRequiredStop     = "required_stop"
	ReasonDatabaseCorrupt  = "database_corrupt"
	ReasonCollationChanged = "collation_changed"
	ReasonFailedHere       = "failed_here"
	// ReasonPostgresTooOld: a watched database runs an older PostgreSQL
	// than the offered release requires.
	ReasonPostgresTooOld = "postgres_too_old"
	// Undecided reasons.
	ReasonDatabaseUnknown = "database_unknown"
	ReasonUnreachable     = "server_unreachable"
	ReasonUnverified      = "answer_unverified"
	ReasonConfiguration   = "configuration"
	// ReasonTimeout: no decision within the caller's deadline (another
	// agent process held the state, say, through a long deep check).
	ReasonTimeout = "timeout"
)

// Reason is one reason of a no-go or undecided decision.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	URL     string `json:"url,omitempty"`
	// Undecided is true for reasons that leave the decision open (the
	// facts could not be established) rather than say no.
	Undecided bool `json:"undecided,omitempty"`
}

// Decision is the outcome of a preflight.
type Decision struct {
	// Decision is Go, NoGo or Undecided; ExitCode 0, 1 or 2.
	Decision string          `json:"decision"`
	ExitCode int             `json:"exit_code"`
	To       release.Version `json:"to"`
	// Current is the running version, when it could be read.
	Current release.Version `json:"current,omitzero"`
	// Reasons lists every reason against going (empty for Go).
	Reasons []Reason `json:"reasons"`
	// Guidance is the server's word on the running version, in plain words.
	Guidance string           `json:"guidance,omitempty"`
	Notices  []release.Notice `json:"notices"`
	// Offer is what the server offers now (nil: nothing).
	Offer     *release.Offer    `json:"offer"`
	Databases []*DatabaseHealth `json:"databases,omitempty"`
	// AnswerExpiresAt is when the answer decided on expires.
	AnswerExpiresAt time.Time `json:"answer_expires_at,omitzero"`
	// Restart is true when `to` is the version already running: no
	// upgrade, so Go, with Warnings (see Preflight).
	Restart bool `json:"restart,omitempty"`
	// Warnings are what speaks against the running version on a restart,
	// and the findings the offered release waives: shown, but no reason.
	Warnings []Reason `json:"warnings,omitempty"`
}

// RestartCheckInTimeout bounds the check-in of a preflight to the version
// already running (see Preflight): its outcome only adds warnings.
const RestartCheckInTimeout = 30 * time.Second

// Preflight checks in now and decides whether upgrading to `to` may go
// ahead. It never returns Go unless a fresh answer verified and nothing
// speaks against the upgrade.
//
// `to` being the version already running is no upgrade: a restarted pod's
// init container, or a first start, asks that. It is Go, whatever the
// answer (or its absence) says, because refusing would only keep the
// running version from starting again: an outage, not a protection. What
// speaks against the version (paused, pulled with its guidance, a damaged
// database, no verified answer) is returned as Warnings.
func (a *Agent) Preflight(ctx context.Context, to release.Version) Decision {
	if a.bundleDir != "" {
		return a.PreflightBundle(ctx, "", to)
	}
	ctx, restart, cancel := a.restart(ctx, to)
	defer cancel()
	res, err := a.CheckIn(ctx)
	var d Decision
	if err != nil {
		d = Decision{To: to, Current: res.Version, Databases: res.Databases, Notices: []release.Notice{}}
		d.Reasons = append(d.Reasons, failureReason(err))
		d.Reasons = append(d.Reasons, databaseReasons(res.Databases)...)
	} else {
		d = Decide(res.Answer, to, res.Databases)
	}
	return a.conclude(d, to, restart)
}

// restart reports whether `to` is the version running here (read locally,
// before any network), and then bounds ctx by RestartCheckInTimeout.
func (a *Agent) restart(ctx context.Context, to release.Version) (context.Context, bool, context.CancelFunc) {
	if v, err := a.cfg.readVersion(ctx); err != nil || v != to {
		return ctx, false, func() {}
	}
	ctx, cancel := context.WithTimeout(ctx, RestartCheckInTimeout)
	return ctx, true, cancel
}

// conclude adds failed_here (unless RetryFailed) to a decision, and for a
// restart turns the reasons that concern the running version into
// warnings and drops those that concern upgrades.
func (a *Agent) conclude(d Decision, to release.Version, restart bool) Decision {
	if restart {
		d.Restart, d.Current = true, to
		for _, r := range d.Reasons {
			switch r.Code {
			case ReasonNotOffered, ReasonRequiredStop, ReasonPostgresTooOld:
			default:
				d.Warnings = append(d.Warnings, r)
			}
		}
		d.Reasons = nil
		return finish(d)
	}
	if !a.cfg.RetryFailed {
		if r, ok := a.failedHere(to); ok {
			d.Reasons = append(d.Reasons, r)
		}
	}
	return finish(d)
}

// failedHere is the failed_here reason when an upgrade to `to` failed on
// this installation: delivered (kept in the state) or still queued.
func (a *Agent) failedHere(to release.Version) (Reason, bool) {
	var failed *release.Event
	if st, err := a.state.Load(); err == nil {
		if e, ok := st.FailedUpgrades[to.String()]; ok {
			failed = &e
		}
	}
	if q, err := a.state.Outbox(); err == nil {
		for _, e := range q {
			if e.Event.Kind == release.EventUpgradeFailed && e.Event.To == to {
				failed = &e.Event
			}
		}
	}
	if failed == nil {
		return Reason{}, false
	}
	msg := fmt.Sprintf("the upgrade from %s to %s failed on this installation at %s", failed.From, to, failed.At.UTC().Format(time.RFC3339))
	if failed.Detail != "" {
		msg += " (" + failed.Detail + ")"
	}
	return Reason{Code: ReasonFailedHere, Message: msg + "; it is not tried again by itself: fix the cause, then preflight with --retry-failed"}, true
}

// failureReason is the undecided reason for a failed check-in.
func failureReason(err error) Reason {
	var ce *client.Error
	var cfgErr *ConfigError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Reason{Code: ReasonTimeout, Undecided: true, Message: "no decision in time: " + err.Error()}
	case errors.Is(err, client.ErrUnverified):
		code := ReasonUnverified
		if errors.Is(err, sign.ErrExpired) {
			return Reason{Code: code, Undecided: true, Message: "the answer had expired (check the clock): " + err.Error()}
		}
		return Reason{Code: code, Undecided: true, Message: "the server's answer did not verify, so it cannot be trusted: " + err.Error()}
	case errors.As(err, &ce):
		return Reason{Code: ReasonUnreachable, Undecided: true, Message: "the server refused the check-in: " + err.Error()}
	case errors.As(err, &cfgErr):
		return Reason{Code: ReasonConfiguration, Undecided: true, Message: err.Error()}
	}
	return Reason{Code: ReasonUnreachable, Undecided: true, Message: "no valid answer from the server: " + err.Error()}
}

// Decide is the pure preflight decision from a verified answer and the
// database watch: every reason against upgrading to `to` is listed.
func Decide(ans release.Answer, to release.Version, dbs []*DatabaseHealth) Decision {
	d := Decision{To: to, Current: ans.Current.Version, Offer: ans.Offer, Notices: ans.Notices,
		Guidance: Guidance(ans), Databases: dbs, AnswerExpiresAt: ans.ExpiresAt}
	if d.Notices == nil {
		d.Notices = []release.Notice{}
	}
	c := ans.Current
	offered := ans.Offer != nil && ans.Offer.Version == to
	switch c.Status {
	case release.StatusPulled:
		sanctioned := (c.Action == release.ActionUpgrade && c.Target == to && offered) ||
			(c.Action == release.ActionRollback && c.Target == to)
		if !sanctioned {
			d.Reasons = append(d.Reasons, Reason{Code: ReasonPulled, URL: c.IncidentURL,
				Message: fmt.Sprintf("the running version %s has been pulled and the guidance is not %s: %s", c.Version, to, Guidance(ans))})
		}
	case release.StatusPaused:
		if !offered {
			d.Reasons = append(d.Reasons, Reason{Code: ReasonPaused, URL: c.IncidentURL,
				Message: fmt.Sprintf("the running version %s is paused (%s) and %s is not offered: stay on %s and wait for news", c.Version, orUnknown(c.Reason), to, c.Version)})
		}
	}
	if c.Status != release.StatusPulled || !(c.Action == release.ActionRollback && c.Target == to) {
		switch {
		case offered:
		case ans.Offer != nil && ans.Offer.RequiredStop && ans.Offer.Version.Less(to):
			d.Reasons = append(d.Reasons, Reason{Code: ReasonRequiredStop, URL: ans.Offer.NotesURL,
				Message: fmt.Sprintf("%s is a required upgrade stop between %s and %s: upgrade to %s first", ans.Offer.Version, c.Version, to, ans.Offer.Version)})
		case ans.Offer != nil:
			d.Reasons = append(d.Reasons, Reason{Code: ReasonNotOffered,
				Message: fmt.Sprintf("%s is not offered to this installation; the server offers %s", to, ans.Offer.Version)})
		default:
			d.Reasons = append(d.Reasons, Reason{Code: ReasonNotOffered,
				Message: fmt.Sprintf("%s is not offered to this installation (not released to its ring or rollout yet, paused or pulled); no upgrade is offered now", to)})
		}
	}
	for _, r := range databaseReasons(dbs) {
		// The vendor's word, in the signed offer of `to`, that the upgrade
		// repairs this finding itself: a warning, not a reason.
		if offered && slices.Contains(ans.Offer.Waives, r.Code) && !r.Undecided {
			r.Message = "waived by the vendor for " + to.String() + " (its upgrade repairs it): " + r.Message
			d.Warnings = append(d.Warnings, r)
			continue
		}
		d.Reasons = append(d.Reasons, r)
	}
	if offered && ans.Offer.RequiresPostgres > 0 {
		for _, h := range dbs {
			if major := h.ServerVersionNum / 10000; h.ServerVersionNum > 0 && major < ans.Offer.RequiresPostgres {
				d.Reasons = append(d.Reasons, Reason{Code: ReasonPostgresTooOld,
					Message: fmt.Sprintf("database %s runs PostgreSQL %d (%d); %s needs PostgreSQL %d or later: upgrade PostgreSQL first",
						h.Name, major, h.ServerVersionNum, to, ans.Offer.RequiresPostgres)})
			}
		}
	}
	return finish(d)
}

// databaseReasons are the reasons the watched databases give.
func databaseReasons(dbs []*DatabaseHealth) []Reason {
	var out []Reason
	for _, h := range dbs {
		switch h.Status {
		case release.HealthCorrupt:
			out = append(out, Reason{Code: ReasonDatabaseCorrupt, Message: "database " + h.Name + " is corrupt: " + h.Detail + "; repair it before upgrading (ringfence pg repair)"})
		case release.HealthCollationChanged:
			out = append(out, Reason{Code: ReasonCollationChanged, Message: "database " + h.Name + ": the collation changed under its indexes: " + h.Detail + "; repair it before upgrading (ringfence pg repair)"})
		case release.HealthOK:
		default:
			out = append(out, Reason{Code: ReasonDatabaseUnknown, Undecided: true, Message: "database " + h.Name + " could not be checked: " + h.Detail})
		}
	}
	return out
}

// finish sets the decision and exit code from the reasons: any definite
// reason is a no-go, otherwise any open one is undecided.
func finish(d Decision) Decision {
	if d.Reasons == nil {
		d.Reasons = []Reason{}
	}
	d.Decision, d.ExitCode = Go, 0
	for _, r := range d.Reasons {
		if !r.Undecided {
			d.Decision, d.ExitCode = NoGo, 1
			return d
		}
		d.Decision, d.ExitCode = Undecided, 2
	}
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// Guidance says in plain words what the answer means for the running
// version.
func Guidance(ans release.Answer) string {
	c := ans.Current
	var s string
	switch c.Status {
	case release.StatusPulled:
		s = fmt.Sprintf("%s has been PULLED: %s. ", c.Version, orUnknown(c.Reason))
		switch c.Action {
		case release.ActionUpgrade:
			s += fmt.Sprintf("Upgrade to %s.", c.Target)
		case release.ActionRollback:
			s += fmt.Sprintf("Roll back to %s.", c.Target)
		default:
			s += fmt.Sprintf("Hold: stay on %s, upgrade to nothing, and wait for further guidance.", c.Version)
		}
	case release.StatusPaused:
		s = fmt.Sprintf("%s is PAUSED: %s. Keep running it; it is no longer offered to anyone; wait for news.", c.Version, orUnknown(c.Reason))
	default:
		s = fmt.Sprintf("%s is in good standing.", c.Version)
		for _, n := range ans.Notices {
			if n.Kind == release.NoticeUnknownVersion {
				s = fmt.Sprintf("%s is not a release the server knows.", c.Version)
			}
		}
		if ans.Offer != nil {
			s += fmt.Sprintf(" Upgrade to %s is offered.", ans.Offer.Version)
			if ans.Offer.RequiredStop {
				s += " It is a required stop."
			}
		} else {
			s += " No upgrade is offered."
		}
	}
	if c.IncidentURL != "" {
		s += " Details: " + c.IncidentURL
	}
	return s
}
