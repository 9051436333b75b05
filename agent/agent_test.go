package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

func TestCheckInVerifiesDeliversAndNoticesUpgrade(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	dir := t.TempDir()
	vfile := filepath.Join(dir, "VERSION")
	must(t, os.WriteFile(vfile, []byte("v1.0.0\n"), 0o644))
	cfg := f.config("ins-co", "")
	cfg.VersionFile = vfile
	a := newAgent(t, cfg)
	ctx := context.Background()

	res, err := a.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer.Offer == nil || res.Answer.Offer.Version.String() != "1.1.0" {
		t.Fatalf("offer = %+v, want 1.1.0", res.Answer.Offer)
	}
	id := instanceID(t, cfg.StateDir)
	if id == "" {
		t.Fatal("no instance id kept")
	}
	// The state directory is private.
	for _, p := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "state.json"), filepath.Join(cfg.StateDir, "outbox")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", p, fi.Mode().Perm())
		}
	}
	st := status(t, cfg.StateDir)
	if st.Answer == nil || !st.Answer.Verified || st.Answer.Expired || !strings.Contains(st.Guidance, "Upgrade to 1.1.0 is offered") {
		t.Fatalf("status after a check-in = %+v, guidance %q", st.Answer, st.Guidance)
	}

	// The installation upgrades; the agent notices the version change and
	// reports it itself, once.
	must(t, os.WriteFile(vfile, []byte("1.1.0\n"), 0o644))
	res, err = a.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 1 {
		t.Fatalf("delivered %d events, want the upgrade_succeeded", res.Delivered)
	}
	if _, err := a.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	evs := f.events(id)
	if len(evs) != 1 || evs[0].Kind != release.EventUpgradeSucceeded || evs[0].From.String() != "1.0.0" || evs[0].To.String() != "1.1.0" {
		t.Fatalf("server events = %+v, want one upgrade_succeeded 1.0.0 -> 1.1.0", evs)
	}
	if st := status(t, cfg.StateDir); len(st.Undelivered) != 0 || st.Version.String() != "1.1.0" {
		t.Fatalf("status = %d undelivered, version %s", len(st.Undelivered), st.Version)
	}
	// It goes back: a rollback, reported as the failed upgrade to 1.1.0,
	// which auto-halt counts and preflight refuses from then on.
	must(t, os.WriteFile(vfile, []byte("1.0.0\n"), 0o644))
	if res, err := a.CheckIn(ctx); err != nil || res.Delivered != 1 {
		t.Fatalf("check-in after the rollback: delivered %d, %v", res.Delivered, err)
	}
	if evs := f.events(id); len(evs) != 2 || evs[0].Kind != release.EventUpgradeFailed || evs[0].From.String() != "1.0.0" ||
		evs[0].To.String() != "1.1.0" || !strings.Contains(evs[0].Detail, "rolled back from 1.1.0 to 1.0.0") {
		t.Fatalf("server events after the rollback = %+v", evs)
	}
	if d := a.Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 1 || !slices.Equal(reasons(d), []string{agent.ReasonFailedHere}) {
		t.Fatalf("preflight to the version rolled back from = %+v", d)
	}
	must(t, os.WriteFile(vfile, []byte("1.1.0\n"), 0o644)) // and forward again, for what follows
	if _, err := a.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	// Once expired, the kept answer still verifies (as of its issue) and
	// its guidance stands, marked expired.
	sd, err := agent.OpenStateDir(cfg.StateDir)
	must(t, err)
	later, err := agent.ReadStatus(sd, time.Now().Add(2*time.Hour))
	must(t, err)
	if later.Answer == nil || !later.Answer.Verified || !later.Answer.Expired || later.Guidance == "" {
		t.Fatalf("status two hours later = %+v, guidance %q; want verified, expired, guidance kept", later.Answer, later.Guidance)
	}
	// A tampered kept answer no longer verifies in status.
	path := filepath.Join(cfg.StateDir, "state.json")
	data, err := os.ReadFile(path)
	must(t, err)
	var raw map[string]any
	must(t, json.Unmarshal(data, &raw))
	env := raw["last_answer"].(map[string]any)["envelope"].(map[string]any)
	payload := env["payload"].(string)
	env["payload"] = payload[:len(payload)-8] + "AAAAAAA="
	data, _ = json.Marshal(raw)
	must(t, os.WriteFile(path, data, 0o600))
	if st := status(t, cfg.StateDir); st.Answer == nil || st.Answer.Verified || st.Guidance != "" {
		t.Fatalf("status of a tampered kept answer = %+v, guidance %q", st.Answer, st.Guidance)
	}
}

