package release

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEvaluateHalt(t *testing.T) {
	target := v("3.30.0")
	// Installations known on 3.29.4 before they reported, of customer
	// "c-<id>" unless the test says otherwise.
	moved := func(id string, when time.Time) InstanceEvent {
		return InstanceEvent{InstanceID: id, Customer: "c-" + id, SeenOn: v("3.29.4"), Event: Event{Kind: EventUpgradeSucceeded, From: v("3.29.4"), To: target, At: when}}
	}
	failed := func(id string, when time.Time) InstanceEvent {
		return InstanceEvent{InstanceID: id, Customer: "c-" + id, SeenOn: v("3.29.4"), Event: Event{Kind: EventUpgradeFailed, From: v("3.29.4"), To: target, At: when, Detail: "migration failed"}}
	}
	integrity := func(id string, when time.Time) InstanceEvent {
		return InstanceEvent{InstanceID: id, Customer: "c-" + id, SeenOn: target, Event: Event{Kind: EventIntegrityFailed, To: target, At: when}}
	}
	corrupt := func(id string, ver Version, when time.Time) HealthReport {
		return HealthReport{InstanceID: id, Customer: "c-" + id, SeenOn: ver, Version: ver, At: when, Health: Health{Status: HealthCollationChanged, Detail: "order changed"}}
	}
	many := func(n int, f func(string, time.Time) InstanceEvent, prefix string) []InstanceEvent {
		var out []InstanceEvent
		for i := 0; i < n; i++ {
			out = append(out, f(fmt.Sprintf("%s-%02d", prefix, i), at(-time.Duration(i+1)*time.Minute)))
		}
		return out
	}
	// of gives events the customer, seenOn the version the server knew.
	of := func(customer string, es []InstanceEvent) []InstanceEvent {
		out := append([]InstanceEvent{}, es...)
		for i := range out {
			out[i].Customer = customer
		}
		return out
	}
	seenOn := func(ver Version, es []InstanceEvent) []InstanceEvent {
		out := append([]InstanceEvent{}, es...)
		for i := range out {
			out[i].SeenOn = ver
		}
		return out
	}
	oneCustomer := DefaultPolicy()
	oneCustomer.MinCustomers = 1
	join := func(xs ...[]InstanceEvent) []InstanceEvent {
		var out []InstanceEvent
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name               string
		policy             Policy
		events             []InstanceEvent
		health             []HealthReport
		halt               bool
		wantMoved, wantBad int
	}{
		{"nothing reported", DefaultPolicy(), nil, nil, false, 0, 0},
		{"3 of 10 failed: halt", DefaultPolicy(), join(many(7, moved, "ok"), many(3, failed, "bad")), nil, true, 10, 3},
		{"2 of 3 failed: too few", DefaultPolicy(), join(many(1, moved, "ok"), many(2, failed, "bad")), nil, false, 3, 2},
		{"3 of 20 failed: share 15% below 20%", DefaultPolicy(), join(many(17, moved, "ok"), many(3, failed, "bad")), nil, false, 20, 3},
		{"4 of 20 failed: share 20%: halt", DefaultPolicy(), join(many(16, moved, "ok"), many(4, failed, "bad")), nil, true, 20, 4},
		{"one machine failing many times counts once", DefaultPolicy(), join(many(1, moved, "ok"), []InstanceEvent{failed("x", at(-1*time.Minute)), failed("x", at(-2*time.Minute)), failed("x", at(-3*time.Minute)), integrity("x", at(-4*time.Minute))}), nil, false, 2, 1},
		{"failures outside the window are ignored", DefaultPolicy(), join(many(3, failed, "bad"), []InstanceEvent{failed("old1", at(-2*time.Hour)), failed("old2", at(-61*time.Minute))}), nil, true, 3, 3},
		{"failures of other versions are ignored", DefaultPolicy(), []InstanceEvent{
			{InstanceID: "a", Event: Event{Kind: EventUpgradeFailed, From: v("3.29.0"), To: v("3.29.4"), At: at(-time.Minute)}},
			{InstanceID: "b", Event: Event{Kind: EventUpgradeFailed, From: v("3.29.0"), To: v("3.29.4"), At: at(-time.Minute)}},
			{InstanceID: "c", Event: Event{Kind: EventUpgradeFailed, From: v("3.29.0"), To: v("3.29.4"), At: at(-time.Minute)}},
		}, nil, false, 0, 0},
		{"events after now are ignored", DefaultPolicy(), []InstanceEvent{failed("a", at(time.Minute)), failed("b", at(time.Minute)), failed("c", at(time.Minute))}, nil, false, 0, 0},
		{"health reports count as failures on the version", DefaultPolicy(), many(2, moved, "ok"), []HealthReport{
			corrupt("h1", target, at(-time.Minute)), corrupt("h2", target, at(-time.Minute)), corrupt("h3", target, at(-2*time.Minute)),
			corrupt("h4", v("3.29.4"), at(-time.Minute)), {InstanceID: "h5", Version: target, At: at(-time.Minute), Health: Health{Status: HealthOK}},
		}, true, 5, 3},
		{"integrity failures count", DefaultPolicy(), many(3, integrity, "i"), nil, true, 3, 3},
		{"upgrade_started counts as moved", DefaultPolicy(), join(many(3, failed, "bad"), []InstanceEvent{{InstanceID: "s", Customer: "c-s", SeenOn: v("3.29.4"), Event: Event{Kind: EventUpgradeStarted, From: v("3.29.4"), To: target, At: at(-time.Minute)}}}), nil, true, 4, 3},
		{"disabled policy never halts", Policy{Disabled: true, Window: time.Hour, MinFailures: 1, MinFailureShare: 0}, many(10, failed, "bad"), nil, false, 10, 10},
		{"one customer's installations cannot halt alone", DefaultPolicy(), of("mallory", many(5, failed, "bad")), nil, false, 5, 5},
		{"one customer may halt under a policy that allows it", oneCustomer, of("bigbank", many(3, failed, "bad")), nil, true, 3, 3},
		{"the same instance id of two customers is two installations", DefaultPolicy(), join(of("a", many(2, failed, "x")), of("b", many(2, failed, "x"))), nil, true, 4, 4},
		// 36 moved, 6 failed would be 17%, under the 20% share: the healthy
		// installations of one customer count no more than the largest
		// other customer's (3), so 6 of 9 failed.
		{"one customer's 30 healthy installations do not dilute six failures of two others", DefaultPolicy(),
			join(of("a", many(3, failed, "a")), of("b", many(3, failed, "b")), of("mallory", many(30, moved, "m"))), nil, true, 9, 6},
		// 31 failures of 2 customers would halt: one customer's failures
		// count no more than the other failing customer's (1).
		{"one customer's 30 failures do not make up another customer's one", DefaultPolicy(),
			join(of("mallory", many(30, failed, "m")), of("b", many(1, failed, "b")), of("b", many(9, moved, "ok"))), nil, false, 20, 2},
		{"one customer's 30 failures do not outweigh other customers' healthy installations", DefaultPolicy(),
			join(of("mallory", many(30, failed, "m")), of("b", many(3, failed, "b")), of("c", many(20, moved, "ok"))), nil, false, 43, 6},
		{"installations first seen in the reporting check-in are ignored", DefaultPolicy(), seenOn(Version{}, many(5, failed, "new")), nil, false, 0, 0},
		{"installations seen on neither from nor the target are ignored", DefaultPolicy(), seenOn(v("1.0.0"), many(5, failed, "odd")), nil, false, 0, 0},
		{"unknown installations' health reports are ignored", DefaultPolicy(), nil, []HealthReport{
			{InstanceID: "h1", Customer: "a", Version: target, At: at(-time.Minute), Health: Health{Status: HealthCorrupt}},
			{InstanceID: "h2", Customer: "b", Version: target, At: at(-time.Minute), Health: Health{Status: HealthCorrupt}},
			{InstanceID: "h3", Customer: "c", Version: target, At: at(-time.Minute), Health: Health{Status: HealthCorrupt}},
		}, false, 0, 0},
		{"strict policy: a single failure halts", Policy{Window: 10 * time.Minute, MinFailures: 1, MinFailureShare: 0}, join(many(50, moved, "ok"), []InstanceEvent{failed("x", at(-time.Minute))}), nil, true, 10, 1}, // 9 moved within (now-10m, now] + x
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			halt, ev := EvaluateHalt(tt.policy, "acme", target, tt.events, tt.health, t0)
			if halt != tt.halt {
				t.Errorf("halt = %v, want %v (%s)", halt, tt.halt, ev.Reason)
			}
			if ev.Moved != tt.wantMoved || ev.Failed != tt.wantBad {
				t.Errorf("moved %d failed %d, want %d %d", ev.Moved, ev.Failed, tt.wantMoved, tt.wantBad)
			}
			reported := 0
			for _, c := range ev.ByCustomer {
				reported += c.Failed
			}
			if reported != len(ev.Failures) && len(ev.Failures) != MaxEvidenceFailures {
				t.Errorf("%d failures listed for %d failed", len(ev.Failures), reported)
			}
			if !strings.Contains(ev.Reason, "acme@3.30.0") {
				t.Errorf("reason %q", ev.Reason)
			}
		})
	}
}

