package release

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// decideFacts: 3.29.4 everywhere; 3.30.0 in insiders only; 3.31.0 (a required
// stop) and 3.32.0 everywhere. Rollout is 100% in every ring unless a case
// changes it.
func decideFacts() Facts {
	f := acmeFacts()
	for i := range f.Rings {
		f.Rings[i].RolloutPercent = 100
	}
	f.Releases = []Release{
		everywhere(rel("3.29.4", func(r *Release) { r.NotesURL = "https://acme.example/notes/3.29.4" }), at(-1000*time.Hour)),
		rel("3.30.0", func(r *Release) { r.Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-time.Hour)}} }),
		everywhere(rel("3.31.0", func(r *Release) { r.RequiredStop = true; r.NotesURL = "https://acme.example/notes/3.31.0" }), at(-500*time.Hour)),
		everywhere(rel("3.32.0"), at(-400*time.Hour)),
	}
	return f
}

func TestDecideOffers(t *testing.T) {
	type want struct {
		offer   string // "" for none
		status  Status
		action  Action
		target  string
		notices []NoticeKind
	}
	tests := []struct {
		name     string
		modify   func(*Facts)
		customer string
		version  string
		now      time.Time
		want     want
	}{
		{
			name: "offer the required stop before anything beyond it", customer: "bigbank", version: "3.29.4",
			want: want{offer: "3.31.0", status: StatusOK, action: ActionNone, notices: []NoticeKind{NoticeRequiredStop}},
		},
		{
			name: "past the stop: highest eligible", customer: "bigbank", version: "3.31.0",
			want: want{offer: "3.32.0", status: StatusOK, action: ActionNone},
		},
		{
			name: "up to date: no offer", customer: "bigbank", version: "3.32.0",
			want: want{status: StatusOK, action: ActionNone},
		},
		{
			name: "never offer a lower version", customer: "bigbank", version: "3.40.0",
			want: want{status: StatusOK, action: ActionNone, notices: []NoticeKind{NoticeUnknownVersion}},
		},
		{
			name: "below the stop, stop not yet in the ring: highest below it that is", customer: "tester", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases[2].Rings = nil
				f.GateResults = []GateResult{fail("3.31.0", at(-time.Hour))}
			},
			want: want{offer: "3.30.0", status: StatusOK, action: ActionNone},
		},
		{
			name: "ring decides: 3.30.0 only in insiders", customer: "startup", version: "3.29.4",
			modify: func(f *Facts) { f.Releases = f.Releases[:2] },
			want:   want{status: StatusOK, action: ActionNone},
		},
		{
			name: "ring decides: insiders get 3.30.0", customer: "tester", version: "3.29.4",
			modify: func(f *Facts) { f.Releases = f.Releases[:2] },
			want:   want{offer: "3.30.0", status: StatusOK, action: ActionNone},
		},
		{
			name: "unknown customer is treated as the last ring", customer: "nobody", version: "3.29.4",
			modify: func(f *Facts) { f.Releases = f.Releases[:2] },
			want:   want{status: StatusOK, action: ActionNone},
		},
		{
			name: "paused release is not offered", customer: "tester", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases = f.Releases[:2]
				f.Releases[1].Status, f.Releases[1].Paused = StatusPaused, &Pause{Reason: "auto-halt", By: "auto-halt", At: t0}
			},
			want: want{status: StatusOK, action: ActionNone},
		},
		{
			name: "paused stop blocks everything beyond it", customer: "bigbank", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases[2].Status, f.Releases[2].Paused = StatusPaused, &Pause{Reason: "x", By: "a", At: t0}
			},
			want: want{status: StatusOK, action: ActionNone},
		},
		{
			name: "pulled release is no longer a stop", customer: "bigbank", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases[2].Status, f.Releases[2].Pulled = StatusPulled, &Pull{Reason: "x", Action: ActionHold}
			},
			want: want{offer: "3.32.0", status: StatusOK, action: ActionNone},
		},
		{
			name: "installation on a paused release: told so, still offered newer", customer: "bigbank", version: "3.31.0",
			modify: func(f *Facts) {
				f.Releases[2].Status, f.Releases[2].Paused = StatusPaused, &Pause{Reason: "index corruption reports", IncidentURL: "https://status.acme.example/i/7", By: "auto-halt", At: t0}
			},
			want: want{offer: "3.32.0", status: StatusPaused, action: ActionNone, notices: []NoticeKind{NoticePaused}},
		},
		{
			name: "pulled with upgrade guidance: offered the target outside rings", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases = append(f.Releases, rel("3.30.3")) // in no ring yet
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", IncidentURL: "https://status.acme.example/i/42", Action: ActionUpgrade, Target: v("3.30.3")}
			},
			want: want{offer: "3.30.3", status: StatusPulled, action: ActionUpgrade, target: "3.30.3", notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "pulled with upgrade guidance whose target was paused since: hold", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases = append(f.Releases, rel("3.30.3", func(r *Release) { r.Status, r.Paused = StatusPaused, &Pause{Reason: "x", By: "a", At: t0} }))
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", Action: ActionUpgrade, Target: v("3.30.3")}
			},
			want: want{status: StatusPulled, action: ActionHold, notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "pulled with upgrade guidance and a required stop released since: offered the stop", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases = append(f.Releases, rel("3.30.3"), rel("3.30.2", func(r *Release) { r.RequiredStop = true }))
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", Action: ActionUpgrade, Target: v("3.30.3")}
			},
			want: want{offer: "3.30.2", status: StatusPulled, action: ActionUpgrade, target: "3.30.2", notices: []NoticeKind{NoticePulled, NoticeRequiredStop}},
		},
		{
			name: "pulled with upgrade guidance and a paused required stop on the way: hold", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases = append(f.Releases, rel("3.30.3"), rel("3.30.2", func(r *Release) {
					r.RequiredStop, r.Status, r.Paused = true, StatusPaused, &Pause{Reason: "x", By: "a", At: t0}
				}))
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", Action: ActionUpgrade, Target: v("3.30.3")}
			},
			want: want{status: StatusPulled, action: ActionHold, notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "pulled with rollback guidance", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases[1].RollbackSafeTo = v("3.29.0")
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", Action: ActionRollback, Target: v("3.29.4")}
			},
			want: want{status: StatusPulled, action: ActionRollback, target: "3.29.4", notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "pulled with rollback guidance whose target was pulled since: hold", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases = append(f.Releases, rel("3.29.2", func(r *Release) { r.Status, r.Pulled = StatusPulled, &Pull{Reason: "x", Action: ActionHold} }))
				f.Releases[1].RollbackSafeTo = v("3.29.0")
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "collation change", Action: ActionRollback, Target: v("3.29.2")}
			},
			want: want{status: StatusPulled, action: ActionHold, notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "pulled with hold guidance: no offer even though newer exist", customer: "bigbank", version: "3.30.0",
			modify: func(f *Facts) {
				f.Releases[1].Status, f.Releases[1].Pulled = StatusPulled, &Pull{Reason: "investigating", Action: ActionHold}
			},
			want: want{status: StatusPulled, action: ActionHold, notices: []NoticeKind{NoticePulled}},
		},
		{
			name: "rollout 0% in the ring: nothing", customer: "startup", version: "3.31.0",
			modify: func(f *Facts) { f.Rings[2].RolloutPercent = 0 }, // early
			want:   want{status: StatusOK, action: ActionNone},
		},
		{
			name: "scheduled entry: not before its time", customer: "startup", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases = f.Releases[:2]
				f.Releases[1].Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-23 * time.Hour)}}
				f.Adoption = []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 2, Healthy: 2}}
			},
			now:  at(59 * time.Minute),
			want: want{status: StatusOK, action: ActionNone},
		},
		{
			name: "scheduled entry: offered once the soak is over, same snapshot", customer: "startup", version: "3.29.4",
			modify: func(f *Facts) {
				f.Releases = f.Releases[:2]
				f.Releases[1].Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-23 * time.Hour)}}
				f.Adoption = []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 2, Healthy: 2}}
			},
			now:  at(time.Hour),
			want: want{offer: "3.30.0", status: StatusOK, action: ActionNone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decideFacts()
			if tt.modify != nil {
				tt.modify(&f)
			}
			s := NewSnapshot(f, 0, t0)
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			a := mustDecide(t, s, Installation{InstanceID: "inst-1", Product: "acme", Customer: tt.customer, Version: v(tt.version)}, now)
			var offer string
			if a.Offer != nil {
				offer = a.Offer.Version.String()
			}
			if offer != tt.want.offer {
				t.Errorf("offer %q, want %q", offer, tt.want.offer)
			}
			c := a.Current
			if c.Version != v(tt.version) || c.Status != tt.want.status || c.Action != tt.want.action || c.Target.String() != tt.want.target {
				t.Errorf("current %+v, want status %s action %s target %q", c, tt.want.status, tt.want.action, tt.want.target)
			}
			var kinds []NoticeKind
			for _, n := range a.Notices {
				kinds = append(kinds, n.Kind)
				if n.Message == "" {
					t.Errorf("notice %s without message", n.Kind)
				}
			}
			if fmt.Sprint(kinds) != fmt.Sprint(tt.want.notices) {
				t.Errorf("notices %v, want %v", kinds, tt.want.notices)
			}
		})
	}
}