// proxy forwards to target, letting the test rewrite answers.
type proxy struct {
	mu      sync.Mutex
	rewrite func(body []byte) []byte
	down    bool
}

func startProxy(t *testing.T, target string) (*proxy, string) {
	p := &proxy{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		rw, down := p.rewrite, p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, target+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if rw != nil && r.URL.Path == "/v1/checkin" && resp.StatusCode == 200 {
			out = rw(out)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	t.Cleanup(hs.Close)
	return p, hs.URL
}

func (p *proxy) set(rw func([]byte) []byte) {
	p.mu.Lock()
	p.rewrite = rw
	p.mu.Unlock()
}

// TestUnverifiedAnswersMeanNoUpgrade: a tampered, replayed, expired or
// unpinned answer is never acted on; the events it would have acknowledged
// stay queued; preflight says 2.
func TestUnverifiedAnswersMeanNoUpgrade(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	p, url := startProxy(t, f.srv.URL)
	ctx := context.Background()
	var recorded []byte

	other, err := sign.GenerateKey(rand.Reader, time.Now())
	must(t, err)
	cases := []struct {
		name    string
		rewrite func([]byte) []byte
		cfg     func(*agent.Config)
		want    error
	}{
		{name: "tampered", rewrite: func(b []byte) []byte {
			var env sign.Envelope
			must(t, json.Unmarshal(b, &env))
			env.Payload = bytes.Replace(env.Payload, []byte(`"offer":{`), []byte(`"offer" :{`), 1)
			out, _ := json.Marshal(env)
			return out
		}, want: sign.ErrBadSignature},
		{name: "replayed", rewrite: func(b []byte) []byte { return recorded }, want: client.ErrUnverified},
		{name: "expired", cfg: func(c *agent.Config) {
			c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		}, want: sign.ErrExpired},
		{name: "unpinned", cfg: func(c *agent.Config) {
			c.TrustFile = writeKeys(t, t.TempDir(), []sign.PublicKey{other.Public()})
		}, want: sign.ErrNoTrustedSignature},
	}
	// A genuine answer to replay later.
	p.set(func(b []byte) []byte { recorded = bytes.Clone(b); return b })
	genuine := f.config("ins-co", "1.0.0")
	genuine.Server = url
	if _, err := newAgent(t, genuine).CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.set(c.rewrite)
			defer p.set(nil)
			cfg := f.config("ins-co", "1.0.0")
			cfg.Server = url
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			a := newAgent(t, cfg)
			_, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeStarted,
				From: release.MustParseVersion("1.0.0"), To: release.MustParseVersion("1.1.0"), At: time.Now().UTC()})
			must(t, err)
			d := a.Preflight(ctx, release.MustParseVersion("1.1.0"))
			if d.ExitCode != 2 || d.Decision != agent.Undecided || !slices.Contains(reasons(d), agent.ReasonUnverified) {
				t.Fatalf("preflight = %+v, want undecided (answer_unverified)", d)
			}
			_, err = a.CheckIn(ctx)
			if !errors.Is(err, client.ErrUnverified) || !errors.Is(err, c.want) {
				t.Fatalf("check-in error = %v, want %v", err, c.want)
			}
			st := status(t, cfg.StateDir)
			if len(st.Undelivered) != 1 {
				t.Errorf("%d undelivered events after unverified answers, want 1 kept", len(st.Undelivered))
			}
			if st.Answer != nil || st.LastError == "" {
				t.Errorf("status keeps answer %+v, last error %q; want no answer and the error", st.Answer, st.LastError)
			}
			if c.name == "unpinned" && len(st.UnpinnedSigners) == 0 {
				t.Errorf("status does not name the unpinned signer")
			}
		})
	}
}

