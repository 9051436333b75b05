package agent_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// bundleKit signs bundles as a vendor would, without a server: the
// bundle's facts come from release.NewBundle on a snapshot, the signature
// from a sign.KeyRing whose public key the site pins.
type bundleKit struct {
	t     *testing.T
	ring  *sign.KeyRing
	trust string
	keys  map[string]string // enrollment key per customer
	dir   string
	t0    time.Time
}

func newBundleKit(t *testing.T) *bundleKit {
	k := &bundleKit{t: t, dir: t.TempDir(), keys: map[string]string{"bank": "rfe_bank_secret", "gov": "rfe_gov_secret"},
		t0: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	key, err := sign.GenerateKey(rand.Reader, k.t0)
	must(t, err)
	k.ring, err = sign.NewKeyRing(key)
	must(t, err)
	k.trust = filepath.Join(k.dir, "trust.json")
	writeJSONFile(t, k.trust, map[string]any{"keys": k.ring.PublicKeys()})
	return k
}

// facts: acme with one ring, customers bank and gov, 1.0.0 and 1.1.0
// available; pulled lists versions pulled with hold guidance.
func (k *bundleKit) facts(pulled ...string) release.Facts {
	f := release.Facts{
		Products:  []release.Product{{Name: "acme", Policy: release.DefaultPolicy()}},
		Rings:     []release.Ring{{Product: "acme", Name: "stable", RolloutPercent: 100}},
		Customers: []release.Customer{{Product: "acme", Name: "bank", Ring: "stable"}, {Product: "acme", Name: "gov", Ring: "stable"}},
	}
	for _, s := range []string{"1.0.0", "1.1.0"} {
		r := release.Release{Product: "acme", Version: release.MustParseVersion(s), Status: release.StatusOK, CreatedAt: k.t0.Add(-48 * time.Hour),
			Rings: []release.Promotion{{Ring: "stable", EnteredAt: k.t0.Add(-24 * time.Hour)}}}
		if slices.Contains(pulled, s) {
			r.Status, r.Pulled = release.StatusPulled, &release.Pull{Reason: "corrupts indexes", Action: release.ActionHold}
		}
		f.Releases = append(f.Releases, r)
	}
	return f
}

// write signs b with ring (the kit's when nil) and writes it to a file.
func (k *bundleKit) write(b release.Bundle, ring *sign.KeyRing) string {
	k.t.Helper()
	if ring == nil {
		ring = k.ring
	}
	env, err := ring.SignJSON(b)
	must(k.t, err)
	path := filepath.Join(k.dir, "bundle-"+strings.ReplaceAll(k.t.Name(), "/", "-")+"-"+itoa(int(b.Sequence))+"-"+rand.Text()[:6]+".json")
	writeJSONFile(k.t, path, env)
	return path
}

// bundle is customer's bundle seq, issued at issued and valid for valid.
func (k *bundleKit) bundle(customer string, seq int64, issued time.Time, valid time.Duration, pulled ...string) release.Bundle {
	k.t.Helper()
	b, err := release.NewBundle(release.NewSnapshot(k.facts(pulled...), 0, issued), "acme", customer, seq, issued, issued.Add(valid))
	must(k.t, err)
	b.KeyChecks = []string{release.BundleKeyCheck(sha256.Sum256([]byte(k.keys[customer])), "acme", customer)}
	return b
}

// site is an agent of customer bank on 1.0.0 whose clock reads *now.
func (k *bundleKit) site(now *time.Time) *agent.Agent {
	k.t.Helper()
	return newAgent(k.t, agent.Config{Server: closedURL(k.t), Key: k.keys["bank"], Product: "acme", Version: "1.0.0",
		StateDir: k.t.TempDir(), TrustFile: k.trust, DeepCheck: -1, Now: func() time.Time { return *now }})
}

// siteOnBundle1 is site with bundle 1 of bank (issued at t0, valid for a
// day) accepted: its preflight to 1.1.0 said go.
func (k *bundleKit) siteOnBundle1(t *testing.T, now *time.Time) *agent.Agent {
	t.Helper()
	a := k.site(now)
	if d := a.PreflightBundle(context.Background(), k.write(k.bundle("bank", 1, k.t0, 24*time.Hour), nil), to110); d.Decision != agent.Go {
		t.Fatalf("preflight on bundle 1: %s", d.Decision)
	}
	return a
}

var to110 = release.MustParseVersion("1.1.0")

// refused asserts an undecided decision with reason code whose message
// holds msg.
func refused(t *testing.T, d agent.Decision, code, msg string) {
	t.Helper()
	if d.Decision != agent.Undecided || d.ExitCode != 2 {
		t.Fatalf("decision %s (exit %d), want undecided: %+v", d.Decision, d.ExitCode, d.Reasons)
	}
	for _, r := range d.Reasons {
		if r.Code == code && strings.Contains(r.Message, msg) {
			return
		}
	}
	t.Fatalf("reasons %+v, want %s with %q", d.Reasons, code, msg)
}

// TestBundleRefusals: every bundle a site must not act on is refused, and a
// refusal is never a go.
func TestBundleRefusals(t *testing.T) {
	k := newBundleKit(t)
	ctx := context.Background()
	now := k.t0.Add(time.Hour)
	good := k.bundle("bank", 5, k.t0, 30*24*time.Hour)

	t.Run("accepted", func(t *testing.T) {
		if d := k.site(&now).PreflightBundle(ctx, k.write(good, nil), to110); d.Decision != agent.Go {
			t.Fatalf("good bundle: %s %+v", d.Decision, d.Reasons)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		env, err := k.ring.SignJSON(good)
		must(t, err)
		env.Payload = []byte(strings.Replace(string(env.Payload), `"sequence":5`, `"sequence":6`, 1))
		path := filepath.Join(k.dir, "tampered.json")
		writeJSONFile(t, path, env)
		refused(t, k.site(&now).PreflightBundle(ctx, path, to110), agent.ReasonBundleRefused, "signature does not verify")
	})
	t.Run("unsigned", func(t *testing.T) {
		env, err := k.ring.SignJSON(good)
		must(t, err)
		env.Signatures = nil
		path := filepath.Join(k.dir, "unsigned.json")
		writeJSONFile(t, path, env)
		refused(t, k.site(&now).PreflightBundle(ctx, path, to110), agent.ReasonBundleRefused, "no signature by a trusted key")
	})
	t.Run("unpinned key", func(t *testing.T) {
		other, err := sign.GenerateKey(rand.Reader, k.t0)
		must(t, err)
		ring, err := sign.NewKeyRing(other)
		must(t, err)
		refused(t, k.site(&now).PreflightBundle(ctx, k.write(good, ring), to110), agent.ReasonBundleRefused, "which is not pinned")
	})
	t.Run("other customer", func(t *testing.T) {
		refused(t, k.site(&now).PreflightBundle(ctx, k.write(k.bundle("gov", 9, k.t0, time.Hour*24), nil), to110),
			agent.ReasonBundleRefused, "it is for customer gov")
	})
	t.Run("other customer's name on this key check", func(t *testing.T) {
		b := k.bundle("gov", 9, k.t0, 24*time.Hour)
		b.KeyChecks = []string{release.BundleKeyCheck(sha256.Sum256([]byte(k.keys["bank"])), "acme", "bank")}
		refused(t, k.site(&now).PreflightBundle(ctx, k.write(b, nil), to110), agent.ReasonBundleRefused, "it is for customer gov")
	})
	t.Run("other product", func(t *testing.T) {
		b := good
		b.Product = "other"
		refused(t, k.site(&now).PreflightBundle(ctx, k.write(b, nil), to110), agent.ReasonBundleRefused, "for product other")
	})
	t.Run("expired", func(t *testing.T) {
		old := k.bundle("bank", 5, k.t0.Add(-31*24*time.Hour), 30*24*time.Hour)
		refused(t, k.site(&now).PreflightBundle(ctx, k.write(old, nil), to110), agent.ReasonBundleRefused, "signed payload expired")
	})
	t.Run("expires while carried: no upgrade, guidance kept", func(t *testing.T) {
		clock := now
		a := k.site(&clock)
		if d := a.PreflightBundle(ctx, k.write(k.bundle("bank", 1, k.t0, 6*24*time.Hour), nil), to110); d.Decision != agent.Go {
			t.Fatalf("fresh: %s %+v", d.Decision, d.Reasons)
		}
		st := statusAt(t, a, clock)
		if st.Bundle == nil || !st.Bundle.ExpiresSoon || st.Bundle.Expired {
			t.Fatalf("6 days of validity: status %+v, want expires_soon", st.Bundle)
		}
		clock = k.t0.Add(7 * 24 * time.Hour)
		refused(t, a.PreflightBundle(ctx, "", to110), agent.ReasonBundleExpired, "no upgrade until a newer bundle")
		st = statusAt(t, a, clock)
		if !st.Bundle.Expired || !st.Bundle.Verified || st.Bundle.Answer == nil {
			t.Fatalf("expired bundle status: %+v", st.Bundle)
		}
	})
	t.Run("replayed lower sequence cannot undo a pull", func(t *testing.T) {
		a := k.site(&now)
		old := k.write(k.bundle("bank", 1, k.t0, 30*24*time.Hour), nil)
		pull := k.write(k.bundle("bank", 2, k.t0.Add(time.Minute), 30*24*time.Hour, "1.1.0"), nil)
		if d := a.PreflightBundle(ctx, old, to110); d.Decision != agent.Go {
			t.Fatalf("bundle 1: %s", d.Decision)
		}
		if d := a.PreflightBundle(ctx, pull, to110); d.Decision != agent.NoGo {
			t.Fatalf("bundle 2 with the pull: %s %+v", d.Decision, d.Reasons)
		}
		refused(t, a.PreflightBundle(ctx, old, to110), agent.ReasonBundleRefused, "sequence 1 is older than the accepted bundle 2")
		// Without a file it still decides from bundle 2.
		if d := a.PreflightBundle(ctx, "", to110); d.Decision != agent.NoGo {
			t.Fatalf("after the replay: %s", d.Decision)
		}
	})
	t.Run("same sequence, other content", func(t *testing.T) {
		a := k.site(&now)
		if d := a.PreflightBundle(ctx, k.write(k.bundle("bank", 3, k.t0, 24*time.Hour, "1.1.0"), nil), to110); d.Decision != agent.NoGo {
			t.Fatalf("bundle 3: %s", d.Decision)
		}
		refused(t, a.PreflightBundle(ctx, k.write(k.bundle("bank", 3, k.t0, 24*time.Hour), nil), to110),
			agent.ReasonBundleRefused, "sequence 3 was accepted with different content")
	})
	t.Run("clock set back below the latest signed time", func(t *testing.T) {
		clock := now
		a := k.siteOnBundle1(t, &clock)
		// An old bundle of a later sequence, valid at the earlier time,
		// does not help either: the clock is refused first.
		clock = k.t0.Add(-time.Hour)
		refused(t, a.PreflightBundle(ctx, k.write(k.bundle("bank", 2, k.t0.Add(-2*time.Hour), 24*time.Hour), nil), to110),
			agent.ReasonClockBehind, "behind the latest signed time")
		refused(t, a.PreflightBundle(ctx, "", to110), agent.ReasonClockBehind, "behind the latest signed time")
	})
	t.Run("missing", func(t *testing.T) {
		refused(t, k.site(&now).PreflightBundle(ctx, filepath.Join(k.dir, "nope.json"), to110), agent.ReasonBundleRefused, "no such file")
		refused(t, k.site(&now).PreflightBundle(ctx, "", to110), agent.ReasonBundleMissing, "no offline bundle accepted yet")
	})
}

// TestOfflineReportsAcknowledged: offline check-ins become numbered reports
// carrying the queued events; exports are signed by the installation's key
// (0600 in the state directory) and bound to the enrollment key; a bundle
// acknowledging them drops reports and events, and later reports continue
// the numbering.
func TestOfflineReportsAcknowledged(t *testing.T) {
	k := newBundleKit(t)
	ctx := context.Background()
	now := k.t0.Add(time.Hour)
	a := k.siteOnBundle1(t, &now)
	if _, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeFailed, From: release.MustParseVersion("1.0.0"), To: to110, At: now}); err != nil {
		t.Fatal(err)
	}
	env, exp, left, err := a.Export(ctx)
	must(t, err)
	if left != 0 || len(exp.Reports) != 2 || exp.Reports[0].Seq != 1 || len(exp.Reports[0].Events) != 0 || len(exp.Reports[1].Events) != 1 {
		t.Fatalf("export reports: %+v (left %d)", exp.Reports, left)
	}
	pub := sign.PublicKey{ID: sign.KeyID(exp.PublicKey), Key: exp.PublicKey}
	if _, err := sign.Verify(env, []sign.PublicKey{pub}, now); err != nil {
		t.Fatalf("export signature: %v", err)
	}
	if !exp.BoundTo(sha256.Sum256([]byte(k.keys["bank"]))) || exp.BoundTo(sha256.Sum256([]byte(k.keys["gov"]))) {
		t.Fatal("export binding does not name the enrollment key")
	}
	fi, err := os.Stat(filepath.Join(a.State().Path(), "export_key.json"))
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("export key file mode %v, want 0600", fi.Mode().Perm())
	}
	var payload release.Export
	must(t, json.Unmarshal(env.Payload, &payload))
	if payload.InstanceID != exp.InstanceID || len(payload.Reports) != 2 {
		t.Fatalf("signed payload differs from the export: %+v", payload)
	}

	// A bundle acknowledging report 1 only keeps report 2 and its event.
	b := k.bundle("bank", 2, k.t0.Add(time.Minute), 24*time.Hour)
	b.Acknowledged = []release.ExportAck{{InstanceID: exp.InstanceID, Through: 1}}
	a.PreflightBundle(ctx, k.write(b, nil), to110)
	st := statusAt(t, a, now)
	if st.Bundle.UnacknowledgedReports != 1 || len(st.Undelivered) != 1 {
		t.Fatalf("after acknowledging report 1: %d reports, %d events", st.Bundle.UnacknowledgedReports, len(st.Undelivered))
	}
	b = k.bundle("bank", 3, k.t0.Add(2*time.Minute), 24*time.Hour)
	b.Acknowledged = []release.ExportAck{{InstanceID: exp.InstanceID, Through: 2}}
	a.PreflightBundle(ctx, k.write(b, nil), to110)
	st = statusAt(t, a, now)
	if st.Bundle.UnacknowledgedReports != 0 || len(st.Undelivered) != 0 {
		t.Fatalf("after acknowledging report 2: %d reports, %d events", st.Bundle.UnacknowledgedReports, len(st.Undelivered))
	}
	// The failed upgrade the vendor now has stays refused here, as online.
	if len(st.FailedUpgrades) != 1 || st.FailedUpgrades[0].To != to110 {
		t.Fatalf("failed upgrades after the acknowledgement: %+v", st.FailedUpgrades)
	}
	if d := a.PreflightBundle(ctx, "", to110); d.ExitCode != 1 || !slices.Equal(reasons(d), []string{agent.ReasonFailedHere}) {
		t.Fatalf("offline preflight to the version that failed here: %+v", d)
	}
	// Nothing new: an export holds no report. A new event: report 3.
	_, exp, _, err = a.Export(ctx)
	must(t, err)
	if len(exp.Reports) != 0 {
		t.Fatalf("nothing changed, yet the export holds %+v", exp.Reports)
	}
	if _, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeStarted, From: release.MustParseVersion("1.0.0"), To: to110, At: now}); err != nil {
		t.Fatal(err)
	}
	_, exp, _, err = a.Export(ctx)
	must(t, err)
	if len(exp.Reports) != 1 || exp.Reports[0].Seq != 3 || len(exp.Reports[0].Events) != 1 {
		t.Fatalf("export after a new event: %+v", exp.Reports)
	}
}

