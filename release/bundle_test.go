package release

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bundleStates are release states a bundle must carry faithfully: every
// status, every kind of guidance, required stops (also pulled and paused
// ones), ring availability now and scheduled, partial rollouts.
func bundleStates() map[string]func(*Facts) {
	pause := func(r *Release, why string) {
		r.Status, r.Paused = StatusPaused, &Pause{Reason: why, IncidentURL: "https://s.example/i/1", By: "alice", At: t0}
	}
	pull := func(r *Release, a Action, target string) {
		r.Status, r.Pulled = StatusPulled, &Pull{Reason: "collation change", IncidentURL: "https://s.example/i/42", Action: a, By: "bob", At: t0}
		if target != "" {
			r.Pulled.Target = v(target)
		}
	}
	return map[string]func(*Facts){
		"all ok":                  func(f *Facts) {},
		"3.30.0 only in insiders": func(f *Facts) { f.Releases = f.Releases[:2] },
		"stop not in ring yet": func(f *Facts) {
			f.Releases[2].Rings = nil
			f.GateResults = []GateResult{fail("3.31.0", at(-time.Hour))}
		},
		"paused release": func(f *Facts) { pause(&f.Releases[1], "auto-halt") },
		"fixed release waives": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.30.3"))
			f.Releases[len(f.Releases)-1].Waives = []string{"collation_changed", "database_corrupt"}
			f.Releases[len(f.Releases)-1].RequiresPostgres = 14
			pull(&f.Releases[1], ActionUpgrade, "3.30.3")
		},
		"paused stop":        func(f *Facts) { pause(&f.Releases[2], "x") },
		"pulled stop (hold)": func(f *Facts) { pull(&f.Releases[2], ActionHold, "") },
		"pulled upgrade outside ring": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.30.3"))
			pull(&f.Releases[1], ActionUpgrade, "3.30.3")
		},
		"pulled upgrade, target paused": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.30.3", func(r *Release) { pause(r, "x") }))
			pull(&f.Releases[1], ActionUpgrade, "3.30.3")
		},
		"pulled upgrade via stop": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.30.3"), rel("3.30.2", func(r *Release) { r.RequiredStop = true }))
			pull(&f.Releases[1], ActionUpgrade, "3.30.3")
		},
		"pulled upgrade, stop paused": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.30.3"), rel("3.30.2", func(r *Release) { r.RequiredStop = true; pause(r, "y") }))
			pull(&f.Releases[1], ActionUpgrade, "3.30.3")
		},
		"pulled rollback": func(f *Facts) {
			f.Releases[1].RollbackSafeTo = v("3.29.0")
			pull(&f.Releases[1], ActionRollback, "3.29.4")
		},
		"pulled rollback, target pulled": func(f *Facts) {
			f.Releases = append(f.Releases, rel("3.29.2", func(r *Release) { pull(r, ActionHold, "") }))
			f.Releases[1].RollbackSafeTo = v("3.29.0")
			pull(&f.Releases[1], ActionRollback, "3.29.2")
		},
		"pulled hold":      func(f *Facts) { pull(&f.Releases[1], ActionHold, "") },
		"rollout 0% early": func(f *Facts) { f.Rings[2].RolloutPercent = 0 },
		"rollout 37.5% everywhere": func(f *Facts) {
			for i := range f.Rings {
				f.Rings[i].RolloutPercent = 37.5
			}
		},
		"rollout 1/3 early": func(f *Facts) { f.Rings[2].RolloutPercent = 100.0 / 3 },
		"scheduled entry": func(f *Facts) {
			f.Releases = f.Releases[:2]
			f.Releases[1].Rings = []Promotion{{Ring: "insiders", EnteredAt: at(-23 * time.Hour)}}
			f.Adoption = []Adoption{{Product: "acme", Version: v("3.30.0"), Ring: "insiders", Installations: 2, Healthy: 2}}
		},
		"no rings": func(f *Facts) {
			f.Rings = nil
			pull(&f.Releases[1], ActionUpgrade, "3.32.0")
		},
	}
}