// TestServerDownKeepsReports: preflight says 2 while the server cannot be
// reached; reports stay on disk and are delivered, once, when it is back.
func TestServerDownKeepsReports(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	if _, err := newAgent(t, cfg).CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	id := instanceID(t, cfg.StateDir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	down := cfg
	down.Server = deadURL
	a := newAgent(t, down)
	for _, k := range []release.EventKind{release.EventUpgradeStarted, release.EventUpgradeFailed} {
		_, err := agent.Report(a.State(), release.Event{Kind: k, From: release.MustParseVersion("1.0.0"),
			To: release.MustParseVersion("1.1.0"), At: time.Now().UTC(), Detail: "migration 42"})
		must(t, err)
	}
	// (Not to 1.1.0, whose upgrade just failed here: that is a no-go.)
	d := a.Preflight(ctx, release.MustParseVersion("1.2.0"))
	if d.ExitCode != 2 || !slices.Equal(reasons(d), []string{agent.ReasonUnreachable}) {
		t.Fatalf("preflight with the server down = %+v, want exit 2, server_unreachable", d)
	}
	st := status(t, cfg.StateDir)
	if len(st.Undelivered) != 2 || st.LastError == "" {
		t.Fatalf("status with the server down: %d undelivered, last error %q", len(st.Undelivered), st.LastError)
	}
	// The last verified answer is still shown, as the last word.
	if st.Answer == nil || !st.Answer.Verified {
		t.Fatalf("status lost the last verified answer: %+v", st.Answer)
	}
	if len(f.events(id)) != 0 {
		t.Fatal("events reached the server while it was unreachable")
	}

	// The server is back.
	res, err := newAgent(t, cfg).CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 2 {
		t.Fatalf("delivered %d, want 2", res.Delivered)
	}
	if _, err := newAgent(t, cfg).CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	evs := f.events(id)
	sort.Slice(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	if len(evs) != 2 || evs[0].Kind != release.EventUpgradeStarted || evs[1].Kind != release.EventUpgradeFailed {
		t.Fatalf("server events = %+v, want upgrade_started then upgrade_failed, once each", evs)
	}
	if st := status(t, cfg.StateDir); len(st.Undelivered) != 0 || st.LastError != "" {
		t.Fatalf("after delivery: %d undelivered, last error %q", len(st.Undelivered), st.LastError)
	}
}

// TestPreflightReasons runs preflight against the real server for each
// reason it can give without a database.
func TestPreflightReasons(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "3.0.0"} {
		f.release(v, func(r *client.NewRelease) {
			r.RequiredStop = v == "2.0.0"
			switch v {
			case "3.0.0":
				r.RollbackSafeTo = release.MustParseVersion("2.1.0")
			case "2.0.0":
				r.RollbackSafeTo = release.MustParseVersion("1.0.0")
			}
		})
	}
	v := release.MustParseVersion
	pause := func(ver string) {
		_, err := f.admin.PauseRelease(ctx, "acme", v(ver), "investigating odd reports", "https://status.example.com/i/7")
		must(t, err)
	}
	pull := func(ver string, pr client.PullRequest) {
		_, err := f.admin.PullRelease(ctx, "acme", v(ver), pr)
		must(t, err)
	}
	pause("1.2.0")
	pull("3.0.0", client.PullRequest{Reason: "corrupts indexes", IncidentURL: "https://status.example.com/i/9",
		Action: release.ActionRollback, Target: v("2.1.0")})
	pull("2.1.0", client.PullRequest{Reason: "breaks logins", Action: release.ActionHold})
	pull("1.1.0", client.PullRequest{Reason: "slow queries", Action: release.ActionUpgrade, Target: v("2.0.0")})

	cases := []struct {
		running, to string
		code        int
		want        []string
	}{
		{"1.0.0", "2.0.0", 0, nil},                                                    // the required stop itself
		{"1.0.0", "3.0.0", 1, []string{agent.ReasonRequiredStop}},                     // beyond the stop
		{"1.0.0", "1.2.0", 1, []string{agent.ReasonNotOffered}},                       // paused target: not offered
		{"1.2.0", "3.0.0", 1, []string{agent.ReasonPaused, agent.ReasonRequiredStop}}, // running a paused release
		{"1.1.0", "2.0.0", 0, nil},                                                    // pulled, upgrade along the guidance
		{"1.1.0", "1.2.0", 1, []string{agent.ReasonPulled, agent.ReasonNotOffered}},   // pulled, elsewhere
		{"2.1.0", "2.2.0", 1, []string{agent.ReasonPulled, agent.ReasonNotOffered}},   // pulled, hold
		{"3.0.0", "2.1.0", 1, []string{agent.ReasonPulled, agent.ReasonNotOffered}},   // rollback target itself pulled: hold
		{"2.0.0", "1.9.0", 1, []string{agent.ReasonNotOffered}},                       // a downgrade nobody offered
	}
	for _, c := range cases {
		t.Run(c.running+"->"+c.to, func(t *testing.T) {
			a := newAgent(t, f.config("ins-co", c.running))
			d := a.Preflight(ctx, v(c.to))
			if d.ExitCode != c.code || !slices.Equal(reasons(d), c.want) {
				t.Fatalf("preflight %s -> %s = exit %d %v (%+v), want exit %d %v", c.running, c.to, d.ExitCode, reasons(d), d.Reasons, c.code, c.want)
			}
		})
	}
	// A sanctioned rollback is a go.
	pull("2.0.0", client.PullRequest{Reason: "slow", Action: release.ActionRollback, Target: v("1.0.0")})
	d := newAgent(t, f.config("ins-co", "2.0.0")).Preflight(ctx, v("1.0.0"))
	if d.ExitCode != 0 {
		t.Fatalf("rollback along the guidance: %+v, want go", d)
	}
	// Bad configuration is undecided, never go.
	cfg := f.config("ins-co", "1.0.0")
	cfg.TrustFile = ""
	d = newAgent(t, cfg).Preflight(ctx, v("2.0.0"))
	if d.ExitCode != 2 || !slices.Contains(reasons(d), agent.ReasonConfiguration) {
		t.Fatalf("preflight without pinned keys = %+v, want exit 2, configuration", d)
	}
}

// TestKeyRotation: during the overlap an agent that pinned only the old key
// learns the new one from an answer the old key vouches for, and keeps
// verifying after the overlap without a product update. An agent that did
// not check in during the overlap cannot verify after it until the
// operator ships the new key in the trust file. A learned key is trusted
// only while the key that vouched for it is.
func TestKeyRotation(t *testing.T) {
	dsn := servertest.SQLite(t)
	f := newFleetOn(t, servertest.Start(t, dsn, fastServer()))
	f.release("1.0.0")
	f.release("1.1.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	absent := f.config("ins-co", "1.0.0") // checks in before the rotation, and next after the overlap
	for _, c := range []agent.Config{cfg, absent} {
		if _, err := newAgent(t, c).CheckIn(ctx); err != nil {
			t.Fatal(err)
		}
	}
	oldKey := status(t, cfg.StateDir).PinnedKeys[0]
	newKey, err := f.admin.RotateKey(ctx)
	must(t, err)

	// Within the overlap.
	var logs servertest.Buffer
	cfg.Logger = slogTo(&logs)
	servertest.Eventually(t, 5*time.Second, "the new key learnt from a co-signed answer", func() bool {
		_, err := newAgent(t, cfg).CheckIn(ctx)
		return err == nil && len(status(t, cfg.StateDir).LearnedKeys) > 0
	})
	st := status(t, cfg.StateDir)
	if l := st.LearnedKeys; len(l) != 1 || l[0].Key.ID != newKey.ID || !l[0].Key.Key.Equal(newKey.Key) || l[0].VouchedBy != oldKey {
		t.Fatalf("learned %+v, want %s vouched for by %s", l, newKey.ID, oldKey)
	}
	if !slices.Equal(st.PinnedKeys, []string{oldKey}) || len(st.UnpinnedSigners) != 0 {
		t.Fatalf("pinned %v, unpinned signers %v: want the trust file's key and none", st.PinnedKeys, st.UnpinnedSigners)
	}
	if !strings.Contains(logs.String(), "KEY ROTATION: learned") || !strings.Contains(logs.String(), newKey.ID) {
		t.Errorf("learning a key was not logged: %s", logs.String())
	}
	// An agent that pins only the new key (the old one retired from its
	// trust file) is not taught the old one back by the overlap's answers.
	fresh := f.config("ins-co", "1.0.0")
	fresh.TrustFile = writeKeys(t, t.TempDir(), []sign.PublicKey{newKey})
	if _, err := newAgent(t, fresh).CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(t, fresh.StateDir); len(st.LearnedKeys) != 0 || !slices.Equal(st.PinnedKeys, []string{newKey.ID}) {
		t.Fatalf("an agent pinning only the new key learned %+v", st.LearnedKeys)
	}

	// After the overlap: a server on the same store whose previous key no
	// longer co-signs. The agent verifies with the learnt key.
	after := fastServer()
	after.KeyOverlap = -1
	late := servertest.Start(t, dsn, after)
	cfg.Server, absent.Server = late.URL, late.URL
	if d := newAgent(t, cfg).Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight after the overlap with the learnt key = %+v, want go", d)
	}

	// The agent that missed the overlap learnt nothing, and /v1/keys
	// teaches it nothing: it refuses until the trust file lists the key.
	d := newAgent(t, absent).Preflight(ctx, release.MustParseVersion("1.1.0"))
	if d.ExitCode != 2 || !slices.Contains(reasons(d), agent.ReasonUnverified) {
		t.Fatalf("preflight after the overlap with only the old key = %+v, want undecided", d)
	}
	if st := status(t, absent.StateDir); !strings.Contains(st.LastError, newKey.ID) || !strings.Contains(st.LastError, "not pinned") || len(st.LearnedKeys) != 0 {
		t.Fatalf("last error %q does not name the unpinned key %s (learned %+v)", st.LastError, newKey.ID, st.LearnedKeys)
	}
	keys, err := f.admin.PublicKeys(ctx)
	must(t, err)
	absent.TrustFile = writeKeys(t, t.TempDir(), keys)
	if d := newAgent(t, absent).Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight after the new key was shipped = %+v, want go", d)
	}
	if st := status(t, absent.StateDir); len(st.PinnedKeys) != 2 || len(st.UnpinnedSigners) != 0 {
		t.Fatalf("pinned %v, unpinned signers %v", st.PinnedKeys, st.UnpinnedSigners)
	}

	// A trust file that drops the old key (compromised, say) drops the key
	// it vouched for too: the agent refuses again.
	other, err := sign.GenerateKey(rand.Reader, time.Now())
	must(t, err)
	revoked := cfg
	revoked.TrustFile = writeKeys(t, t.TempDir(), []sign.PublicKey{other.Public()})
	var dropLogs servertest.Buffer
	revoked.Logger = slogTo(&dropLogs)
	if d := newAgent(t, revoked).Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 2 || !slices.Contains(reasons(d), agent.ReasonUnverified) {
		t.Fatalf("preflight after the voucher was unpinned = %+v, want undecided", d)
	}
	if st := status(t, cfg.StateDir); len(st.LearnedKeys) != 0 || !strings.Contains(dropLogs.String(), "dropped a learned answer-signing key") {
		t.Fatalf("learned %+v after the voucher was unpinned; log: %s", st.LearnedKeys, dropLogs.String())
	}
	// A trust file that lists the new key makes it pinned, not learned.
	cfg.TrustFile = writeKeys(t, t.TempDir(), []sign.PublicKey{newKey})
	if d := newAgent(t, cfg).Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight with only the new key = %+v, want go", d)
	}
	if st := status(t, cfg.StateDir); !slices.Equal(st.PinnedKeys, []string{newKey.ID}) || len(st.LearnedKeys) != 0 {
		t.Fatalf("pinned %v, learned %+v, want only the new key pinned", st.PinnedKeys, st.LearnedKeys)
	}
}