// statusAt is the agent's status at now.
func statusAt(t *testing.T, a *agent.Agent, now time.Time) agent.Status {
	t.Helper()
	st, err := agent.ReadStatus(a.State(), now)
	must(t, err)
	return st
}

// TestPreflightUsesBundles: an agent told to run on bundles answers
// Preflight (and so the preflight HTTP gate) from the accepted bundle; one
// that is not goes to the unreachable server and is undecided.
func TestPreflightUsesBundles(t *testing.T) {
	k := newBundleKit(t)
	ctx := context.Background()
	now := k.t0.Add(time.Hour)
	a := k.siteOnBundle1(t, &now)
	if d := a.Preflight(ctx, to110); d.Decision != agent.Undecided {
		t.Fatalf("online preflight with no route: %s, want undecided", d.Decision)
	}
	a.UseBundles(k.dir)
	if d := a.Preflight(ctx, to110); d.Decision != agent.Go {
		t.Fatalf("preflight of an agent on bundles: %s %+v", d.Decision, d.Reasons)
	}
}

// TestBundleTeachesRotatedKey: an air-gapped site learns a rotated key from
// a bundle of the overlap (named in it, signed by the old key and the new),
// so bundles signed by the new key alone are accepted after it; a site that
// never saw such a bundle refuses them.
func TestBundleTeachesRotatedKey(t *testing.T) {
	k, a, rotated, newKey, now := rotatedSite(t)
	ctx := context.Background()
	if d := a.PreflightBundle(ctx, k.overlapBundle(rotated.WithOverlap(*now, 24*time.Hour), 2, *now), to110); d.Decision != agent.Go {
		t.Fatalf("preflight on the overlap's bundle: %s %+v", d.Decision, d.Reasons)
	}
	after := rotated.WithOverlap(k.t0.Add(30*time.Hour), 24*time.Hour)
	if len(after.Signers()) != 1 {
		t.Fatalf("the ring still co-signs after the overlap")
	}
	*now = k.t0.Add(30 * time.Hour)
	late := k.write(k.bundle("bank", 3, *now, 24*time.Hour), after)
	if d := a.PreflightBundle(ctx, late, to110); d.Decision != agent.Go {
		t.Fatalf("preflight on a bundle signed by the learnt key alone: %s %+v", d.Decision, d.Reasons)
	}
	absent := k.site(now)
	refused(t, absent.PreflightBundle(ctx, late, to110), agent.ReasonBundleRefused, newKey.ID+"], which is not pinned")
}