func TestEvaluateHaltEvidence(t *testing.T) {
	var events []InstanceEvent
	for i := 0; i < 30; i++ {
		events = append(events, InstanceEvent{InstanceID: fmt.Sprintf("i-%02d", i), Customer: fmt.Sprintf("c-%d", i%3), SeenOn: v("3.29.4"), Event: Event{Kind: EventUpgradeFailed, From: v("3.29.4"), To: v("3.30.0"), At: at(-time.Duration(30-i) * time.Minute), Detail: "boom"}})
	}
	halt, ev := EvaluateHalt(DefaultPolicy(), "acme", v("3.30.0"), events, nil, t0)
	if !halt || len(ev.Failures) != MaxEvidenceFailures {
		t.Fatalf("halt %v, %d failures listed", halt, len(ev.Failures))
	}
	for i := 1; i < len(ev.Failures); i++ {
		if ev.Failures[i].At.Before(ev.Failures[i-1].At) {
			t.Fatal("failures not in time order")
		}
	}
	if ev.Failures[0].InstanceID != "i-00" || ev.Failures[0].Kind != "upgrade_failed" || ev.Failures[0].Detail != "boom" {
		t.Fatalf("first failure %+v", ev.Failures[0])
	}
	// The evidence is a JSON document the audit log can store.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"moved":30`, `"failed":30`, `"customers":3`, `"min_customers":2`, `"window":"1h0m0s"`, `"version":"3.30.0"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("evidence JSON lacks %s: %s", want, b)
		}
	}
}

func TestPolicyJSONAndValidate(t *testing.T) {
	var p Policy
	if err := json.Unmarshal([]byte(`{"min_failures": 5}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.MinFailures != 5 || p.Window != DefaultHaltWindow || p.MinFailureShare != DefaultMinFailureShare || p.MinCustomers != DefaultMinCustomers {
		t.Fatalf("omitted fields should keep defaults: %+v", p)
	}
	if err := json.Unmarshal([]byte(`{"window": "forever"}`), &p); err == nil {
		t.Fatal("bad window accepted")
	}
	for _, bad := range []Policy{{Window: 0, MinFailures: 1}, {Window: time.Hour, MinFailures: 0}, {Window: time.Hour, MinFailures: 1, MinFailureShare: 1.5}, {Window: time.Hour, MinFailures: 1, MinCustomers: 0}} {
		if err := bad.Validate(); ErrorCode(err) != EINVALID {
			t.Errorf("Validate(%+v) = %v", bad, err)
		}
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
}
