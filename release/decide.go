package release

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"time"
)

// DefaultAnswerTTL is how long a signed answer stays valid by default.
const DefaultAnswerTTL = time.Hour

// Snapshot is an immutable, read-optimised view of the facts at one moment,
// built by NewSnapshot; Decide reads it without locks. The server rebuilds it
// whenever the facts change, and at least every few seconds so that soak
// times ending and evidence arriving take effect.
type Snapshot struct {
	builtAt   time.Time
	answerTTL time.Duration
	products  map[string]*productIndex
	statuses  []ReleaseStatus
	due       []Due
}

// productIndex is one product's rings, customers and releases.
type productIndex struct {
	product Product
	rings   []Ring
	// customerRing maps a customer to its ring's index in rings.
	customerRing map[string]int
	// releases are in ascending version order.
	releases []releaseEntry
}

// releaseEntry is a release with, per ring index, the Unix nanosecond time it
// is available from (math.MaxInt64 when it is not).
type releaseEntry struct {
	rel   Release
	since []int64
}

// NewSnapshot builds a Snapshot of facts at now. Answers it decides expire
// answerTTL after they are issued (DefaultAnswerTTL if answerTTL <= 0).
// Inconsistent facts do not fail the build: a customer whose ring is unknown
// is treated as being in its product's last ring, the most cautious one, and
// an installation of an unknown customer likewise.
func NewSnapshot(facts Facts, answerTTL time.Duration, now time.Time) *Snapshot {
	if answerTTL <= 0 {
		answerTTL = DefaultAnswerTTL
	}
	statuses, due := Availability(facts, now)
	s := &Snapshot{
		builtAt:   now,
		answerTTL: answerTTL,
		products:  make(map[string]*productIndex, len(facts.Products)),
		statuses:  statuses,
		due:       due,
	}
	for _, p := range facts.Products {
		s.products[p.Name] = &productIndex{product: p, customerRing: map[string]int{}}
	}
	for _, r := range facts.Rings {
		if p := s.products[r.Product]; p != nil {
			p.rings = append(p.rings, r)
		}
	}
	for _, p := range s.products {
		p.rings = SortRings(p.rings)
	}
	for _, c := range facts.Customers {
		p := s.products[c.Product]
		if p == nil {
			continue
		}
		i := len(p.rings) - 1
		for j, r := range p.rings {
			if r.Name == c.Ring {
				i = j
			}
		}
		p.customerRing[c.Name] = i
	}
	for _, st := range statuses { // sorted by product, then version
		p := s.products[st.Release.Product]
		if p == nil {
			continue
		}
		e := releaseEntry{rel: st.Release, since: make([]int64, len(st.Rings))}
		for i, r := range st.Rings {
			e.since[i] = math.MaxInt64
			if r.available {
				e.since[i] = r.since.UnixNano()
			}
		}
		p.releases = append(p.releases, e)
	}
	return s
}

// BuiltAt returns the time the snapshot was built.
func (s *Snapshot) BuiltAt() time.Time { return s.builtAt }

// Due returns the promotions that took effect by the build time and are not
// recorded yet; the server records them (see Availability).
func (s *Snapshot) Due() []Due { return append([]Due(nil), s.due...) }

// Status returns the standing of every release of product, lowest version
// first; ENOTFOUND if the product is unknown.
func (s *Snapshot) Status(product string) ([]ReleaseStatus, error) {
	if s.products[product] == nil {
		return nil, Errorf(ENOTFOUND, "product %s not found", product)
	}
	var out []ReleaseStatus
	for _, st := range s.statuses {
		if st.Release.Product == product {
			out = append(out, st)
		}
	}
	return out, nil
}

// Product returns the named product; ENOTFOUND if unknown.
func (s *Snapshot) Product(name string) (Product, error) {
	p := s.products[name]
	if p == nil {
		return Product{}, Errorf(ENOTFOUND, "product %s not found", name)
	}
	return p.product, nil
}

