package release

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Policy is a product's auto-halt rule: release V is paused automatically when,
// within Window before now, at least MinFailures failing installations of at
// least MinCustomers distinct customers failed on V, and they are at least
// MinFailureShare of the installations that moved to V (or failed on it) in
// that window — both counted with each customer's weight capped (below).
//
// A failure is an upgrade_failed event whose target is V, an integrity_failed
// event on V, or a health report of corrupt or collation_changed while on V.
// An installation is a customer and an instance id together, and counts once
// however often it fails, so one flapping machine cannot halt a release alone.
// "Moved to V" means it reported upgrade_started, upgrade_succeeded or
// upgrade_failed with target V.
//
// Instance ids are chosen by agents, so evidence only counts from
// installations the server knew before the report: the check-in carrying an
// event must not be the installation's first, and the installation must have
// last been seen on the event's from version or on V itself (a health report
// needs only the installation to be known).
//
// No single customer can push a release over or under the threshold: when
// two or more customers moved, each customer's moved installations count at
// most as many as those of the largest other customer, and when two or more
// customers failed, each customer's failing installations count at most as
// many as those of the most-failing other customer. One enrollment key
// inventing 30 healthy installations therefore weighs no more than the
// largest genuine customer (it cannot dilute the failures of the others
// under the share), and one inventing 30 failures counts no more than the
// other failing customers' largest (it cannot make up MinFailures or the
// share for them); MinCustomers keeps it from halting alone.
type Policy struct {
	// Disabled turns auto-halt off for the product.
	Disabled bool
	// Window is how far back evidence counts. Default 1h.
	Window time.Duration
	// MinFailures is the least number of failing installations. Default 3.
	MinFailures int
	// MinFailureShare is the least share, in [0, 1], of failing among moved
	// installations. Default 0.2.
	MinFailureShare float64
	// MinCustomers is the least number of distinct customers the failing
	// installations belong to. Default 2.
	MinCustomers int
}

// Auto-halt defaults: a pause needs three distinct failing installations of
// at least two customers that are at least a fifth of those that moved to the
// release in the last hour. Three keeps one or two broken machines from
// halting a release; two customers keep one customer's key (or one customer's
// odd environment) from halting it for everyone; a fifth keeps a large,
// healthy rollout from being halted by a background failure rate.
const (
	DefaultHaltWindow      = time.Hour
	DefaultMinFailures     = 3
	DefaultMinFailureShare = 0.2
	DefaultMinCustomers    = 2
)

// DefaultPolicy returns the auto-halt policy new products get.
func DefaultPolicy() Policy {
	return Policy{Window: DefaultHaltWindow, MinFailures: DefaultMinFailures, MinFailureShare: DefaultMinFailureShare, MinCustomers: DefaultMinCustomers}
}

// Validate checks p's fields.
func (p Policy) Validate() error {
	if p.Window <= 0 {
		return Errorf(EINVALID, "auto-halt window must be positive")
	}
	if p.MinFailures < 1 || p.MinFailures > MaxStoredInt {
		return Errorf(EINVALID, "auto-halt min_failures must be within [1, %d]", MaxStoredInt)
	}
	if p.MinCustomers < 1 || p.MinCustomers > MaxStoredInt {
		return Errorf(EINVALID, "auto-halt min_customers must be within [1, %d]", MaxStoredInt)
	}
	if !(p.MinFailureShare >= 0 && p.MinFailureShare <= 1) {
		return Errorf(EINVALID, "auto-halt min failure share must be within [0, 1]")
	}
	return nil
}

// policyJSON is Policy's wire form, the window as a duration string.
type policyJSON struct {
	Disabled        bool    `json:"disabled"`
	Window          string  `json:"window"`
	MinFailures     int     `json:"min_failures"`
	MinFailureShare float64 `json:"failure_share"`
	MinCustomers    int     `json:"min_customers"`
}

// MarshalJSON writes the window as a duration string ("1h0m0s").
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyJSON{p.Disabled, p.Window.String(), p.MinFailures, p.MinFailureShare, p.MinCustomers})
}

// UnmarshalJSON reads a policy; fields left out keep their default.
func (p *Policy) UnmarshalJSON(b []byte) error {
	d := DefaultPolicy()
	if err := d.PatchJSON(b); err != nil {
		return err
	}
	*p = d
	return nil
}

