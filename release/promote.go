package release

import (
	"fmt"
	"sort"
	"time"
)

// Facts is everything the promotion and decision rules read, as the store
// loads it. Slices need not be sorted. Promotions are the recorded ones (see
// Availability); Adoption is current evidence per release and ring.
type Facts struct {
	Products    []Product    `json:"products"`
	Releases    []Release    `json:"releases"`
	Rings       []Ring       `json:"rings"`
	Customers   []Customer   `json:"customers"`
	Gates       []Gate       `json:"gates"`
	GateResults []GateResult `json:"gate_results"`
	Holds       []Hold       `json:"holds"`
	Promotions  []Promotion  `json:"promotions"`
	Adoption    []Adoption   `json:"adoption"`
}

// ReleaseStatus is where one release stands: per ring whether and since when
// it is available, and why not where it is not; its gates and open holds.
type ReleaseStatus struct {
	Release   Release      `json:"release"`
	Rings     []RingStatus `json:"rings"`
	Gates     []GateStatus `json:"gates"`
	OpenHolds []Hold       `json:"open_holds"`
}

// RingStatus is a release's standing in one ring.
type RingStatus struct {
	Ring  string `json:"ring"`
	Order int    `json:"order"`
	// Available means installations of the ring may be offered the release
	// from Since on. Since may lie in the future: the release is soaking in
	// the ring before and every other condition already holds.
	Available bool      `json:"available"`
	Since     time.Time `json:"since,omitzero"`
	// Recorded means a Promotion record exists for this ring; Forced that a
	// person forced it here or beyond.
	Recorded bool `json:"recorded"`
	Forced   bool `json:"forced"`
	// Blocked says why the release is not (yet) available here.
	Blocked  string   `json:"blocked,omitempty"`
	Adoption Adoption `json:"adoption"`
}

// GateStatus is a gate of the release's product and its latest result.
type GateStatus struct {
	Gate     string      `json:"gate"`
	Required bool        `json:"required"`
	Result   *GateResult `json:"result"`
}

// SortRings returns rings ordered for rollout: by Order, then name.
func SortRings(rings []Ring) []Ring {
	out := append([]Ring(nil), rings...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].Name < out[j].Name
	})
	return out
}

type releaseKey struct {
	product string
	version Version
}

