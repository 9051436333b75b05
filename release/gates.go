package release

import "fmt"

// GatesNotPassed lists, for a release of product p with the given gate
// results (latest per gate), every required gate whose latest result is
// not a pass, as "NAME missing" or "NAME failed". Empty means the release
// passed its product's gates.
func GatesNotPassed(p Product, results []GateResult) []string {
	latest := map[string]GateResult{}
	for _, r := range results {
		if old, ok := latest[r.Name]; !ok || r.PostedAt.After(old.PostedAt) {
			latest[r.Name] = r
		}
	}
	var out []string
	for _, g := range p.RequiredGates {
		r, ok := latest[g]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s missing", g))
		case r.Status != GatePass:
			out = append(out, fmt.Sprintf("%s failed", g))
		}
	}
	return out
}