// TestBundleDecidesAsOnline proves, for every state, customer, version
// (known, unknown, between), instance and time within the bundle's validity,
// that an installation deciding from the bundle gets exactly the answer
// Decide gives online, apart from the nonce and the expiry.
func TestBundleDecidesAsOnline(t *testing.T) {
	issued := t0
	expires := issued.Add(DefaultBundleValidity)
	times := []time.Duration{0, 30 * time.Minute, time.Hour, 25 * time.Hour, 72 * time.Hour, 29 * 24 * time.Hour}
	versions := []string{"3.28.0", "3.29.2", "3.29.4", "3.29.9", "3.30.0", "3.30.2", "3.30.3", "3.31.0", "3.32.0", "4.0.0"}
	var instances []string
	for i := range 40 {
		instances = append(instances, fmt.Sprintf("inst-%02d", i))
	}
	compared, offers := 0, 0
	for name, modify := range bundleStates() {
		f := decideFacts()
		modify(&f)
		online := NewSnapshot(f, time.Hour, issued)
		for _, c := range f.Customers {
			b, err := NewBundle(online, "acme", c.Name, 7, issued, expires)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Through the wire form, as an agent gets it.
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			carried, err := DecodeBundle(raw)
			if err != nil {
				t.Fatalf("%s: decode: %v", name, err)
			}
			for _, d := range times {
				now := issued.Add(d)
				for _, ver := range versions {
					for _, id := range instances {
						inst := Installation{InstanceID: id, Product: "acme", Customer: c.Name, Version: v(ver)}
						want, err := Decide(online, inst, "", now)
						if err != nil {
							t.Fatal(err)
						}
						got, err := DecideBundle(carried, Installation{InstanceID: id, Product: "acme", Version: v(ver)}, now)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if !got.ExpiresAt.Equal(expires) {
							t.Fatalf("%s: answer expires %s, want the bundle's %s", name, got.ExpiresAt, expires)
						}
						want.ExpiresAt = got.ExpiresAt
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("%s, customer %s, %s on %s at +%s:\n bundle %+v\n online %+v", name, c.Name, id, ver, d, got, want)
						}
						compared++
						if got.Offer != nil {
							offers++
						}
					}
				}
			}
		}
	}
	// The comparison must have covered offers and refusals alike.
	if offers == 0 || offers == compared {
		t.Fatalf("%d answers compared, %d with an offer: the states do not exercise both", compared, offers)
	}
	t.Logf("%d answers compared, %d with an offer", compared, offers)
}

func TestBundleRefusesToDecide(t *testing.T) {
	f := decideFacts()
	s := NewSnapshot(f, time.Hour, t0)
	b, err := NewBundle(s, "acme", "bigbank", 1, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	inst := Installation{InstanceID: "i1", Product: "acme", Version: v("3.29.4")}
	if _, err := DecideBundle(b, inst, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired bundle decided: %v", err)
	}
	if _, err := DecideBundle(b, inst, t0.Add(-time.Second)); err == nil {
		t.Fatal("bundle decided before it was issued")
	}
	inst.Product = "other"
	if _, err := DecideBundle(b, inst, t0); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("other product: %v", err)
	}
	if _, err := NewBundle(s, "acme", "nobody", 1, t0, t0.Add(time.Hour)); ErrorCode(err) != ENOTFOUND {
		t.Fatalf("unknown customer: %v", err)
	}
	if _, err := NewBundle(s, "acme", "bigbank", 1, t0, t0.Add(MaxBundleValidity+time.Hour)); ErrorCode(err) != EINVALID {
		t.Fatalf("too long validity: %v", err)
	}
}

