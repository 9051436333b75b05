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
	ix := indexFacts(facts)
	var statuses []ReleaseStatus
	var due []Due
	for _, rel := range releaseOrder(facts.Releases) {
		rs, d := ix.releaseStatus(rel, now)
		statuses = append(statuses, rs)
		due = append(due, d...)
	}
	return statuses, due
}

// factIndex is Facts looked up by product, release and ring: each
// product's rings in rollout order and required gates, each release's
// latest result per gate and open holds, adoption per release and ring, and
// each ring's size.
type factIndex struct {
	rings    map[string][]Ring
	required map[string][]string
	latest   map[releaseKey]map[string]GateResult
	holds    map[releaseKey][]Hold
	adoption map[ringKey]Adoption
	sizes    map[[2]string]int
}

// indexFacts builds the lookups Availability decides with.
func indexFacts(facts Facts) factIndex {
	ix := factIndex{rings: map[string][]Ring{}, required: map[string][]string{}, latest: map[releaseKey]map[string]GateResult{},
		holds: map[releaseKey][]Hold{}, adoption: map[ringKey]Adoption{}, sizes: map[[2]string]int{}}
	for _, r := range facts.Rings {
		ix.rings[r.Product] = append(ix.rings[r.Product], r)
	}
	for p, rs := range ix.rings {
		ix.rings[p] = SortRings(rs)
	}
	for _, p := range facts.Products {
		ix.required[p.Name] = p.RequiredGates
	}
	for _, r := range facts.GateResults {
		k := releaseKey{r.Product, r.Version}
		if ix.latest[k] == nil {
			ix.latest[k] = map[string]GateResult{}
		}
		if old, ok := ix.latest[k][r.Name]; !ok || r.PostedAt.After(old.PostedAt) {
			ix.latest[k][r.Name] = r
		}
	}
	for _, h := range facts.Holds {
		if h.Open() {
			k := releaseKey{h.Product, h.Version}
			ix.holds[k] = append(ix.holds[k], h)
		}
	}
	for _, a := range facts.Adoption {
		ix.adoption[ringKey{releaseKey{a.Product, a.Version}, a.Ring}] = a
	}
	for _, s := range facts.RingSizes {
		ix.sizes[[2]string{s.Product, s.Ring}] = s.Installations
	}
	return ix
}

// releaseOrder returns a copy of releases by product, then version.
func releaseOrder(releases []Release) []Release {
	out := append([]Release(nil), releases...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Product != out[j].Product {
			return out[i].Product < out[j].Product
		}
		return out[i].Version.Less(out[j].Version)
	})
	return out
}

// releaseStatus decides where rel is available at now, ring by ring in
// rollout order (each ring's state depends on the one before), and returns
// the entries the rules make due.
func (ix factIndex) releaseStatus(rel Release, now time.Time) (ReleaseStatus, []Due) {
	key := releaseKey{rel.Product, rel.Version}
	rs := ReleaseStatus{Release: rel, Version: rel.Version, Status: rel.Status, Paused: rel.Paused, Pulled: rel.Pulled,
		Gates: []GateResult{}, Holds: append([]Hold{}, ix.holds[key]...)}
	sort.Slice(rs.Holds, func(i, j int) bool {
		if !rs.Holds[i].RaisedAt.Equal(rs.Holds[j].RaisedAt) {
			return rs.Holds[i].RaisedAt.Before(rs.Holds[j].RaisedAt)
		}
		return rs.Holds[i].ID < rs.Holds[j].ID
	})
	for _, g := range ix.latest[key] {
		rs.Gates = append(rs.Gates, g)
	}
	sort.Slice(rs.Gates, func(i, j int) bool { return rs.Gates[i].Name < rs.Gates[j].Name })

	p := ringPlan{rel: rel, rings: ix.rings[rel.Product], holds: rs.Holds, now: now,
		gates: checkGates(rel, ix.required[rel.Product], ix.latest[key])}
	rs.MissingGates = p.gates.missing
	p.recorded, p.forcedFrom = ringEntries(rel, p.rings)

	var due []Due
	rs.Rings = make([]RingStatus, len(p.rings))
	for i, ring := range p.rings {
		st := &rs.Rings[i]
		st.Ring, st.Position = ring.Name, ring.Position
		a := ix.adoption[ringKey{key, ring.Name}]
		st.Installations, st.Adoption, st.Healthy, st.Failed = ix.sizes[[2]string{rel.Product, ring.Name}], a.Installations, a.Healthy, a.Failed
		st.HealthyUncounted = a.HealthyUncounted
		_, st.recorded = p.recorded[ring.Name]
		st.Forced = !p.forcedFrom[i].IsZero()
		var prev *RingStatus
		if i > 0 {
			prev = &rs.Rings[i-1]
		}
		if since := p.entry(i, st, prev); !since.IsZero() {
			if d, ok := p.enter(i, st, since); ok {
				due = append(due, d)
			}
		}
		if rel.Status != StatusOK {
			st.available = false
			st.State, st.Reason = RingBlocked, fmt.Sprintf("release is %s", rel.Status)
		}
	}
	return rs, due
}

// gateVerdict is what a release's required gates say about its first ring:
// the first that failed (block), the first with no result (wait), when the
// last of them passed (the release's creation if none is required), and
// the required gates with no result.
type gateVerdict struct {
	block, wait string
	passedAt    time.Time
	missing     []string
}

