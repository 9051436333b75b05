package release

import (
	"strings"
	"testing"
	"time"
)

func TestAvailability(t *testing.T) {
	type ringWant struct {
		state     RingState
		available bool
		since     time.Time // checked when available
		reason    string    // substring
	}
	forced := Promotion{Ring: "stable", EnteredAt: at(time.Hour), Forced: true, By: "alice", Reason: "customer escalation"}
	resolved := at(time.Minute)
	tests := []struct {
		name    string
		release Release
		gates   []GateResult
		holds   []Hold
		adopt   []Adoption
		now     time.Time
		want    [3]ringWant
		wantDue []string // rings
	}{
		{
			name:    "no gate result yet",
			release: rel("3.30.0"),
			now:     t0,
			want:    [3]ringWant{{RingWaiting, false, time.Time{}, "waiting for required gate collation-compare"}, {RingWaiting, false, time.Time{}, "not yet in ring insiders"}, {RingWaiting, false, time.Time{}, "not yet in ring early"}},
		},
		{
			name:    "required gate failed",
			release: rel("3.30.0"),
			gates:   []GateResult{fail("3.30.0", at(-time.Minute))},
			now:     t0,
			want:    [3]ringWant{{RingBlocked, false, time.Time{}, "required gate collation-compare failed"}, {RingBlocked, false, time.Time{}, "failed"}, {RingBlocked, false, time.Time{}, "failed"}},
		},
		{
			name: "a resume restarts the soak: time paused does not count",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-72 * time.Hour)}}
				resumed := at(-time.Hour)
				r.ResumedAt = &resumed
			}),
			gates: []GateResult{pass("3.30.0", at(-73*time.Hour))},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 5, Healthy: 5}},
			now:   t0,
			want:  [3]ringWant{{RingSoaking, true, at(-72 * time.Hour), "soaking until 2026-11-27T11:00:00Z"}, {RingWaiting, true, at(23 * time.Hour), "soaking in ring insiders until 2026-11-27T11:00:00Z"}, {RingWaiting, false, time.Time{}, ""}},
		},
		{
			name: "required gate failing after ring 0 stops the rollout there",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-72 * time.Hour)}}
			}),
			gates: []GateResult{pass("3.30.0", at(-73*time.Hour)), fail("3.30.0", at(-time.Minute))},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 5, Healthy: 5}},
			now:   t0,
			want:  [3]ringWant{{RingActive, true, at(-72 * time.Hour), ""}, {RingBlocked, false, time.Time{}, "required gate collation-compare failed"}, {RingBlocked, false, time.Time{}, "failed"}},
		},
		{
			name:    "latest result counts: fail then pass",
			release: rel("3.30.0"),
			gates:   []GateResult{pass("3.30.0", at(-time.Minute)), fail("3.30.0", at(-time.Hour))},
			now:     t0,
			want:    [3]ringWant{{RingSoaking, true, t0, "soaking until"}, {RingWaiting, false, time.Time{}, "0 of 2 healthy installations needed in ring insiders"}, {RingWaiting, false, time.Time{}, ""}},
			wantDue: []string{"insiders"},
		},
		{
			name:    "latest result counts: pass then fail",
			release: rel("3.30.0"),
			gates:   []GateResult{pass("3.30.0", at(-time.Hour)), fail("3.30.0", at(-time.Minute))},
			now:     t0,
			want:    [3]ringWant{{RingBlocked, false, time.Time{}, "failed"}, {RingBlocked, false, time.Time{}, "failed"}, {RingBlocked, false, time.Time{}, "failed"}},
		},
		{
			name:    "gate result of another release does not count",
			release: rel("3.30.0"),
			gates:   []GateResult{pass("3.29.0", at(-time.Hour))},
			now:     t0,
			want:    [3]ringWant{{RingWaiting, false, time.Time{}, "waiting for required gate"}, {RingWaiting, false, time.Time{}, ""}, {RingWaiting, false, time.Time{}, ""}},
		},
		{
			name:    "open hold blocks the first ring",
			release: rel("3.30.0"),
			gates:   []GateResult{pass("3.30.0", at(-time.Hour))},
			holds:   []Hold{{ID: "h1", Product: "acme", Version: v("3.30.0"), RaisedBy: "bob", Reason: "support sees odd sorting", RaisedAt: at(-time.Minute)}},
			now:     t0,
			want:    [3]ringWant{{RingBlocked, false, time.Time{}, "hold h1 by bob: support sees odd sorting"}, {RingBlocked, false, time.Time{}, "hold h1"}, {RingBlocked, false, time.Time{}, "hold h1"}},
		},
		{
			name:    "resolved hold does not block",
			release: rel("3.30.0"),
			gates:   []GateResult{pass("3.30.0", at(-time.Hour))},
			holds:   []Hold{{ID: "h1", Product: "acme", Version: v("3.30.0"), RaisedBy: "bob", Reason: "x", RaisedAt: at(-time.Minute), ResolvedAt: &resolved}},
			now:     t0,
			want:    [3]ringWant{{RingSoaking, true, t0, ""}, {RingWaiting, false, time.Time{}, ""}, {RingWaiting, false, time.Time{}, ""}},
			wantDue: []string{"insiders"},
		},
		{
			name: "evidence present, still soaking: next ring scheduled, not due",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-23 * time.Hour)}}
			}),
			gates: []GateResult{pass("3.30.0", at(-30*time.Hour))},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 3, Healthy: 2, Failed: 1}},
			now:   t0,
			want:  [3]ringWant{{RingSoaking, true, at(-23 * time.Hour), "soaking until 2026-11-26T13:00:00Z"}, {RingWaiting, true, at(time.Hour), "soaking in ring insiders until 2026-11-26T13:00:00Z"}, {RingWaiting, false, time.Time{}, "not yet in ring early"}},
		},
		{
			name: "evidence present, soak over: next ring entered now",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-25 * time.Hour)}}
			}),
			gates:   []GateResult{pass("3.30.0", at(-30*time.Hour))},
			adopt:   []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 2, Healthy: 2}},
			now:     t0,
			want:    [3]ringWant{{RingActive, true, at(-25 * time.Hour), ""}, {RingSoaking, true, t0, ""}, {RingWaiting, false, time.Time{}, "0 of 3 healthy installations needed in ring early"}},
			wantDue: []string{"early"},
		},
		{
			name: "soak over but too few healthy installations",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-25 * time.Hour)}}
			}),
			gates: []GateResult{pass("3.30.0", at(-30*time.Hour))},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 5, Healthy: 1, Failed: 4}},
			now:   t0,
			want:  [3]ringWant{{RingActive, true, at(-25 * time.Hour), ""}, {RingWaiting, false, time.Time{}, "1 of 2 healthy installations needed in ring insiders"}, {RingWaiting, false, time.Time{}, ""}},
		},
		{
			name: "hold blocks promotion but not the rings already entered",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-25 * time.Hour)}}
			}),
			gates: []GateResult{pass("3.30.0", at(-30*time.Hour))},
			holds: []Hold{{ID: "h2", Product: "acme", Version: v("3.30.0"), RaisedBy: "carol", Reason: "wait for the DBA", RaisedAt: at(-time.Hour)}},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 9, Healthy: 9}},
			now:   t0,
			want:  [3]ringWant{{RingActive, true, at(-25 * time.Hour), ""}, {RingBlocked, false, time.Time{}, "hold h2"}, {RingBlocked, false, time.Time{}, "hold h2"}},
		},
		{
			name: "recorded entry stays when evidence drops",
			release: rel("3.30.0", func(r *Release) {
				r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-100 * time.Hour)}, {Ring: "early", EnteredAt: at(-60 * time.Hour)}}
			}),
			gates: []GateResult{pass("3.30.0", at(-101*time.Hour))},
			adopt: []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "early", Installations: 3, Healthy: 3}},
			now:   t0,
			want:  [3]ringWant{{RingActive, true, at(-100 * time.Hour), ""}, {RingActive, true, at(-60 * time.Hour), ""}, {RingActive, true, t0, ""}},
			// stable is the last ring: active, not soaking.
			wantDue: []string{"stable"},
		},
		{
			name:    "forced into the last ring: every ring available, past gates and holds",
			release: rel("3.30.0", func(r *Release) { r.Rings = []Promotion{forced} }),
			gates:   []GateResult{fail("3.30.0", at(-time.Hour))},
			holds:   []Hold{{ID: "h3", Product: "acme", Version: v("3.30.0"), RaisedBy: "dan", Reason: "x", RaisedAt: at(-time.Hour)}},
			now:     at(2 * time.Hour),
			want:    [3]ringWant{{RingSoaking, true, at(time.Hour), ""}, {RingSoaking, true, at(time.Hour), ""}, {RingActive, true, at(time.Hour), ""}},
		},
		{
			name:    "forced entry in the future of now is not yet active",
			release: rel("3.30.0", func(r *Release) { r.Rings = []Promotion{forced} }),
			now:     t0,
			want:    [3]ringWant{{RingWaiting, true, at(time.Hour), ""}, {RingWaiting, true, at(time.Hour), ""}, {RingWaiting, true, at(time.Hour), ""}},
		},
		{
			name: "paused release is available nowhere, records kept",
			release: everywhere(rel("3.30.0", func(r *Release) {
				r.Status, r.Paused = StatusPaused, &Pause{Reason: "auto-halt", By: "auto-halt", At: t0}
			}), at(-100*time.Hour)),
			gates: []GateResult{pass("3.30.0", at(-101*time.Hour))},
			now:   t0,
			want:  [3]ringWant{{RingBlocked, false, time.Time{}, "release is paused"}, {RingBlocked, false, time.Time{}, "release is paused"}, {RingBlocked, false, time.Time{}, "release is paused"}},
		},
		{
			name: "paused release earns no new entries",
			release: rel("3.30.0", func(r *Release) {
				r.Status, r.Paused = StatusPaused, &Pause{Reason: "x", By: "alice", At: t0}
			}),
			gates: []GateResult{pass("3.30.0", at(-time.Hour))},
			now:   t0,
			want:  [3]ringWant{{RingBlocked, false, time.Time{}, "paused"}, {RingBlocked, false, time.Time{}, "paused"}, {RingBlocked, false, time.Time{}, "paused"}},
		},
		{
			name: "pulled release is available nowhere",
			release: everywhere(rel("3.30.0", func(r *Release) {
				r.Status, r.Pulled = StatusPulled, &Pull{Reason: "x", Action: ActionHold}
			}), at(-100*time.Hour)),
			now:  t0,
			want: [3]ringWant{{RingBlocked, false, time.Time{}, "release is pulled"}, {RingBlocked, false, time.Time{}, "pulled"}, {RingBlocked, false, time.Time{}, "pulled"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := acmeFacts()
			f.Releases = []Release{tt.release}
			f.GateResults, f.Holds, f.Adoption = tt.gates, tt.holds, tt.adopt
			statuses, due := Availability(f, tt.now)
			if len(statuses) != 1 || len(statuses[0].Rings) != 3 {
				t.Fatalf("statuses: %+v", statuses)
			}
			for i, want := range tt.want {
				got := statuses[0].Rings[i]
				if got.Ring != []string{"insiders", "early", "stable"}[i] {
					t.Fatalf("ring %d is %s: rings not in position order", i, got.Ring)
				}
				if got.State != want.state || got.available != want.available || !strings.Contains(got.Reason, want.reason) {
					t.Errorf("ring %s: state %s available %v reason %q; want %s %v %q", got.Ring, got.State, got.available, got.Reason, want.state, want.available, want.reason)
				}
				if want.available && !got.since.Equal(want.since) {
					t.Errorf("ring %s: since %s, want %s", got.Ring, got.since, want.since)
				}
				if (got.EnteredAt != nil) != (got.available && !got.since.After(tt.now) || got.State == RingBlocked && got.EnteredAt != nil) {
					t.Errorf("ring %s: entered_at %v with available %v since %s", got.Ring, got.EnteredAt, got.available, got.since)
				}
			}
			var dueRings []string
			for _, d := range due {
				dueRings = append(dueRings, d.Promotion.Ring)
				if d.Product != "acme" || d.Version != tt.release.Version || d.Promotion.Forced {
					t.Errorf("due %+v", d)
				}
			}
			if strings.Join(dueRings, ",") != strings.Join(tt.wantDue, ",") {
				t.Errorf("due %v, want %v", dueRings, tt.wantDue)
			}
		})
	}
}