func TestDecodeBundleRejects(t *testing.T) {
	s := NewSnapshot(decideFacts(), time.Hour, t0)
	b, err := NewBundle(s, "acme", "bigbank", 3, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(b)
	for name, mutate := range map[string]func(*Bundle){
		"kind":      func(b *Bundle) { b.Kind = "ringfence-export/1" },
		"sequence":  func(b *Bundle) { b.Sequence = 0 },
		"validity":  func(b *Bundle) { b.ExpiresAt = b.IssuedAt },
		"rollout":   func(b *Bundle) { b.Ring.RolloutPercent = "101" },
		"order":     func(b *Bundle) { b.Releases[0], b.Releases[1] = b.Releases[1], b.Releases[0] },
		"status":    func(b *Bundle) { b.Releases[0].Status = "gone" },
		"pull":      func(b *Bundle) { b.Releases[0].Pulled = &BundlePull{Action: "jump"} },
		"ack id":    func(b *Bundle) { b.Acknowledged = []ExportAck{{InstanceID: "bad id"}} },
		"customer":  func(b *Bundle) { b.Customer = "" },
		"no issued": func(b *Bundle) { b.IssuedAt = time.Time{} },
	} {
		var c Bundle
		_ = json.Unmarshal(good, &c)
		mutate(&c)
		raw, _ := json.Marshal(c)
		if _, err := DecodeBundle(raw); ErrorCode(err) != EINVALID {
			t.Errorf("%s: got %v, want invalid", name, err)
		}
	}
	if _, err := DecodeBundle(append(good[:len(good)-1:len(good)-1], []byte(`,"extra":1}`)...)); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestKeyChecksAndBindings(t *testing.T) {
	k1, k2 := sha256.Sum256([]byte("rfe_key_one")), sha256.Sum256([]byte("rfe_key_two"))
	b := Bundle{Product: "acme", Customer: "bigbank", KeyChecks: []string{BundleKeyCheck(k1, "acme", "bigbank")}}
	if !b.ForKey(k1) || b.ForKey(k2) {
		t.Fatal("key check does not tell the customer's key from another")
	}
	// The same key check for another customer's name does not match.
	b.Customer = "startup"
	if b.ForKey(k1) {
		t.Fatal("key check matched under another customer's name")
	}
	pub := make([]byte, 32)
	e := Export{Product: "acme", InstanceID: "i1", PublicKey: pub, Binding: ExportBinding(k1, "acme", "i1", pub)}
	if !e.BoundTo(k1) || e.BoundTo(k2) {
		t.Fatal("binding does not tell the enrollment key")
	}
	e.InstanceID = "i2"
	if e.BoundTo(k1) {
		t.Fatal("binding moved to another instance still verifies")
	}
}

func TestDecodeExport(t *testing.T) {
	pub := make([]byte, 32)
	k := sha256.Sum256([]byte("rfe_key"))
	e := Export{Kind: ExportKind, Product: "acme", InstanceID: "i1", IssuedAt: t0, ExpiresAt: t0.Add(ExportValidity),
		PublicKey: pub, Binding: ExportBinding(k, "acme", "i1", pub),
		Reports: []Report{
			{Seq: 1, At: t0, Version: v("3.29.4")},
			{Seq: 2, At: t0.Add(time.Hour), Version: v("3.29.4"), Events: []Event{{Kind: EventUpgradeFailed, From: v("3.29.4"), To: v("3.30.0"), At: t0}}},
		}}
	raw, _ := json.Marshal(e)
	got, err := DecodeExport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Reports, e.Reports) {
		t.Fatalf("reports changed on the way: %+v", got.Reports)
	}
	for name, mutate := range map[string]func(*Export){
		"kind":          func(e *Export) { e.Kind = BundleKind },
		"key size":      func(e *Export) { e.PublicKey = pub[:31] },
		"binding size":  func(e *Export) { e.Binding = nil },
		"instance":      func(e *Export) { e.InstanceID = "a b" },
		"sequence":      func(e *Export) { e.Reports[1].Seq = 1 },
		"event":         func(e *Export) { e.Reports[1].Events[0].From = Version{} },
		"health status": func(e *Export) { e.Reports[0].Health = &Health{Status: "fine"} },
		"no version":    func(e *Export) { e.Reports[0].Version = Version{} },
	} {
		c := e
		c.Reports = append([]Report(nil), e.Reports...)
		c.Reports[1].Events = append([]Event(nil), e.Reports[1].Events...)
		mutate(&c)
		raw, _ := json.Marshal(c)
		if _, err := DecodeExport(raw); ErrorCode(err) != EINVALID {
			t.Errorf("%s: got %v, want invalid", name, err)
		}
	}
}
