package release

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Facts is everything the promotion and decision rules read, as the store
// loads it. Slices need not be sorted. Rings and customers belong to products
// (their Product field); a release's recorded ring entries are its Rings.
// Adoption is current evidence per release and ring; RingSizes only feed
// status displays.
type Facts struct {
	Products    []Product    `json:"products"`
	Releases    []Release    `json:"releases"`
	Rings       []Ring       `json:"rings"`
	Customers   []Customer   `json:"customers"`
	GateResults []GateResult `json:"gate_results"`
	Holds       []Hold       `json:"holds"`
	Adoption    []Adoption   `json:"adoption"`
	RingSizes   []RingSize   `json:"ring_sizes"`
}

// ReleaseStatus is where one release stands: its gates, open holds and, per
// ring of its product, whether and since when it is available and why not.
type ReleaseStatus struct {
	Release Release `json:"-"`
	Version Version `json:"version"`
	Status  Status  `json:"status"`
	// Paused and Pulled repeat the release's pause and pull records.
	Paused *Pause `json:"paused,omitempty"`
	Pulled *Pull  `json:"pull,omitempty"`
	// Gates holds the latest result of every gate posted for the release,
	// by name; MissingGates the required gates without a result.
	Gates        []GateResult `json:"gates"`
	MissingGates []string     `json:"missing_gates"`
	Holds        []Hold       `json:"holds"`
	Rings        []RingStatus `json:"rings"`
}

// RingState summarises a release's standing in a ring.
type RingState string

// Ring states.
const (
	// RingActive: installations of the ring are offered the release.
	RingActive RingState = "active"
	// RingSoaking: offered in the ring, which is still within its soak time,
	// so the release may not enter the next ring yet.
	RingSoaking RingState = "soaking"
	// RingWaiting: not offered yet; nothing is wrong, a condition (gate
	// result, soak time, evidence, an earlier ring) has not been met yet.
	RingWaiting RingState = "waiting"
	// RingBlocked: not offered because of a failed required gate, an open
	// hold, or the release being paused or pulled.
	RingBlocked RingState = "blocked"
)

// RingStatus is a release's standing in one ring.
type RingStatus struct {
	Ring     string    `json:"ring"`
	Position int       `json:"position"`
	State    RingState `json:"state"`
	// EnteredAt is when the release became available in the ring; nil if it
	// has not (or only will, see Reason).
	EnteredAt *time.Time `json:"entered_at"`
	// Forced means a person forced the release into this ring or beyond.
	Forced bool `json:"forced"`
	// Reason says why the ring is soaking, waiting or blocked.
	Reason string `json:"reason,omitempty"`
	// Installations counts the ring's installations of the product;
	// Adoption those running this release, Healthy and Failed among them.
	Installations int `json:"installations"`
	Adoption      int `json:"adoption"`
	Healthy       int `json:"healthy"`
	Failed        int `json:"failed"`
	// HealthyUncounted counts installations running the release that
	// report healthy but do not count as evidence (first seen after the
	// release was created).
	HealthyUncounted int `json:"healthy_uncounted,omitempty"`

	// available and since say whether and from when Decide may offer the
	// release here; since may lie in the future (soak ending before the next
	// snapshot).
	available bool
	since     time.Time
	recorded  bool
}

// Due is a ring entry that took effect by the time the rules were applied
// and is not recorded yet.
type Due struct {
	Product   string    `json:"product"`
	Version   Version   `json:"version"`
	Promotion Promotion `json:"promotion"`
}

// SortRings returns rings in rollout order: by Position, then name.
func SortRings(rings []Ring) []Ring {
	out := append([]Ring(nil), rings...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].Name < out[j].Name
	})
	return out
}

type releaseKey struct {
	product string
	version Version
}

type ringKey struct {
	rel  releaseKey
	ring string
}