func TestDecideAnswerFields(t *testing.T) {
	f := decideFacts()
	f.Releases[1].Status = StatusPulled
	f.Releases[1].Pulled = &Pull{Reason: "collation change corrupts indexes", IncidentURL: "https://status.acme.example/i/42", Action: ActionUpgrade, Target: v("3.31.0")}
	s := NewSnapshot(f, 10*time.Minute, t0)
	a, err := Decide(s, Installation{InstanceID: "inst-9", Product: "acme", Customer: "tester", Version: v("3.30.0")}, "AAAABBBBCCCCDDDD", at(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a.InstanceID != "inst-9" || a.Nonce != "AAAABBBBCCCCDDDD" || !a.IssuedAt.Equal(at(time.Second)) || !a.ExpiresAt.Equal(at(10*time.Minute+time.Second)) {
		t.Errorf("envelope fields %+v", a)
	}
	if a.Current.Reason != "collation change corrupts indexes" || a.Current.IncidentURL != "https://status.acme.example/i/42" {
		t.Errorf("current %+v", a.Current)
	}
	if a.Offer == nil || !a.Offer.RequiredStop || a.Offer.NotesURL != "https://acme.example/notes/3.31.0" {
		t.Errorf("offer %+v", a.Offer)
	}
	if !strings.Contains(a.Notices[0].Message, "upgrade to 3.31.0") || a.Notices[0].URL != "https://status.acme.example/i/42" {
		t.Errorf("notice %+v", a.Notices[0])
	}

	if _, err := Decide(s, Installation{InstanceID: "x", Product: "nope", Version: v("1.0.0")}, "n", t0); ErrorCode(err) != ENOTFOUND {
		t.Errorf("unknown product: %v", err)
	}
	// A product without rings offers nothing but still answers.
	f.Rings = nil
	a = mustDecide(t, NewSnapshot(f, 0, t0), Installation{InstanceID: "x", Product: "acme", Version: v("3.29.4")}, t0)
	if a.Offer != nil || a.Current.Status != StatusOK {
		t.Errorf("no rings: %+v", a)
	}
}

func TestBucketSticky(t *testing.T) {
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("inst-%d", i)
		b := Bucket("acme", v("3.30.0"), id)
		if b < 0 || b >= 100 {
			t.Fatalf("bucket %v out of [0, 100)", b)
		}
		if again := Bucket("acme", v("3.30.0"), id); again != b {
			t.Fatalf("bucket of %s changed: %v then %v", id, b, again)
		}
	}
	// Different releases shuffle installations independently: the first 10%
	// for one release share only about 10% with the first 10% for another.
	var both, first int
	for i := 0; i < 100_000; i++ {
		id := fmt.Sprintf("inst-%d", i)
		a := Bucket("acme", v("3.30.0"), id) < 10
		b := Bucket("acme", v("3.31.0"), id) < 10
		if a {
			first++
			if b {
				both++
			}
		}
	}
	if share := float64(both) / float64(first); share > 0.12 || share < 0.08 {
		t.Errorf("releases are not shuffled independently: %.3f overlap", share)
	}
}

func TestRolloutShare(t *testing.T) {
	const n = 100_000
	for _, pct := range []float64{1, 5, 25, 50, 90} {
		f := decideFacts()
		f.Releases = f.Releases[:2]
		f.Rings[1].RolloutPercent = pct // insiders
		s := NewSnapshot(f, 0, t0)
		offered := 0
		for i := 0; i < n; i++ {
			inst := Installation{InstanceID: fmt.Sprintf("%08x-%d", i*2654435761, i), Product: "acme", Customer: "tester", Version: v("3.29.4")}
			a := mustDecide(t, s, inst, t0)
			if a.Offer != nil {
				offered++
			}
			// Same installation, same answer, also later.
			if i%1000 == 0 {
				again := mustDecide(t, s, inst, at(time.Minute))
				if (again.Offer != nil) != (a.Offer != nil) {
					t.Fatalf("answer for %s changed", inst.InstanceID)
				}
			}
		}
		share := float64(offered) / n * 100
		if math.Abs(share-pct) > 1 {
			t.Errorf("rollout %v%%: offered to %.2f%% of installations", pct, share)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	f := decideFacts()
	// A realistic history: 60 releases, the newest few in rollout.
	for i := 0; i < 60; i++ {
		f.Releases = append(f.Releases, everywhere(rel(fmt.Sprintf("2.%d.0", i)), at(-2000*time.Hour)))
	}
	f.Rings[1].RolloutPercent = 50
	s := NewSnapshot(f, 0, t0)
	insts := make([]Installation, 1024)
	for i := range insts {
		insts[i] = Installation{InstanceID: fmt.Sprintf("5f0c6f1e-8d1a-4b4e-9a53-%012d", i), Product: "acme", Customer: []string{"tester", "startup", "bigbank"}[i%3], Version: v("3.29.4")}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Decide(s, insts[i%len(insts)], "nonce-0123456789", t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestSnapshotAccessors(t *testing.T) {
	f := decideFacts()
	f.Releases[1].Status, f.Releases[1].Paused = StatusPaused, &Pause{Reason: "odd sorting", By: "alice", At: t0}
	s := NewSnapshot(f, 0, t0)
	if !s.BuiltAt().Equal(t0) {
		t.Errorf("built at %s", s.BuiltAt())
	}
	st, err := s.Status("acme")
	if err != nil || len(st) != 4 || st[0].Version != v("3.29.4") || st[3].Version != v("3.32.0") {
		t.Fatalf("status %+v %v", st, err)
	}
	if st[1].Paused == nil || st[1].Paused.Reason != "odd sorting" || st[1].Rings[0].State != RingBlocked {
		t.Errorf("paused release status %+v", st[1])
	}
	if _, err := s.Status("nope"); ErrorCode(err) != ENOTFOUND {
		t.Errorf("unknown product status: %v", err)
	}
	if p, err := s.Product("acme"); err != nil || p.Name != "acme" {
		t.Errorf("product %+v %v", p, err)
	}
	if _, err := s.Product("nope"); ErrorCode(err) != ENOTFOUND {
		t.Errorf("unknown product: %v", err)
	}
	if r, err := s.Release("acme", v("3.31.0")); err != nil || !r.RequiredStop {
		t.Errorf("release %+v %v", r, err)
	}
	if _, err := s.Release("acme", v("9.9.9")); ErrorCode(err) != ENOTFOUND {
		t.Errorf("unknown release: %v", err)
	}
	// Due is a copy: changing it does not change the snapshot.
	f.Releases[3].Rings = nil
	f.GateResults = []GateResult{pass("3.32.0", at(-time.Hour))}
	s = NewSnapshot(f, 0, t0)
	d := s.Due()
	if len(d) != 1 || d[0].Version != v("3.32.0") || d[0].Promotion.Ring != "insiders" {
		t.Fatalf("due %+v", d)
	}
	d[0].Promotion.Ring = "changed"
	if s.Due()[0].Promotion.Ring != "insiders" {
		t.Fatal("Due exposes the snapshot's slice")
	}
}

// TestWaivesReachTheOffer: the findings a release waives travel in the
// offer of it; only known findings, each once, may be waived.
func TestWaivesReachTheOffer(t *testing.T) {
	f := decideFacts()
	f.Releases[2].Waives = []string{"collation_changed"} // 3.31.0, the stop bigbank is offered
	if err := f.Releases[2].Validate(); err != nil {
		t.Fatal(err)
	}
	ans, err := Decide(NewSnapshot(f, time.Hour, t0), Installation{InstanceID: "i-1", Product: "acme", Customer: "bigbank", Version: v("3.29.4")}, "n0123456789abcdef", t0)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Offer == nil || ans.Offer.Version != v("3.31.0") || !slices.Equal(ans.Offer.Waives, []string{"collation_changed"}) {
		t.Fatalf("offer %+v, want 3.31.0 waiving collation_changed", ans.Offer)
	}
	for _, bad := range [][]string{{"not_offered"}, {"failed_here"}, {"collation_changed", "collation_changed"}} {
		r := f.Releases[0]
		r.Waives = bad
		if err := r.Validate(); ErrorCode(err) != EINVALID {
			t.Errorf("waives %v: %v, want invalid", bad, err)
		}
	}
}