// rotatedSite is a site on bundle 1 whose vendor rotated its signing key
// an hour later; the site's clock (now) reads t0+3h, within the overlap.
func rotatedSite(t *testing.T) (k *bundleKit, a *agent.Agent, rotated *sign.KeyRing, newKey sign.Key, now *time.Time) {
	k = newBundleKit(t)
	clock := k.t0.Add(time.Hour)
	a = k.siteOnBundle1(t, &clock)
	rotated, newKey, err := k.ring.Rotate(rand.Reader, k.t0.Add(2*time.Hour))
	must(t, err)
	clock = k.t0.Add(3 * time.Hour)
	return k, a, rotated, newKey, &clock
}

// overlapBundle is bank's bundle seq issued at `at`, naming ring's signers
// as the server does during a rotation overlap, signed by ring.
func (k *bundleKit) overlapBundle(ring *sign.KeyRing, seq int64, at time.Time) string {
	k.t.Helper()
	b := k.bundle("bank", seq, at, 24*time.Hour)
	for _, s := range ring.Signers() {
		b.SigningKeys = append(b.SigningKeys, release.SigningKey{KeyID: s.ID, PublicKey: s.Key})
	}
	return k.write(b, ring)
}

// TestLearnedKeysFollowTheTrustFile: keys learnt along a chain of rotations
// (A→B→C) stay trusted only while the chain's root is; a trust file that
// revokes a learnt key ends its trust though its voucher stays pinned; an
// entry written into the state file by hand is no introduction; a handover
// that cannot be learnt is shown in status.
func TestLearnedKeysFollowTheTrustFile(t *testing.T) {
	k := newBundleKit(t)
	ctx := context.Background()
	now := k.t0.Add(time.Hour)
	a := k.siteOnBundle1(t, &now)
	rotate := func(ring *sign.KeyRing, at time.Time) (*sign.KeyRing, sign.Key) {
		r, key, err := ring.Rotate(rand.Reader, at)
		must(t, err)
		return r, key
	}
	// A→B, then B→C, each learnt from an overlap bundle.
	ab, b := rotate(k.ring, k.t0.Add(2*time.Hour))
	now = k.t0.Add(3 * time.Hour)
	if d := a.PreflightBundle(ctx, k.overlapBundle(ab.WithOverlap(now, 24*time.Hour), 2, now), to110); d.Decision != agent.Go {
		t.Fatalf("overlap bundle A→B: %+v", d.Reasons)
	}
	abc, c := rotate(ab, k.t0.Add(30*time.Hour))
	now = k.t0.Add(31 * time.Hour)
	if d := a.PreflightBundle(ctx, k.overlapBundle(abc.WithOverlap(now, 24*time.Hour), 3, now), to110); d.Decision != agent.Go {
		t.Fatalf("overlap bundle B→C: %+v", d.Reasons)
	}
	st := status(t, a.State().Path())
	if len(st.LearnedKeys) != 2 || st.LearnedKeys[0].Key.ID != b.ID || st.LearnedKeys[1].Key.ID != c.ID || st.LearnedKeys[1].VouchedBy != b.ID {
		t.Fatalf("learned %+v, want B by A and C by B", st.LearnedKeys)
	}
	now = k.t0.Add(60 * time.Hour)
	onlyC := abc.WithOverlap(now, 24*time.Hour)
	if d := a.PreflightBundle(ctx, k.write(k.bundle("bank", 4, now, 24*time.Hour), onlyC), to110); d.Decision != agent.Go {
		t.Fatalf("bundle signed by C alone: %+v", d.Reasons)
	}

	// A hand-written entry in the state file is no introduction.
	mallory, err := sign.GenerateKey(rand.Reader, now)
	must(t, err)
	sd := a.State()
	stored, err := sd.Load()
	must(t, err)
	stored.Learned = append(stored.Learned, agent.LearnedKey{Key: mallory.Public(), VouchedBy: stored.Pinned[0].ID, LearnedAt: now})
	must(t, sd.Save(stored))
	malloryRing, err := sign.NewKeyRing(mallory)
	must(t, err)
	refused(t, a.PreflightBundle(ctx, k.write(k.bundle("bank", 5, now, 24*time.Hour), malloryRing), to110), agent.ReasonBundleRefused, "not pinned")

	// Revoking B (its voucher A still pinned) ends B's trust and C's.
	revoked := filepath.Join(t.TempDir(), "trust.json")
	writeJSONFile(t, revoked, map[string]any{"keys": k.ring.PublicKeys(), "revoked": []string{b.ID}})
	late := newAgent(t, agent.Config{Server: closedURL(t), Key: k.keys["bank"], Product: "acme", Version: "1.0.0",
		StateDir: a.State().Path(), TrustFile: revoked, DeepCheck: -1, Now: func() time.Time { return now }})
	refused(t, late.PreflightBundle(ctx, k.write(k.bundle("bank", 6, now, 24*time.Hour), onlyC), to110), agent.ReasonBundleRefused, "not pinned")
	if st := status(t, a.State().Path()); len(st.LearnedKeys) != 0 {
		t.Fatalf("learned keys trusted after B was revoked: %+v", st.LearnedKeys)
	}
	// A key both pinned and revoked is a broken trust file.
	both := filepath.Join(t.TempDir(), "trust.json")
	writeJSONFile(t, both, map[string]any{"keys": k.ring.PublicKeys(), "revoked": []string{k.ring.Active().ID}})
	if _, err := agent.ReadTrustFile(both); err == nil || !strings.Contains(err.Error(), "both as a key and as revoked") {
		t.Fatalf("trust file pinning and revoking one key: %v", err)
	}
}