// Availability applies the promotion rules to the facts at now. For every
// release (by product, lowest version first) it returns its standing per ring
// of its product in rollout order, and it returns the ring entries that took
// effect by now but are not recorded yet: the caller must record them (append
// to the release's Rings), so that a release stays in a ring once it entered
// it even when the evidence later changes (installations move on, counts
// drop).
//
// The rules, for a release with status ok:
//   - It enters the first ring when every required gate of its product has a
//     latest result that passed — at the time of the last of those passes, or
//     at its creation if the product requires no gate — and no hold is open.
//   - It enters the next ring once it has soaked in the previous one for that
//     ring's SoakTime, no hold is open, no required gate's latest result
//     failed, and at least the previous ring's MinHealthy installations run
//     it and report healthy there. A gate failing after the release entered
//     some rings thus stops it like a hold; the rings it entered keep it.
//   - A recorded entry makes it available in that ring from the recorded
//     time; a forced entry also in every ring before it, overriding gates,
//     holds, soak and evidence.
//   - Paused and pulled releases are available nowhere; their records stay,
//     so a resumed release continues where it was, except that the soak in
//     its current ring counts again from the resume (ResumedAt).
//
// An entry the rules make (not yet recorded) takes effect at the end of the
// soak time when that lies ahead, and otherwise at now: the facts do not say
// when the evidence arrived or a hold was resolved, so the entry is dated by
// the first evaluation that sees every condition met (the server evaluates
// every few seconds). The soak time in a ring therefore always counts from
// the release's actual entry into it, never from a moment it was still held
// back.
func Availability(facts Facts, now time.Time) ([]ReleaseStatus, []Due) {
	rings := map[string][]Ring{}
	for _, r := range facts.Rings {
		rings[r.Product] = append(rings[r.Product], r)
	}
	for p, rs := range rings {
		rings[p] = SortRings(rs)
	}
	required := map[string][]string{}
	for _, p := range facts.Products {
		required[p.Name] = p.RequiredGates
	}
	latest := map[releaseKey]map[string]GateResult{}
	for _, r := range facts.GateResults {
		k := releaseKey{r.Product, r.Version}
		if latest[k] == nil {
			latest[k] = map[string]GateResult{}
		}
		if old, ok := latest[k][r.Name]; !ok || r.PostedAt.After(old.PostedAt) {
			latest[k][r.Name] = r
		}
	}
	holds := map[releaseKey][]Hold{}
	for _, h := range facts.Holds {
		if h.Open() {
			k := releaseKey{h.Product, h.Version}
			holds[k] = append(holds[k], h)
		}
	}
	adoption := map[ringKey]Adoption{}
	for _, a := range facts.Adoption {
		adoption[ringKey{releaseKey{a.Product, a.Version}, a.Ring}] = a
	}
	sizes := map[[2]string]int{}
	for _, s := range facts.RingSizes {
		sizes[[2]string{s.Product, s.Ring}] = s.Installations
	}

	releases := append([]Release(nil), facts.Releases...)
	sort.SliceStable(releases, func(i, j int) bool {
		if releases[i].Product != releases[j].Product {
			return releases[i].Product < releases[j].Product
		}
		return releases[i].Version.Less(releases[j].Version)
	})

	var statuses []ReleaseStatus
	var due []Due
	for _, rel := range releases {
		key := releaseKey{rel.Product, rel.Version}
		rs := ReleaseStatus{Release: rel, Version: rel.Version, Status: rel.Status, Paused: rel.Paused, Pulled: rel.Pulled,
			Gates: []GateResult{}, MissingGates: []string{}, Holds: append([]Hold{}, holds[key]...)}
		sort.Slice(rs.Holds, func(i, j int) bool {
			if !rs.Holds[i].RaisedAt.Equal(rs.Holds[j].RaisedAt) {
				return rs.Holds[i].RaisedAt.Before(rs.Holds[j].RaisedAt)
			}
			return rs.Holds[i].ID < rs.Holds[j].ID
		})
		for _, g := range latest[key] {
			rs.Gates = append(rs.Gates, g)
		}
		sort.Slice(rs.Gates, func(i, j int) bool { return rs.Gates[i].Name < rs.Gates[j].Name })

		// Required gates decide the first ring.
		gateBlock, gateWait, gatesPassedAt := "", "", rel.CreatedAt
		for _, name := range required[rel.Product] {
			r, ok := latest[key][name]
			switch {
			case !ok:
				rs.MissingGates = append(rs.MissingGates, name)
				if gateWait == "" {
					gateWait = fmt.Sprintf("waiting for required gate %s", name)
				}
			case r.Status != GatePass:
				if gateBlock == "" {
					gateBlock = fmt.Sprintf("required gate %s failed", name)
				}
			case r.PostedAt.After(gatesPassedAt):
				gatesPassedAt = r.PostedAt
			}
		}

		prs := rings[rel.Product]
		recorded := map[string]Promotion{}
		for _, p := range rel.Rings {
			if old, ok := recorded[p.Ring]; !ok || p.EnteredAt.Before(old.EnteredAt) || (p.Forced && !old.Forced && p.EnteredAt.Equal(old.EnteredAt)) {
				recorded[p.Ring] = p
			}
		}
		// forcedFrom[i] is the earliest forced entry into ring i or beyond.
		forcedFrom := make([]time.Time, len(prs))
		var earliest time.Time
		for i := len(prs) - 1; i >= 0; i-- {
			if p, ok := recorded[prs[i].Name]; ok && p.Forced && (earliest.IsZero() || p.EnteredAt.Before(earliest)) {
				earliest = p.EnteredAt
			}
			forcedFrom[i] = earliest
		}

		rs.Rings = make([]RingStatus, len(prs))
		for i, ring := range prs {
			st := &rs.Rings[i]
			st.Ring, st.Position = ring.Name, ring.Position
			a := adoption[ringKey{key, ring.Name}]
			st.Installations, st.Adoption, st.Healthy, st.Failed = sizes[[2]string{rel.Product, ring.Name}], a.Installations, a.Healthy, a.Failed
			st.HealthyUncounted = a.HealthyUncounted
			rec, isRec := recorded[ring.Name]
			st.recorded = isRec
			st.Forced = !forcedFrom[i].IsZero()

			var prev *RingStatus
			if i > 0 {
				prev = &rs.Rings[i-1]
			}
			var since time.Time
			switch {
			case isRec && st.Forced:
				since = minTime(rec.EnteredAt, forcedFrom[i])
			case isRec:
				since = rec.EnteredAt
			case st.Forced:
				since = forcedFrom[i]
			case len(rs.Holds) > 0:
				h := rs.Holds[0]
				st.State, st.Reason = RingBlocked, fmt.Sprintf("hold %s by %s: %s", h.ID, h.RaisedBy, h.Reason)
			case gateBlock != "":
				// A required gate failing after the release entered earlier
				// rings stops it like a hold: it enters no further ring.
				st.State, st.Reason = RingBlocked, gateBlock
			case i == 0 && gateWait != "":
				st.State, st.Reason = RingWaiting, gateWait
			case i == 0:
				since = gatesPassedAt
			case !prev.available || (prev.since.After(now) && prs[i-1].MinHealthy > 0):
				st.State, st.Reason = RingWaiting, fmt.Sprintf("not yet in ring %s", prs[i-1].Name)
			case prev.Healthy < prs[i-1].MinHealthy:
				st.State, st.Reason = RingWaiting, fmt.Sprintf("%d of %d healthy installations needed in ring %s",
					prev.Healthy, prs[i-1].MinHealthy, prs[i-1].Name)+missingEvidence(prev)
			default:
				since = soakFrom(rel, prev.since).Add(prs[i-1].SoakTime)
			}
			if !since.IsZero() {
				if !isRec && !st.Forced && since.Before(now) {
					// The facts do not say when the last condition (evidence,
					// a resolved hold, a gate) was met; it was met by now.
					since = now
				}
				st.available, st.since = true, since
				if since.After(now) {
					st.State, st.Reason = RingWaiting, fmt.Sprintf("available from %s", fmtTime(since))
					if i > 0 && !isRec && !st.Forced {
						st.Reason = fmt.Sprintf("soaking in ring %s until %s", prs[i-1].Name, fmtTime(since))
					}
				} else {
					t := since
					st.EnteredAt = &t
					st.State = RingActive
					if end := soakFrom(rel, since).Add(ring.SoakTime); i+1 < len(prs) && end.After(now) {
						st.State, st.Reason = RingSoaking, fmt.Sprintf("soaking until %s", fmtTime(end))
					}
					if !isRec && !st.Forced && rel.Status == StatusOK {
						due = append(due, Due{Product: rel.Product, Version: rel.Version, Promotion: Promotion{Ring: ring.Name, EnteredAt: since}})
					}
				}
			}
			if rel.Status != StatusOK {
				st.available = false
				st.State, st.Reason = RingBlocked, fmt.Sprintf("release is %s", rel.Status)
			}
		}
		statuses = append(statuses, rs)
	}
	return statuses, due
}