// Release returns a release; ENOTFOUND if unknown.
func (s *Snapshot) Release(product string, v Version) (Release, error) {
	if p := s.products[product]; p != nil {
		if e := p.find(v); e != nil {
			return e.rel, nil
		}
	}
	return Release{}, Errorf(ENOTFOUND, "release %s@%s not found", product, v)
}

// find returns the entry of version v, or nil.
func (p *productIndex) find(v Version) *releaseEntry {
	i := sort.Search(len(p.releases), func(i int) bool { return !p.releases[i].rel.Version.Less(v) })
	if i < len(p.releases) && p.releases[i].rel.Version == v {
		return &p.releases[i]
	}
	return nil
}

// Bucket places an installation in [0, 100) for a release, stickily: the same
// installation and release always land in the same place, and different
// releases shuffle installations independently (so the same few are not
// always first). It is the first 8 bytes of
// SHA-256(product "\n" version "\n" instance_id), big-endian, scaled to
// [0, 100). An installation gets a release in a ring with rollout percent p
// iff Bucket < p.
func Bucket(product string, v Version, instanceID string) float64 {
	var buf [512]byte
	b := append(buf[:0], product...)
	b = append(b, '\n')
	b = v.appendTo(b)
	b = append(b, '\n')
	b = append(b, instanceID...)
	sum := sha256.Sum256(b)
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53) * 100
}

// Decide answers an installation's check-in from the snapshot at now, echoing
// nonce. It is a pure function of its arguments.
//
// Current: status ok unless the installation's own version is paused or
// pulled. A pulled version carries its guidance: upgrade to X (offered
// directly, outside rings and rollout, while X is active; hold if X has been
// paused since), roll back to Y, or hold (no offer).
//
// Offer: the highest release above the installation's version that is active,
// available in its customer's ring at now, and inside the ring's rollout for
// this installation — but never beyond the lowest required stop above the
// installation's version (pulled releases are not stops). Nil if none.
func Decide(s *Snapshot, inst Installation, nonce string, now time.Time) (Answer, error) {
	p := s.products[inst.Product]
	if p == nil {
		return Answer{}, Errorf(ENOTFOUND, "product %s not found", inst.Product)
	}
	ans := Answer{
		InstanceID: inst.InstanceID,
		Nonce:      nonce,
		IssuedAt:   now,
		ExpiresAt:  now.Add(s.answerTTL),
		Current:    Current{Version: inst.Version, Status: StatusOK, Action: ActionNone},
		Notices:    []Notice{},
	}
	cur := p.find(inst.Version)
	if cur == nil {
		ans.Notices = append(ans.Notices, Notice{Kind: NoticeUnknownVersion,
			Message: fmt.Sprintf("%s %s is not a release this server knows", inst.Product, inst.Version)})
	} else {
		switch cur.rel.Status {
		case StatusPaused:
			c := &ans.Current
			c.Status = StatusPaused
			n := Notice{Kind: NoticePaused, Message: fmt.Sprintf("%s %s is paused", inst.Product, inst.Version)}
			if pz := cur.rel.Paused; pz != nil {
				c.Reason, c.IncidentURL = pz.Reason, pz.IncidentURL
				n.Message += ": " + pz.Reason
				n.URL = pz.IncidentURL
			}
			ans.Notices = append(ans.Notices, n)
		case StatusPulled:
			decidePulled(p, cur, &ans)
			return ans, nil
		}
	}

	// The candidates are releases above the current version, up to the
	// lowest required stop.
	lo := sort.Search(len(p.releases), func(i int) bool { return inst.Version.Less(p.releases[i].rel.Version) })
	hi := len(p.releases)
	for i := lo; i < hi; i++ {
		if r := p.releases[i].rel; r.RequiredStop && r.Status != StatusPulled {
			hi = i + 1
			break
		}
	}
	if len(p.rings) == 0 {
		return ans, nil
	}
	ringIdx := len(p.rings) - 1
	if i, ok := p.customerRing[inst.Customer]; ok {
		ringIdx = i
	}
	ring := p.rings[ringIdx]
	nowNano := now.UnixNano()
	for i := hi - 1; i >= lo; i-- {
		e := &p.releases[i]
		if e.rel.Status != StatusOK || e.since[ringIdx] > nowNano {
			continue
		}
		if ring.RolloutPercent < 100 && Bucket(inst.Product, e.rel.Version, inst.InstanceID) >= ring.RolloutPercent {
			continue
		}
		ans.Offer = &Offer{Version: e.rel.Version, NotesURL: e.rel.NotesURL, RequiredStop: e.rel.RequiredStop, Waives: e.rel.Waives,
			RequiresPostgres: e.rel.RequiresPostgres}
		if e.rel.RequiredStop && i < len(p.releases)-1 {
			ans.Notices = append(ans.Notices, Notice{Kind: NoticeRequiredStop, URL: e.rel.NotesURL,
				Message: fmt.Sprintf("%s %s is a required upgrade stop: install it before any later release", inst.Product, e.rel.Version)})
		}
		break
	}
	return ans, nil
}

