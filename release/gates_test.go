package release

import (
	"slices"
	"testing"
	"time"
)

func TestGatesNotPassed(t *testing.T) {
	p := Product{Name: "acme", RequiredGates: []string{"collation-compare", "upgrade-test"}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		results []GateResult
		want    []string
	}{
		{"none posted", nil, []string{"collation-compare missing", "upgrade-test missing"}},
		{"one failed", []GateResult{{Name: "collation-compare", Status: GatePass, PostedAt: t0}, {Name: "upgrade-test", Status: GateFail, PostedAt: t0}}, []string{"upgrade-test failed"}},
		{"latest wins", []GateResult{{Name: "collation-compare", Status: GateFail, PostedAt: t0}, {Name: "collation-compare", Status: GatePass, PostedAt: t0.Add(time.Minute)},
			{Name: "upgrade-test", Status: GatePass, PostedAt: t0}}, nil},
	} {
		if got := GatesNotPassed(p, tc.results); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := GatesNotPassed(Product{Name: "free"}, nil); len(got) != 0 {
		t.Errorf("a product without gates: %v", got)
	}
}