// TestTrustOnFirstUse pins the server's keys once and never again; a
// rotation is learnt like any agent's.
func TestTrustOnFirstUse(t *testing.T) {
	f := newFleetReleased(t, "1.0.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	cfg.TrustFile, cfg.TrustOnFirstUse = "", true
	var logs servertest.Buffer
	cfg.Logger = slogTo(&logs)
	if _, err := newAgent(t, cfg).CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "TRUST ON FIRST USE") {
		t.Errorf("trust on first use was not announced loudly: %s", logs.String())
	}
	if st := status(t, cfg.StateDir); len(st.PinnedKeys) != 1 || !strings.Contains(st.PinnedFrom, "trust on first use") {
		t.Fatalf("pinned %v from %q", st.PinnedKeys, st.PinnedFrom)
	}
	newKey, err := f.admin.RotateKey(ctx)
	must(t, err)
	servertest.Eventually(t, 5*time.Second, "rotation seen", func() bool {
		_, err := newAgent(t, cfg).CheckIn(ctx)
		return err == nil && len(status(t, cfg.StateDir).LearnedKeys) > 0
	})
	// The new key is learnt from an answer the pinned key signed, never
	// pinned from /v1/keys again.
	if st := status(t, cfg.StateDir); len(st.PinnedKeys) != 1 || len(st.LearnedKeys) != 1 || st.LearnedKeys[0].Key.ID != newKey.ID {
		t.Fatalf("trust on first use: pinned %v, learned %+v", st.PinnedKeys, st.LearnedKeys)
	}
}