// decidePulled fills the answer for an installation on a pulled release.
func decidePulled(p *productIndex, cur *releaseEntry, ans *Answer) {
	r := cur.rel
	pl := r.Pulled
	if pl == nil { // inconsistent facts: pulled without a record; hold is safest
		pl = &Pull{Action: ActionHold}
	}
	c := &ans.Current
	c.Status, c.Reason, c.IncidentURL = StatusPulled, pl.Reason, pl.IncidentURL
	c.Action, c.Target = pl.Action, pl.Target
	msg := fmt.Sprintf("%s %s has been pulled: %s", r.Product, r.Version, pl.Reason)
	var extra []Notice
	switch pl.Action {
	case ActionUpgrade:
		t := p.find(pl.Target)
		if t == nil || t.rel.Status != StatusOK {
			c.Action, c.Target = ActionHold, Version{}
			msg += fmt.Sprintf("; the recommended upgrade %s is not available now, stay on %s", pl.Target, r.Version)
			break
		}
		// A required stop released since the pull lies on the way: go there
		// first (or wait, while it is paused).
		if stop := p.stopBetween(r.Version, t.rel.Version); stop != nil {
			if stop.rel.Status != StatusOK {
				c.Action, c.Target = ActionHold, Version{}
				msg += fmt.Sprintf("; required upgrade stop %s on the way to %s is %s, stay on %s", stop.rel.Version, t.rel.Version, stop.rel.Status, r.Version)
				break
			}
			t = stop
			c.Target = stop.rel.Version
			extra = append(extra, Notice{Kind: NoticeRequiredStop, URL: stop.rel.NotesURL,
				Message: fmt.Sprintf("%s %s is a required upgrade stop: install it before %s", r.Product, stop.rel.Version, pl.Target)})
		}
		ans.Offer = &Offer{Version: t.rel.Version, NotesURL: t.rel.NotesURL, RequiredStop: t.rel.RequiredStop, Waives: t.rel.Waives,
			RequiresPostgres: t.rel.RequiresPostgres}
		msg += fmt.Sprintf("; upgrade to %s", t.rel.Version)
	case ActionRollback:
		if t := p.find(pl.Target); t == nil || t.rel.Status == StatusPulled {
			c.Action, c.Target = ActionHold, Version{}
			msg += fmt.Sprintf("; the recommended rollback target %s has been pulled too, stay on %s", pl.Target, r.Version)
			break
		}
		msg += fmt.Sprintf("; roll back to %s", pl.Target)
	default:
		c.Action, c.Target = ActionHold, Version{}
		msg += fmt.Sprintf("; stay on %s and wait for further guidance", r.Version)
	}
	ans.Notices = append(ans.Notices, Notice{Kind: NoticePulled, Message: msg, URL: pl.IncidentURL})
	ans.Notices = append(ans.Notices, extra...)
}

// stopBetween returns the lowest release strictly between from and to that
// is a required stop and not pulled (pulled stops may be skipped), or nil.
func (p *productIndex) stopBetween(from, to Version) *releaseEntry {
	for i := range p.releases {
		e := &p.releases[i]
		if from.Less(e.rel.Version) && e.rel.Version.Less(to) && e.rel.RequiredStop && e.rel.Status != StatusPulled {
			return e
		}
	}
	return nil
}