// PatchJSON changes the fields of p that the JSON object b names and keeps
// the others (a PATCH of the halt policy). Unknown fields are refused.
func (p *Policy) PatchJSON(b []byte) error {
	j := policyJSON{p.Disabled, p.Window.String(), p.MinFailures, p.MinFailureShare, p.MinCustomers}
	if err := strictUnmarshal(b, &j); err != nil {
		return Errorf(EINVALID, "halt: %s", describeJSONError(err))
	}
	w, err := ParseDuration(j.Window)
	if err != nil {
		return Errorf(EINVALID, "halt: window: %s", ErrorMessage(err))
	}
	*p = Policy{Disabled: j.Disabled, Window: w, MinFailures: j.MinFailures, MinFailureShare: j.MinFailureShare, MinCustomers: j.MinCustomers}
	return nil
}

// Evidence is what EvaluateHalt saw, for the audit log and the incident.
type Evidence struct {
	Product string    `json:"product"`
	Version Version   `json:"version"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	// Moved counts installations that moved to the version or failed on it
	// in the window; Failed those that failed; Customers the distinct
	// customers of the failed ones. Ignored counts reports from
	// installations the server did not know before (see Policy).
	// Moved and Failed are weighed: each customer's contribution capped as
	// Policy says; ByCustomer holds what each customer reported.
	Moved      int              `json:"moved"`
	Failed     int              `json:"failed"`
	Customers  int              `json:"customers"`
	Ignored    int              `json:"ignored"`
	Share      float64          `json:"share"`
	ByCustomer []CustomerCounts `json:"by_customer"`
	Policy     Policy           `json:"policy"`
	// Failures lists the first failure of up to 20 installations, earliest
	// first.
	Failures []Failure `json:"failures"`
	// Reason is a one-line human summary.
	Reason string `json:"reason"`
}

// Failure is one installation's failure in Evidence.
type Failure struct {
	InstanceID string    `json:"instance_id"`
	Customer   string    `json:"customer"`
	Kind       string    `json:"kind"`
	At         time.Time `json:"at"`
	Detail     string    `json:"detail,omitempty"`
}

// MaxEvidenceFailures bounds the failures listed in Evidence.
const MaxEvidenceFailures = 20

// HaltCounts is the auto-halt evidence about one release within one window,
// counted: by the store in SQL (sqlstore's HaltCounts), or by CountHalt from
// the events and reports themselves. Installations are (customer, instance)
// pairs; only reports of installations known before they reported count
// (see Policy).
type HaltCounts struct {
	// Moved counts installations that moved to the release or failed on it;
	// Failed those that failed; Customers the distinct customers of those
	// that failed; Ignored the events and reports of installations not known
	// before they reported.
	Moved, Failed, Customers, Ignored int
	// Failures lists the first failure of up to MaxEvidenceFailures
	// installations, earliest first.
	Failures []Failure
	// ByCustomer splits Moved and Failed by customer, in customer order
	// (customers with neither are left out).
	ByCustomer []CustomerCounts
}

// CustomerCounts is one customer's share of auto-halt evidence: its
// installations that moved to the release (or failed on it) and those that
// failed.
type CustomerCounts struct {
	Customer string `json:"customer"`
	Moved    int    `json:"moved"`
	Failed   int    `json:"failed"`
}

// Weigh returns the moved and failed installations of by as auto-halt
// counts them (see Policy): with two or more customers reporting, no
// customer's count exceeds the largest of the other customers'.
func Weigh(by []CustomerCounts) (moved, failed int) {
	var movers, failers int
	for _, c := range by {
		if c.Moved > 0 {
			movers++
		}
		if c.Failed > 0 {
			failers++
		}
	}
	for i, c := range by {
		otherMoved, otherFailed := 0, 0
		for j, d := range by {
			if j != i {
				otherMoved, otherFailed = max(otherMoved, d.Moved), max(otherFailed, d.Failed)
			}
		}
		m, f := c.Moved, c.Failed
		if movers >= 2 {
			m = min(m, otherMoved)
		}
		if failers >= 2 {
			f = min(f, otherFailed)
		}
		moved, failed = moved+m, failed+f
	}
	return moved, failed
}

// CountHalt counts the events and failing health reports about release v
// within (since, now]; others are ignored, so callers may pass a superset.
// Callers should date events and reports by when the server received them
// rather than by the agent's clock, so that a wrong clock cannot move
// failures out of the window.
//
// CountHalt is the definition of the counts over values in memory. The
// server counts the same in SQL (sqlstore.HaltCounts), which does not grow
// with the number of rows; the store's tests hold the two equal and
// release's tests judge CountHalt's result, which is why it is not test
// code (Go shares no test code between packages).
func CountHalt(v Version, events []InstanceEvent, health []HealthReport, since, now time.Time) HaltCounts {
	var c HaltCounts
	in := func(t time.Time) bool { return t.After(since) && !t.After(now) }
	type installation struct{ customer, instance string }
	moved := map[installation]bool{}
	failed := map[installation]Failure{}
	fail := func(f Failure) {
		k := installation{f.Customer, f.InstanceID}
		moved[k] = true
		if old, ok := failed[k]; !ok || f.At.Before(old.At) {
			failed[k] = f
		}
	}
	for _, e := range events {
		if !in(e.At) || e.To != v {
			continue
		}
		if e.SeenOn.IsZero() || (e.SeenOn != e.From && e.SeenOn != v) {
			c.Ignored++
			continue
		}
		switch e.Kind {
		case EventUpgradeStarted, EventUpgradeSucceeded:
			moved[installation{e.Customer, e.InstanceID}] = true
		case EventUpgradeFailed, EventIntegrityFailed:
			fail(Failure{InstanceID: e.InstanceID, Customer: e.Customer, Kind: string(e.Kind), At: e.At, Detail: e.Detail})
		}
	}
	for _, h := range health {
		if !in(h.At) || h.Version != v || !h.Health.Status.Failing() {
			continue
		}
		if h.SeenOn.IsZero() {
			c.Ignored++
			continue
		}
		fail(Failure{InstanceID: h.InstanceID, Customer: h.Customer, Kind: "health_" + string(h.Health.Status), At: h.At, Detail: h.Health.Detail})
	}
	by := map[string]*CustomerCounts{}
	count := func(customer string) *CustomerCounts {
		if by[customer] == nil {
			by[customer] = &CustomerCounts{Customer: customer}
		}
		return by[customer]
	}
	for k := range moved {
		count(k.customer).Moved++
	}
	for k := range failed {
		count(k.customer).Failed++
	}
	for _, cc := range by {
		c.ByCustomer = append(c.ByCustomer, *cc)
		if cc.Failed > 0 {
			c.Customers++
		}
	}
	SortCustomerCounts(c.ByCustomer)
	c.Moved, c.Failed = len(moved), len(failed)
	c.Failures = make([]Failure, 0, len(failed))
	for _, f := range failed {
		c.Failures = append(c.Failures, f)
	}
	SortFailures(c.Failures)
	if len(c.Failures) > MaxEvidenceFailures {
		c.Failures = c.Failures[:MaxEvidenceFailures]
	}
	return c
}

// SortCustomerCounts orders cs by customer.
func SortCustomerCounts(cs []CustomerCounts) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Customer < cs[j].Customer })
}

// SortFailures orders failures earliest first, then by customer and
// instance id.
func SortFailures(fs []Failure) {
	sort.Slice(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Customer != b.Customer {
			return a.Customer < b.Customer
		}
		return a.InstanceID < b.InstanceID
	})
}

// JudgeHalt applies policy to the counted evidence c about product's
// release v in the window (since, now] and says whether v must be paused
// now, with the evidence either way. The window is policy's, or shorter
// when the release was resumed inside it (HaltSince).
func JudgeHalt(policy Policy, product string, v Version, c HaltCounts, since, now time.Time) (bool, Evidence) {
	ev := Evidence{Product: product, Version: v, Since: since, Until: now, Policy: policy,
		Customers: c.Customers, Ignored: c.Ignored, Failures: c.Failures, ByCustomer: c.ByCustomer}
	ev.Moved, ev.Failed = Weigh(c.ByCustomer)
	if ev.Failures == nil {
		ev.Failures = []Failure{}
	}
	if ev.ByCustomer == nil {
		ev.ByCustomer = []CustomerCounts{}
	}
	if ev.Moved > 0 {
		ev.Share = float64(ev.Failed) / float64(ev.Moved)
	}
	halt := !policy.Disabled && ev.Failed >= policy.MinFailures && ev.Customers >= policy.MinCustomers && ev.Share >= policy.MinFailureShare
	verdict := "below threshold"
	switch {
	case policy.Disabled:
		verdict = "auto-halt disabled"
	case halt:
		verdict = "halt"
	}
	ev.Reason = fmt.Sprintf("%s@%s: %d of %d installations (weighed per customer) of %d customers failed within %s (%.0f%%; policy: at least %d of %d customers and %.0f%%): %s",
		product, v, ev.Failed, ev.Moved, ev.Customers, policy.Window, ev.Share*100, policy.MinFailures, policy.MinCustomers, policy.MinFailureShare*100, verdict)
	return halt, ev
}

// HaltSince is where the auto-halt window of release r begins at now: the
// policy's window before now, or the release's last resume if later.
func HaltSince(policy Policy, r Release, now time.Time) time.Time {
	since := now.Add(-policy.Window)
	if r.ResumedAt != nil && r.ResumedAt.After(since) {
		since = *r.ResumedAt
	}
	return since
}