// soakFrom is when rel's soak in a ring it entered at entered counts from:
// the entry, or its last resume if later. Time spent paused does not count
// as soak; a pause restarts the soak of the ring the release is in.
func soakFrom(rel Release, entered time.Time) time.Time {
	if rel.ResumedAt != nil && rel.ResumedAt.After(entered) {
		return *rel.ResumedAt
	}
	return entered
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// missingEvidence explains why a ring's installations do not (yet) count
// as promotion evidence: none runs the release, some report healthy but
// were first seen after the release was created, others have not reported
// healthy.
func missingEvidence(prev *RingStatus) string {
	if prev.Adoption == 0 {
		if prev.Installations == 0 {
			return fmt.Sprintf(": ring %s has no installations (assign customers to it)", prev.Ring)
		}
		return fmt.Sprintf(": none of its %d installation(s) runs this release yet", prev.Installations)
	}
	var why []string
	if prev.HealthyUncounted > 0 {
		why = append(why, fmt.Sprintf("%d healthy installation(s) do not count: first seen after the release was created "+
			"(only installations known before a release count as its evidence, so new enrollments cannot promote it)", prev.HealthyUncounted))
	}
	if n := prev.Adoption - prev.Healthy - prev.Failed - prev.HealthyUncounted; n > 0 {
		why = append(why, fmt.Sprintf("%d running it have not reported healthy", n))
	}
	if prev.Failed > 0 {
		why = append(why, fmt.Sprintf("%d report failure", prev.Failed))
	}
	if len(why) == 0 {
		return ""
	}
	return ": " + strings.Join(why, "; ")
}