// checkGates reads the latest results of the required gates of rel.
func checkGates(rel Release, required []string, latest map[string]GateResult) gateVerdict {
	g := gateVerdict{passedAt: rel.CreatedAt, missing: []string{}}
	for _, name := range required {
		r, ok := latest[name]
		switch {
		case !ok:
			g.missing = append(g.missing, name)
			if g.wait == "" {
				g.wait = fmt.Sprintf("waiting for required gate %s", name)
			}
		case r.Status != GatePass:
			if g.block == "" {
				g.block = fmt.Sprintf("required gate %s failed", name)
			}
		case r.PostedAt.After(g.passedAt):
			g.passedAt = r.PostedAt
		}
	}
	return g
}

// ringEntries returns the recorded entry of rel into each ring (the
// earliest; a forced one wins a tie) and, for each ring of rings, the
// earliest forced entry into it or a ring beyond it (zero if none).
func ringEntries(rel Release, rings []Ring) (map[string]Promotion, []time.Time) {
	recorded := map[string]Promotion{}
	for _, p := range rel.Rings {
		if old, ok := recorded[p.Ring]; !ok || p.EnteredAt.Before(old.EnteredAt) || (p.Forced && !old.Forced && p.EnteredAt.Equal(old.EnteredAt)) {
			recorded[p.Ring] = p
		}
	}
	forcedFrom := make([]time.Time, len(rings))
	var earliest time.Time
	for i := len(rings) - 1; i >= 0; i-- {
		if p, ok := recorded[rings[i].Name]; ok && p.Forced && (earliest.IsZero() || p.EnteredAt.Before(earliest)) {
			earliest = p.EnteredAt
		}
		forcedFrom[i] = earliest
	}
	return recorded, forcedFrom
}

// ringPlan is what deciding one release's rings needs: the release, its
// product's rings in rollout order, its open holds (oldest first), what its
// required gates say, its recorded and forced entries (ringEntries), and
// the time of the decision.
type ringPlan struct {
	rel        Release
	rings      []Ring
	holds      []Hold
	gates      gateVerdict
	recorded   map[string]Promotion
	forcedFrom []time.Time
	now        time.Time
}

// entry returns when the release may enter ring i by the rules, or zero
// when it may not yet, in which case it sets st's state and reason. st is
// ring i's status with Forced and recorded set; prev is ring i-1's (nil
// for the first ring), already decided.
func (p *ringPlan) entry(i int, st, prev *RingStatus) time.Time {
	rec, isRec := p.recorded[p.rings[i].Name]
	switch {
	case isRec && st.Forced:
		return minTime(rec.EnteredAt, p.forcedFrom[i])
	case isRec:
		return rec.EnteredAt
	case st.Forced:
		return p.forcedFrom[i]
	case len(p.holds) > 0:
		h := p.holds[0]
		st.State, st.Reason = RingBlocked, fmt.Sprintf("hold %s by %s: %s", h.ID, h.RaisedBy, h.Reason)
	case p.gates.block != "":
		// A required gate failing after the release entered earlier
		// rings stops it like a hold: it enters no further ring.
		st.State, st.Reason = RingBlocked, p.gates.block
	case i == 0 && p.gates.wait != "":
		st.State, st.Reason = RingWaiting, p.gates.wait
	case i == 0:
		return p.gates.passedAt
	case !prev.available || (prev.since.After(p.now) && p.rings[i-1].MinHealthy > 0):
		st.State, st.Reason = RingWaiting, fmt.Sprintf("not yet in ring %s", p.rings[i-1].Name)
	case prev.Healthy < p.rings[i-1].MinHealthy:
		st.State, st.Reason = RingWaiting, fmt.Sprintf("%d of %d healthy installations needed in ring %s",
			prev.Healthy, p.rings[i-1].MinHealthy, p.rings[i-1].Name)+missingEvidence(prev)
	default:
		return soakFrom(p.rel, prev.since).Add(p.rings[i-1].SoakTime)
	}
	return time.Time{}
}

// enter makes the release available in ring i from since: entered (active,
// or soaking while the ring's soak time runs and a ring follows) once since
// has come, waiting until then. It returns the entry the rules make due
// now, if any: one not recorded yet, of a release with status ok.
func (p *ringPlan) enter(i int, st *RingStatus, since time.Time) (Due, bool) {
	ruled := !st.recorded && !st.Forced
	if ruled && since.Before(p.now) {
		// The facts do not say when the last condition (evidence, a
		// resolved hold, a gate) was met; it was met by now.
		since = p.now
	}
	st.available, st.since = true, since
	if since.After(p.now) {
		st.State, st.Reason = RingWaiting, fmt.Sprintf("available from %s", fmtTime(since))
		if i > 0 && ruled {
			st.Reason = fmt.Sprintf("soaking in ring %s until %s", p.rings[i-1].Name, fmtTime(since))
		}
		return Due{}, false
	}
	t := since
	st.EnteredAt = &t
	st.State = RingActive
	if end := soakFrom(p.rel, since).Add(p.rings[i].SoakTime); i+1 < len(p.rings) && end.After(p.now) {
		st.State, st.Reason = RingSoaking, fmt.Sprintf("soaking until %s", fmtTime(end))
	}
	if ruled && p.rel.Status == StatusOK {
		return Due{Product: p.rel.Product, Version: p.rel.Version, Promotion: Promotion{Ring: p.rings[i].Name, EnteredAt: since}}, true
	}
	return Due{}, false
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