func TestAvailabilityNoRequiredGates(t *testing.T) {
	f := acmeFacts()
	f.Products[0].RequiredGates = nil
	f.Releases = []Release{rel("3.30.0")}
	statuses, due := Availability(f, t0)
	r := statuses[0].Rings[0]
	if !r.available || !r.since.Equal(t0) {
		t.Fatalf("without required gates the first ring opens at once: %+v", r)
	}
	if len(due) != 1 || !due[0].Promotion.EnteredAt.Equal(t0) {
		t.Fatalf("due %+v", due)
	}
}

func TestAvailabilityStatusFields(t *testing.T) {
	f := acmeFacts()
	f.Products[0].RequiredGates = []string{"collation-compare", "upgrade-test"}
	f.Releases = []Release{rel("3.30.0")}
	f.GateResults = []GateResult{pass("3.30.0", at(-time.Hour)), {Product: "acme", Version: v("3.30.0"), Name: "optional-lint", Status: GateFail, PostedAt: at(-time.Hour)}}
	f.Adoption = []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "early", Installations: 4, Healthy: 3, Failed: 1}}
	f.RingSizes = []RingSize{{Product: "acme", Ring: "early", Installations: 40}}
	statuses, _ := Availability(f, t0)
	s := statuses[0]
	if len(s.Gates) != 2 || s.Gates[0].Name != "collation-compare" || s.Gates[1].Name != "optional-lint" {
		t.Errorf("gates %+v", s.Gates)
	}
	if len(s.MissingGates) != 1 || s.MissingGates[0] != "upgrade-test" {
		t.Errorf("missing gates %v", s.MissingGates)
	}
	if s.Rings[0].State != RingWaiting {
		t.Errorf("a failed optional gate must not block, a missing required one must wait: %+v", s.Rings[0])
	}
	e := s.Rings[1]
	if e.Installations != 40 || e.Adoption != 4 || e.Healthy != 3 || e.Failed != 1 {
		t.Errorf("early counts %+v", e)
	}
}