// Availability applies the promotion rules to the facts st at now. For every release it
// returns its standing per ring (rings in rollout order), and it returns the
// promotions that took effect by now but are not recorded yet: the caller
// must record them, so that a release stays in a ring once it entered it even
// when the evidence later changes (installations move on, counts drop).
//
// The rules, for an active release:
//   - It enters the first ring when every required gate of its product has a
//     latest result that passed (at the time of the last of those passes, or
//     its creation if the product requires no gate) and no hold is open.
//   - It enters the next ring once it has soaked in the previous one for that
//     ring's SoakTime, no hold is open, and at least the previous ring's
//     MinHealthy installations run it and report healthy there.
//   - A recorded promotion makes it available in that ring from the recorded
//     time; a forced promotion also in every ring before it, overriding
//     gates, holds, soak and evidence.
//   - Paused and pulled releases are available nowhere; their records stay,
//     so a resumed release continues where it was.
func Availability(st Facts, now time.Time) ([]ReleaseStatus, []Promotion) {
	rings := SortRings(st.Rings)

	required := map[string][]Gate{}
	allGates := map[string][]Gate{}
	for _, g := range st.Gates {
		allGates[g.Product] = append(allGates[g.Product], g)
		if g.Required {
			required[g.Product] = append(required[g.Product], g)
		}
	}
	type gateKey struct {
		rel  releaseKey
		gate string
	}
	latest := map[gateKey]GateResult{}
	for _, r := range st.GateResults {
		k := gateKey{releaseKey{r.Product, r.Version}, r.Gate}
		if old, ok := latest[k]; !ok || r.At.After(old.At) {
			latest[k] = r
		}
	}
	holds := map[releaseKey][]Hold{}
	for _, h := range st.Holds {
		if h.Open() {
			k := releaseKey{h.Product, h.Version}
			holds[k] = append(holds[k], h)
		}
	}
	type ringKey struct {
		rel  releaseKey
		ring string
	}
	recorded := map[ringKey]Promotion{}
	for _, p := range st.Promotions {
		k := ringKey{releaseKey{p.Product, p.Version}, p.Ring}
		if old, ok := recorded[k]; !ok || p.At.Before(old.At) {
			recorded[k] = p
		}
	}
	adoption := map[ringKey]Adoption{}
	for _, a := range st.Adoption {
		adoption[ringKey{releaseKey{a.Product, a.Version}, a.Ring}] = a
	}

	releases := append([]Release(nil), st.Releases...)
	sort.SliceStable(releases, func(i, j int) bool {
		if releases[i].Product != releases[j].Product {
			return releases[i].Product < releases[j].Product
		}
		return releases[i].Version.Less(releases[j].Version)
	})

	var statuses []ReleaseStatus
	var due []Promotion
	for _, rel := range releases {
		key := releaseKey{rel.Product, rel.Version}
		rs := ReleaseStatus{Release: rel, Rings: make([]RingStatus, len(rings)), Gates: []GateStatus{}, OpenHolds: holds[key]}
		if rs.OpenHolds == nil {
			rs.OpenHolds = []Hold{}
		}
		sort.Slice(rs.OpenHolds, func(i, j int) bool { return rs.OpenHolds[i].ID < rs.OpenHolds[j].ID })

		gates := append([]Gate(nil), allGates[rel.Product]...)
		sort.Slice(gates, func(i, j int) bool { return gates[i].Name < gates[j].Name })
		gateBlock, gatesPassedAt := "", rel.CreatedAt
		for _, g := range gates {
			gs := GateStatus{Gate: g.Name, Required: g.Required}
			if r, ok := latest[gateKey{key, g.Name}]; ok {
				gs.Result = &r
			}
			rs.Gates = append(rs.Gates, gs)
			if !g.Required || gateBlock != "" {
				continue
			}
			switch {
			case gs.Result == nil:
				gateBlock = fmt.Sprintf("required gate %s has no result", g.Name)
			case !gs.Result.Passed:
				gateBlock = fmt.Sprintf("required gate %s failed", g.Name)
			case gs.Result.At.After(gatesPassedAt):
				gatesPassedAt = gs.Result.At
			}
		}

		// forcedFrom[i] is the earliest forced promotion into ring i or beyond.
		forcedFrom := make([]time.Time, len(rings))
		var earliest time.Time
		for i := len(rings) - 1; i >= 0; i-- {
			if p, ok := recorded[ringKey{key, rings[i].Name}]; ok && p.Forced && (earliest.IsZero() || p.At.Before(earliest)) {
				earliest = p.At
			}
			forcedFrom[i] = earliest
		}

		var prev *RingStatus
		for i, ring := range rings {
			st := &rs.Rings[i]
			st.Ring, st.Order = ring.Name, ring.Order
			st.Adoption = adoption[ringKey{key, ring.Name}]
			st.Adoption.Product, st.Adoption.Version, st.Adoption.Ring = rel.Product, rel.Version, ring.Name
			rec, isRec := recorded[ringKey{key, ring.Name}]
			st.Recorded = isRec
			st.Forced = !forcedFrom[i].IsZero()

			var since time.Time
			switch {
			case isRec && st.Forced:
				since = minTime(rec.At, forcedFrom[i])
			case isRec:
				since = rec.At
			case st.Forced:
				since = forcedFrom[i]
			case len(rs.OpenHolds) > 0:
				h := rs.OpenHolds[0]
				st.Blocked = fmt.Sprintf("hold #%d by %s: %s", h.ID, h.Actor, h.Reason)
			case i == 0 && gateBlock != "":
				st.Blocked = gateBlock
			case i == 0:
				since = gatesPassedAt
			case prev == nil || !prev.Available:
				st.Blocked = fmt.Sprintf("not yet in ring %s", rings[i-1].Name)
			case prev.Adoption.Healthy < rings[i-1].MinHealthy:
				st.Blocked = fmt.Sprintf("%d of %d healthy installations needed in ring %s",
					prev.Adoption.Healthy, rings[i-1].MinHealthy, rings[i-1].Name)
			default:
				since = prev.Since.Add(rings[i-1].SoakTime)
				if since.After(now) {
					st.Blocked = fmt.Sprintf("soaking in ring %s until %s", rings[i-1].Name, since.UTC().Format(time.RFC3339))
				}
			}
			if !since.IsZero() {
				st.Since = since
				st.Available = true
				if !isRec && !st.Forced && !since.After(now) && rel.State == StateActive {
					due = append(due, Promotion{Product: rel.Product, Version: rel.Version, Ring: ring.Name, At: since})
				}
			}
			if rel.State != StateActive {
				st.Available = false
				st.Blocked = fmt.Sprintf("release is %s", rel.State)
			}
			prev = st
		}
		statuses = append(statuses, rs)
	}
	return statuses, due
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