// TestRetryAfter: a 429 or a 503 makes the agent wait at least Retry-After.
func TestRetryAfter(t *testing.T) {
	f := newFleetReleased(t, "1.0.0")
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(status), func(t *testing.T) { retryAfter(t, f, status) })
	}
}

// retryAfter: a check-in answered status with Retry-After 3600 waits an hour.
func retryAfter(t *testing.T, f *fleet, code int) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/checkin" {
			w.Header().Set("Retry-After", "3600")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"status":%d,"code":"busy","title":"Busy"}`, code)
			return
		}
		http.NotFound(w, r)
	}))
	defer hs.Close()
	cfg := f.config("ins-co", "1.0.0")
	cfg.Server = hs.URL
	ctx, cancel := context.WithCancel(context.Background())
	a := newAgent(t, cfg)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	servertest.Eventually(t, 10*time.Second, "next check-in scheduled", func() bool {
		return !status(t, cfg.StateDir).NextDue.IsZero()
	})
	cancel()
	must(t, <-done)
	st := status(t, cfg.StateDir)
	if wait := time.Until(st.NextDue); wait < 59*time.Minute {
		t.Fatalf("next check-in in %s after a %d with Retry-After 3600, want at least an hour", wait, code)
	}
	if !strings.Contains(st.LastError, strconv.Itoa(code)) {
		t.Fatalf("last error %q", st.LastError)
	}
}

// TestVersionSources: the version command is run at every check-in; a
// version that cannot be read is a configuration error: no check-in,
// preflight undecided.
func TestVersionSources(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	dir := t.TempDir()
	vfile := filepath.Join(dir, "v")
	must(t, os.WriteFile(vfile, []byte("1.0.0"), 0o644))
	cfg := f.config("ins-co", "")
	cfg.VersionCommand = "echo v$(cat " + vfile + ")"
	a := newAgent(t, cfg)
	res, err := a.CheckIn(ctx)
	must(t, err)
	if res.Version.String() != "1.0.0" {
		t.Fatalf("version from the command: %s", res.Version)
	}
	must(t, os.WriteFile(vfile, []byte("1.1.0"), 0o644))
	if res, err = a.CheckIn(ctx); err != nil || res.Version.String() != "1.1.0" || res.Delivered != 1 {
		t.Fatalf("after the upgrade: version %s, delivered %d, err %v", res.Version, res.Delivered, err)
	}
	cfg.VersionCommand = "echo not-a-version"
	d := newAgent(t, cfg).Preflight(ctx, release.MustParseVersion("1.2.0"))
	var ce *agent.ConfigError
	if _, err := newAgent(t, cfg).CheckIn(ctx); !errors.As(err, &ce) {
		t.Fatalf("check-in with a bad version: %v, want a configuration error", err)
	}
	if d.ExitCode != 2 || !slices.Equal(reasons(d), []string{agent.ReasonConfiguration}) {
		t.Fatalf("preflight with a bad version = %+v", d)
	}
	cfg.VersionCommand = "exit 3"
	if _, err := newAgent(t, cfg).CheckIn(ctx); !errors.As(err, &ce) {
		t.Fatalf("check-in with a failing version command: %v", err)
	}
}

// TestPreflightHandler: the webhook form answers 200 go, 412 no-go and 503
// undecided, with the decision as JSON.
func TestPreflightHandler(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	up := newAgent(t, f.config("ins-co", "1.0.0"))
	down := f.config("ins-co", "1.0.0")
	down.Server = "http://127.0.0.1:1"
	cases := []struct {
		a    *agent.Agent
		to   string
		code int
	}{
		{up, "1.1.0", http.StatusOK},
		{up, "1.2.0", http.StatusPreconditionFailed},
		{up, "bogus", http.StatusBadRequest},
		{newAgent(t, down), "1.1.0", http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		hs := httptest.NewServer(agent.PreflightHandler(c.a, time.Minute))
		resp, err := http.Get(hs.URL + "/preflight?to=" + c.to)
		must(t, err)
		var d agent.Decision
		if c.code != http.StatusBadRequest {
			must(t, json.NewDecoder(resp.Body).Decode(&d))
			if d.To.String() != c.to {
				t.Errorf("decision for %s: %+v", c.to, d)
			}
		}
		resp.Body.Close()
		hs.Close()
		if resp.StatusCode != c.code {
			t.Errorf("GET /preflight?to=%s: %d, want %d (%+v)", c.to, resp.StatusCode, c.code, d)
		}
	}
}

// TestLargeOutbox: more events than one check-in may carry go out in
// batches of 100, one right after the other, not one batch per interval.
func TestLargeOutbox(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	cfg := f.config("ins-co", "1.0.0")
	cfg.Interval = time.Hour
	a := newAgent(t, cfg)
	for i := range 150 {
		_, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeFailed, From: release.MustParseVersion("1.0.0"),
			To: release.MustParseVersion("1.1.0"), At: time.Now().UTC(), Detail: fmt.Sprintf("attempt %d", i)})
		must(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	servertest.Eventually(t, 30*time.Second, "150 events delivered", func() bool {
		return len(status(t, cfg.StateDir).Undelivered) == 0
	})
	cancel()
	must(t, <-done)
	if n := len(f.events(instanceID(t, cfg.StateDir))); n != 150 {
		t.Fatalf("%d events on the server, want 150", n)
	}
}

// TestFailedUpgradeNotRetried: once an upgrade to a version failed here,
// preflight refuses that version (no upgrade loop) until the operator says
// to retry or an upgrade to it succeeds.
func TestFailedUpgradeNotRetried(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	a := newAgent(t, cfg)
	v := release.MustParseVersion
	if d := a.Preflight(ctx, v("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight before any failure = %+v", d)
	}
	_, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeFailed, From: v("1.0.0"), To: v("1.1.0"),
		At: time.Now().UTC(), Detail: "migration 42 failed"})
	must(t, err)
	for i := range 2 { // queued, then delivered and remembered
		d := a.Preflight(ctx, v("1.1.0"))
		if d.ExitCode != 1 || !slices.Equal(reasons(d), []string{agent.ReasonFailedHere}) || !strings.Contains(d.Reasons[0].Message, "migration 42") {
			t.Fatalf("preflight %d after the failure = %+v", i, d)
		}
	}
	if st := status(t, cfg.StateDir); len(st.FailedUpgrades) != 1 || st.FailedUpgrades[0].To.String() != "1.1.0" {
		t.Fatalf("status failed upgrades = %+v", st.FailedUpgrades)
	}
	retry := cfg
	retry.RetryFailed = true
	if d := newAgent(t, retry).Preflight(ctx, v("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight with RetryFailed = %+v", d)
	}
	_, err = agent.Report(a.State(), release.Event{Kind: release.EventUpgradeSucceeded, From: v("1.0.0"), To: v("1.1.0"), At: time.Now().UTC()})
	must(t, err)
	if _, err := a.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	if d := a.Preflight(ctx, v("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight after a later success = %+v", d)
	}
	if st := status(t, cfg.StateDir); len(st.FailedUpgrades) != 0 {
		t.Fatalf("status failed upgrades after a success = %+v", st.FailedUpgrades)
	}
}

// TestPreflightRestart: preflight to the version already running (a
// restarted pod's init container, a first start) is a restart, not an
// upgrade: go, whatever the server says or whether it answers, with what
// speaks against the version as warnings. An upgrade keeps every rule.
func TestPreflightRestart(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	v := release.MustParseVersion
	restart := func(cfg agent.Config, warnings ...string) agent.Decision {
		t.Helper()
		d := newAgent(t, cfg).Preflight(ctx, v(cfg.Version))
		var got []string
		for _, w := range d.Warnings {
			got = append(got, w.Code)
		}
		if d.ExitCode != 0 || d.Decision != agent.Go || !d.Restart || len(d.Reasons) != 0 || !slices.Equal(got, warnings) {
			t.Fatalf("preflight to the running %s = %+v, want go with warnings %v", cfg.Version, d, warnings)
		}
		return d
	}
	running := f.config("ins-co", "1.1.0")
	restart(running) // nothing offered above it: not a reason on a restart
	_, err := f.admin.PauseRelease(ctx, "acme", v("1.1.0"), "odd reports", "https://status.example.com/i/7")
	must(t, err)
	servertest.Eventually(t, 5*time.Second, "the pause in the answers", func() bool {
		d := newAgent(t, running).Preflight(ctx, v("1.1.0"))
		return len(d.Warnings) > 0
	})
	restart(running, agent.ReasonPaused)
	// An upgrade from a paused version to one not offered stays a no-go.
	if d := newAgent(t, running).Preflight(ctx, v("1.2.0")); d.ExitCode != 1 {
		t.Fatalf("upgrade from a paused version = %+v, want no-go", d)
	}

	// The server down: still go, saying so; an upgrade is undecided.
	down := f.config("ins-co", "1.1.0")
	down.Server = closedURL(t)
	restart(down, agent.ReasonUnreachable)
	if d := newAgent(t, down).Preflight(ctx, v("1.2.0")); d.ExitCode != 2 {
		t.Fatalf("upgrade with the server down = %+v, want undecided", d)
	}

	// Offline, without any bundle: a restart goes, an upgrade does not.
	off := newAgent(t, down)
	off.UseBundles(t.TempDir())
	if d := off.Preflight(ctx, v("1.1.0")); d.ExitCode != 0 || !d.Restart || len(d.Warnings) == 0 || d.Warnings[0].Code != agent.ReasonBundleMissing {
		t.Fatalf("offline restart without a bundle = %+v", d)
	}
	if d := off.Preflight(ctx, v("1.2.0")); d.ExitCode != 2 {
		t.Fatalf("offline upgrade without a bundle = %+v, want undecided", d)
	}
}

// TestOutboxNeverJams: an event's detail with Windows line ends and colour
// codes is cleaned and delivered; events far beyond one body's size go out
// over several check-ins; an outbox file that is no event, and an event the
// server refuses, are set aside (status lists them) and the check-in goes
// on with the rest.
func TestOutboxNeverJams(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	cfg.Interval = time.Hour
	a := newAgent(t, cfg)
	v := release.MustParseVersion
	_, err := agent.Report(a.State(), release.Event{Kind: release.EventUpgradeFailed, From: v("1.0.0"), To: v("1.1.0"), At: time.Now().UTC(),
		Detail: "migrate: \x1b[31mERROR\x1b[0m\r\nrelation \"x\" exists\r\n"})
	must(t, err)
	if _, err := a.CheckIn(ctx); err != nil {
		t.Fatalf("check-in with a log excerpt as detail: %v", err)
	}
	id := instanceID(t, cfg.StateDir)
	if evs := f.events(id); len(evs) != 1 || evs[0].Detail != "migrate: \uFFFD[31mERROR\uFFFD[0m\nrelation \"x\" exists\n" {
		t.Fatalf("events on the server %+v", evs)
	}

	// 40 events of 4 KiB: 160 KiB, beyond one 64 KiB body.
	for i := range 40 {
		_, err := agent.Report(a.State(), release.Event{Kind: release.EventIntegrityFailed, To: v("1.0.0"), At: time.Now().UTC(),
			Detail: fmt.Sprintf("db%02d: ", i) + strings.Repeat("x", 4000)})
		must(t, err)
	}
	// A file that is no event, and an event this server does not know.
	outbox := filepath.Join(cfg.StateDir, "outbox")
	must(t, os.WriteFile(filepath.Join(outbox, "00000000000000000001-garbage.json"), []byte("{not json"), 0o600))
	must(t, os.WriteFile(filepath.Join(outbox, "00000000000000000002-future.json"),
		[]byte(`{"kind":"upgrade_rolled_back","from":"1.1.0","to":"1.0.0","at":"2026-12-06T00:00:00Z"}`), 0o600))
	// An upgrade failure the server refuses (no "from") is set aside too,
	// but what happened here stands: 1.2.0 is refused (failed_here).
	must(t, os.WriteFile(filepath.Join(outbox, "00000000000000000003-nofrom.json"),
		[]byte(`{"kind":"upgrade_failed","to":"1.2.0","at":"2026-12-06T00:00:00Z"}`), 0o600))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	servertest.Eventually(t, 30*time.Second, "every event delivered or set aside", func() bool {
		return len(status(t, cfg.StateDir).Undelivered) == 0
	})
	cancel()
	must(t, <-done)
	if n := len(f.events(id)); n != 41 {
		t.Fatalf("%d events on the server, want 41", n)
	}
	st := status(t, cfg.StateDir)
	var names []string
	for _, r := range st.Rejected {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"00000000000000000001-garbage.json", "00000000000000000002-future.json", "00000000000000000003-nofrom.json"}) ||
		!strings.Contains(st.Rejected[0].Why, "not an event") || !strings.Contains(st.Rejected[1].Why, "upgrade_rolled_back") {
		t.Fatalf("rejected %+v", st.Rejected)
	}
	if st.LastError != "" {
		t.Fatalf("last error %q", st.LastError)
	}
	if d := a.Preflight(ctx, v("1.2.0")); d.ExitCode != 1 || !slices.Contains(reasons(d), agent.ReasonFailedHere) {
		t.Fatalf("preflight to the version whose refused failure report was set aside = %+v", d)
	}
}