// Soak time counts from the actual entry into a ring: evidence that arrives
// long after the previous ring's soak ended must not let the release skip
// the soak of the ring it enters now.
func TestAvailabilityLateEvidenceKeepsSoak(t *testing.T) {
	f := acmeFacts()
	f.Rings[2].MinHealthy = 0 // early: time alone decides the step to stable
	f.Releases = []Release{rel("3.30.0", func(r *Release) {
		r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-100 * time.Hour)}}
	})}
	f.GateResults = []GateResult{pass("3.30.0", at(-101*time.Hour))}
	f.Adoption = []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 2, Healthy: 2}}
	statuses, due := Availability(f, t0)
	early, stable := statuses[0].Rings[1], statuses[0].Rings[2]
	if !early.available || !early.since.Equal(t0) {
		t.Fatalf("early: %+v", early)
	}
	if stable.State != RingWaiting || !stable.since.Equal(at(48*time.Hour)) {
		t.Fatalf("stable must wait for early's whole soak: %+v", stable)
	}
	if len(due) != 1 || due[0].Promotion.Ring != "early" || !due[0].Promotion.EnteredAt.Equal(t0) {
		t.Fatalf("due %+v", due)
	}

	// Once recorded, the next evaluation keeps the recorded time.
	f.Releases[0].Rings = append(f.Releases[0].Rings, due[0].Promotion)
	statuses, due = Availability(f, at(47*time.Hour))
	if len(due) != 0 || !statuses[0].Rings[1].since.Equal(t0) || statuses[0].Rings[2].available && !statuses[0].Rings[2].since.Equal(at(48*time.Hour)) {
		t.Fatalf("after recording: %+v, due %+v", statuses[0].Rings, due)
	}
	statuses, due = Availability(f, at(49*time.Hour))
	if len(due) != 1 || due[0].Promotion.Ring != "stable" || !due[0].Promotion.EnteredAt.Equal(at(49*time.Hour)) || statuses[0].Rings[2].State != RingActive {
		t.Fatalf("after early's soak: %+v, due %+v", statuses[0].Rings, due)
	}
}