// TestHandoverThatTeachesNothing: an overlap bundle whose new key's
// signature was stripped on the way still verifies with the old key, but
// teaches nothing, and status says why.
func TestHandoverThatTeachesNothing(t *testing.T) {
	k, a, rotated, newKey, now := rotatedSite(t)
	ctx := context.Background()
	path := k.overlapBundle(rotated.WithOverlap(*now, 24*time.Hour), 2, *now)
	env, err := agent.ReadBundleFile(path)
	must(t, err)
	env.Signatures = slices.DeleteFunc(env.Signatures, func(s sign.Signature) bool { return s.KeyID == newKey.ID })
	writeJSONFile(t, path, env)
	if d := a.PreflightBundle(ctx, path, to110); d.Decision != agent.Go {
		t.Fatalf("the stripped bundle, signed by the pinned key: %+v", d.Reasons)
	}
	st := status(t, a.State().Path())
	if len(st.LearnedKeys) != 0 || !strings.Contains(st.HandoverError, newKey.ID) || !strings.Contains(st.HandoverError, "did not sign") {
		t.Fatalf("learned %+v, handover error %q", st.LearnedKeys, st.HandoverError)
	}
}

// TestOfflinePreflightPastItsDeadline: a bundle preflight whose deadline
// passed while it watched the databases (a deep check cut short) decides
// nothing: undecided, never a go on a watch that did not finish.
func TestOfflinePreflightPastItsDeadline(t *testing.T) {
	k := newBundleKit(t)
	now := k.t0.Add(time.Hour)
	a := k.siteOnBundle1(t, &now)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	d := a.PreflightBundle(ctx, "", to110)
	if d.ExitCode != 2 || !slices.Equal(reasons(d), []string{agent.ReasonTimeout}) {
		t.Fatalf("offline preflight past its deadline = %+v, want undecided (timeout)", d)
	}
}
