package release

import (
	"testing"
	"time"
)

// t0 is the reference time of every fixture.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func v(s string) Version { return MustParseVersion(s) }

func at(d time.Duration) time.Time { return t0.Add(d) }

// acmeFacts is a product with three rings — insiders (24h soak, needs 2
// healthy), early (48h soak, 50% rollout, needs 3 healthy), stable — one
// required gate, and one customer per ring.
func acmeFacts() Facts {
	return Facts{
		Products: []Product{{Name: "acme", RequiredGates: []string{"collation-compare"}, Policy: DefaultPolicy()}},
		Rings: []Ring{ // deliberately out of order
			{Product: "acme", Name: "stable", Position: 2, SoakTime: 0, RolloutPercent: 100},
			{Product: "acme", Name: "insiders", Position: 0, SoakTime: 24 * time.Hour, RolloutPercent: 100, MinHealthy: 2},
			{Product: "acme", Name: "early", Position: 1, SoakTime: 48 * time.Hour, RolloutPercent: 50, MinHealthy: 3},
		},
		Customers: []Customer{
			{Product: "acme", Name: "tester", Ring: "insiders"},
			{Product: "acme", Name: "startup", Ring: "early"},
			{Product: "acme", Name: "bigbank", Ring: "stable"},
		},
	}
}

// everywhere records rel as having entered every ring at when.
func everywhere(rel Release, when time.Time) Release {
	for _, r := range []string{"insiders", "early", "stable"} {
		rel.Rings = append(rel.Rings, Promotion{Ring: r, EnteredAt: when})
	}
	return rel
}

func rel(version string, mods ...func(*Release)) Release {
	r := Release{Product: "acme", Version: v(version), Status: StatusOK, CreatedAt: at(-time.Hour)}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func pass(version string, when time.Time) GateResult {
	return GateResult{Product: "acme", Version: v(version), Name: "collation-compare", Status: GatePass, PostedAt: when}
}

func fail(version string, when time.Time) GateResult {
	return GateResult{Product: "acme", Version: v(version), Name: "collation-compare", Status: GateFail, PostedAt: when}
}

func mustDecide(t testing.TB, s *Snapshot, inst Installation, now time.Time) Answer {
	t.Helper()
	a, err := Decide(s, inst, "nonce-0123456789", now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
