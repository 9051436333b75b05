package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// vendor is a real `ringfence serve` process on SQLite, driven through the
// real CLI.
type vendor struct {
	t   *testing.T
	dir string
	url string
	log *servertest.Buffer
}

// startVendor starts `ringfence serve` on 127.0.0.1:0 with a fresh SQLite
// store and an admin token, and points the CLI at it (RINGFENCE_SERVER,
// RINGFENCE_TOKEN).
func startVendor(t *testing.T) *vendor {
	t.Helper()
	v := &vendor{t: t, dir: t.TempDir(), log: &servertest.Buffer{}}
	db := filepath.Join(v.dir, "ringfence.db")
	tok, code := ringfence(t, "admin", "token", "create", "--db", db, "--init", "--role", "admin")
	if code != 0 {
		t.Fatalf("admin token create: exit %d: %s", code, tok)
	}
	t.Setenv("RINGFENCE_TOKEN", strings.TrimSpace(tok))
	cmd := exec.Command(ringfenceBin, "serve", "--db", db, "--listen", "127.0.0.1:0")
	cmd.Stderr = v.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); <-done })
	addr := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := addr.FindStringSubmatch(v.log.String()); m != nil {
			v.url = "http://" + m[1]
			break
		}
		select {
		case <-done:
			t.Fatalf("ringfence serve exited: %s", v.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringfence serve did not start: %s", v.log.String())
		}
	}
	t.Setenv("RINGFENCE_SERVER", v.url)
	return v
}

// run runs the CLI and fails the test unless it exits with want.
func (v *vendor) run(want int, args ...string) string {
	v.t.Helper()
	out, code := ringfence(v.t, args...)
	if code != want {
		v.t.Fatalf("ringfence %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// enroll creates customer in ring stable with an enrollment key, and
// returns the key's file.
func (v *vendor) enroll(customer string) string {
	v.t.Helper()
	v.run(0, "customer", "create", "acme", customer, "--ring", "stable")
	var k struct {
		Key string `json:"key"`
	}
	must(v.t, json.Unmarshal([]byte(v.run(0, "customer", "key", "create", "acme", customer, "--json")), &k))
	path := filepath.Join(v.dir, customer+".key")
	must(v.t, os.WriteFile(path, []byte(k.Key+"\n"), 0o600))
	return path
}

// trustFile writes the server's keys (GET /v1/keys) to trust.json in the
// vendor's directory and returns its path.
func (v *vendor) trustFile() string {
	v.t.Helper()
	keys, err := httpGet(v.url + "/v1/keys")
	must(v.t, err)
	path := filepath.Join(v.dir, "trust.json")
	must(v.t, os.WriteFile(path, keys, 0o644))
	return path
}

// releaseStatus returns the status of release version of acme.
func (v *vendor) releaseStatus(version string) release.Release {
	v.t.Helper()
	var r release.Release
	must(v.t, json.Unmarshal([]byte(v.run(0, "release", "show", "acme", version, "--json")), &r))
	return r
}

// closedURL is a loopback URL on which nothing listens: the site's view of
// the vendor.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// site runs the agent CLI of an air-gapped installation: its server URL
// has no route, so only files carried in and out reach it.
type site struct {
	t     *testing.T
	dir   string
	flags []string
}

func newSite(t *testing.T, keyFile, trust, version string) *site {
	s := &site{t: t, dir: t.TempDir()}
	s.flags = []string{"--state", filepath.Join(s.dir, "state"), "--server", closedURL(t), "--key-file", keyFile,
		"--product", "acme", "--version", version, "--trust", trust}
	return s
}

// agent runs `ringfence agent SUB... <site flags> args...`.
func (s *site) agent(sub []string, args ...string) (string, int) {
	s.t.Helper()
	return ringfence(s.t, append(append(append([]string{"agent"}, sub...), s.flags...), args...)...)
}

// preflight runs agent preflight --bundle and returns the decision and exit
// code.
func (s *site) preflight(bundle, to string) (string, int) {
	s.t.Helper()
	return s.agent([]string{"preflight"}, "--bundle", bundle, "--to", to)
}

// TestAirGappedSite: a site with no route to the vendor runs only on files
// carried in and out. Preflight says go for an offered version and no-go
// once a newer bundle carries a pull; the older bundle is refused after the
// newer one, also when `agent run --bundle-dir` finds both; an export
// imported at the vendor counts toward auto-halt exactly as a check-in
// would (with one online customer's failure it crosses a two-customer
// threshold), importing it twice changes nothing, and the next bundle's
// acknowledgement empties the site's outbox.
func TestAirGappedSite(t *testing.T) {
	v := startVendor(t)
	v.run(0, "product", "create", "acme", "--halt-min-failures", "2", "--halt-min-customers", "2", "--halt-window", "1h")
	v.run(0, "ring", "create", "acme", "stable", "--position", "0")
	bankKey := v.enroll("bank")
	onlineKey := v.enroll("online-co")
	v.run(0, "release", "create", "acme", "1.0.0")
	v.run(0, "release", "create", "acme", "1.1.0")
	trust := v.trustFile()

	gap := newSite(t, bankKey, trust, "1.0.0")
	b1 := filepath.Join(gap.dir, "bundle-1.json")
	out := v.run(0, "bundle", "create", "acme", "bank", "-o", b1)
	if !strings.Contains(out, "sequence 1") {
		t.Fatalf("bundle create: %s", out)
	}
	if out, code := gap.preflight(b1, "1.1.0"); code != 0 || !strings.HasPrefix(out, "GO") {
		t.Fatalf("preflight on bundle 1: exit %d:\n%s", code, out)
	}

	// The vendor pulls 1.1.0; the next bundle carries the pull.
	v.run(0, "release", "pull", "acme", "1.1.0", "--reason", "corrupts indexes", "--hold")
	b2 := filepath.Join(gap.dir, "bundle-2.json")
	v.run(0, "bundle", "create", "acme", "bank", "-o", b2, "--valid", "20d")
	out, code := gap.preflight(b2, "1.1.0")
	if code != 1 || !strings.HasPrefix(out, "NO-GO") || !strings.Contains(out, "not_offered") {
		t.Fatalf("preflight on bundle 2 (1.1.0 pulled): exit %d, want 1:\n%s", code, out)
	}
	// Replaying bundle 1 cannot undo the pull.
	out, code = gap.preflight(b1, "1.1.0")
	if code != 2 || !strings.Contains(out, "bundle_refused") || !strings.Contains(out, "sequence 1 is older than the accepted bundle 2") {
		t.Fatalf("preflight on the replayed bundle 1: exit %d, want 2:\n%s", code, out)
	}

	// agent run --bundle-dir with both bundles in the directory runs on 2.
	drop := filepath.Join(gap.dir, "drop")
	must(t, os.Mkdir(drop, 0o700))
	for _, f := range []string{b1, b2} {
		data, err := os.ReadFile(f)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(drop, filepath.Base(f)), data, 0o644))
	}
	// The bundle directory from the config file, as every setting may be;
	// metrics on the side.
	conf := filepath.Join(gap.dir, "agent.conf")
	var lines []string
	for i := 0; i+1 < len(gap.flags); i += 2 {
		lines = append(lines, strings.TrimPrefix(gap.flags[i], "--")+" = "+gap.flags[i+1])
	}
	must(t, os.WriteFile(conf, []byte(strings.Join(append(lines, "bundle-dir = "+drop, ""), "\n")), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	metricsAddr := ln.Addr().String()
	ln.Close()
	runner := startAgent(t, "--config", conf, "--interval", "1h", "--metrics-listen", metricsAddr)
	var st struct {
		Bundle *struct {
			Sequence    int64     `json:"sequence"`
			Verified    bool      `json:"verified"`
			ExpiresAt   time.Time `json:"expires_at"`
			ExpiresSoon bool      `json:"expires_soon"`
			Unacked     int       `json:"unacknowledged_reports"`
		} `json:"bundle"`
		Undelivered []json.RawMessage `json:"undelivered_events"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, _ := ringfence(t, "agent", "status", "--json", "--state", gap.flags[1])
		_ = json.Unmarshal([]byte(out), &st)
		if st.Bundle != nil && st.Bundle.Sequence == 2 && strings.Contains(runner.stderr.String(), "checked in") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent run --bundle-dir did not settle on bundle 2: %s\n%s", out, runner.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Offline, the release's standing and the check-ins are metrics too.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`ringfence_agent_checkins_total{result="ok"} 1`, `ringfence_agent_release_status{action="none",status="ok",version="1.0.0"} 1`,
		"ringfence_agent_bundle_sequence 2"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("offline metrics lack %s:\n%s", m, body)
		}
	}
	runner.kill()
	// Preflight with the same config decides from the kept bundle, not
	// from the unreachable server.
	if out, code := ringfence(t, "agent", "preflight", "--config", conf, "--to", "1.1.0"); code != 1 || !strings.Contains(out, "not_offered") {
		t.Fatalf("preflight with bundle-dir in the config: exit %d, want 1 (pulled in bundle 2):\n%s", code, out)
	}
	if !st.Bundle.Verified || st.Bundle.ExpiresSoon {
		t.Fatalf("status of bundle 2 (20 days left): %+v", st.Bundle)
	}
	human, _ := ringfence(t, "agent", "status", "--state", gap.flags[1])
	if !strings.Contains(human, "bundle:      2 of bank") {
		t.Fatalf("agent status does not name the bundle:\n%s", human)
	}

	// Auto-halt: 1.2.0 fails at one online customer and at the gap.
	v.run(0, "release", "create", "acme", "1.2.0")
	online := &site{t: t, dir: t.TempDir()}
	online.flags = []string{"--state", filepath.Join(online.dir, "state"), "--server", v.url, "--key-file", onlineKey,
		"--product", "acme", "--version", "1.0.0", "--trust", trust}
	if out, code := online.agent([]string{"preflight"}, "--to", "1.2.0"); code != 0 {
		t.Fatalf("online preflight: exit %d:\n%s", code, out)
	}
	if out, code := online.agent([]string{"report", "upgrade-failed"}, "--from", "1.0.0", "--to", "1.2.0", "--now"); code != 0 {
		t.Fatalf("online report: exit %d:\n%s", code, out)
	}
	b3 := filepath.Join(gap.dir, "bundle-3.json")
	v.run(0, "bundle", "create", "acme", "bank", "-o", b3)
	if out, code := gap.preflight(b3, "1.2.0"); code != 0 {
		t.Fatalf("site preflight for 1.2.0: exit %d:\n%s", code, out)
	}
	if out, code := gap.agent([]string{"report", "upgrade-failed"}, "--from", "1.0.0", "--to", "1.2.0", "--detail", "migration 42 failed"); code != 0 {
		t.Fatalf("site report: exit %d:\n%s", code, out)
	}
	export := filepath.Join(gap.dir, "export-1.json")
	if out, code := gap.agent([]string{"export"}, "-o", export); code != 0 || !strings.Contains(out, "(1 events)") {
		t.Fatalf("agent export: exit %d:\n%s", code, out)
	}
	// One customer's failure is below the two-customer threshold.
	if r := v.releaseStatus("1.2.0"); r.Status != release.StatusOK {
		t.Fatalf("1.2.0 is %s before the import, want ok", r.Status)
	}
	out = v.run(0, "bundle", "import", export)
	if !strings.Contains(out, "1 events) recorded") || !strings.Contains(out, "1.2.0") {
		t.Fatalf("bundle import: %s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); v.releaseStatus("1.2.0").Status != release.StatusPaused; {
		if time.Now().After(deadline) {
			t.Fatalf("1.2.0 not auto-halted after the import: %+v\n%s", v.releaseStatus("1.2.0"), v.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := v.releaseStatus("1.2.0"); r.Paused == nil || r.Paused.By != "auto-halt" {
		t.Fatalf("1.2.0 paused, but not by auto-halt: %+v", r.Paused)
	}
	// The same file again records nothing.
	out = v.run(0, "bundle", "import", export, "--json")
	var res release.ImportResult
	must(t, json.Unmarshal([]byte(out), &res))
	if !res.Duplicate || res.Recorded != 0 {
		t.Fatalf("second import of the same file: %+v", res)
	}

	// The next bundle acknowledges the export: the site drops its events.
	b4 := filepath.Join(gap.dir, "bundle-4.json")
	v.run(0, "bundle", "create", "acme", "bank", "-o", b4)
	if out, code := gap.preflight(b4, "1.2.0"); code != 1 || !strings.Contains(out, "not_offered") {
		t.Fatalf("preflight for the auto-halted 1.2.0: exit %d, want 1:\n%s", code, out)
	}
	out, _ = ringfence(t, "agent", "status", "--json", "--state", gap.flags[1])
	must(t, json.Unmarshal([]byte(out), &st))
	if st.Bundle.Sequence != 4 || st.Bundle.Unacked != 0 || len(st.Undelivered) != 0 {
		t.Fatalf("after the acknowledging bundle: %s", out)
	}
}

// TestImportRefusesForgedExports: an export whose payload was altered, one
// bound to no enrollment key of the vendor, and one signed by another key
// than the installation registered are refused and record nothing.
func TestImportRefusesForgedExports(t *testing.T) {
	v := startVendor(t)
	v.run(0, "product", "create", "acme")
	v.run(0, "ring", "create", "acme", "stable", "--position", "0")
	bankKey := v.enroll("bank")
	v.run(0, "release", "create", "acme", "1.0.0")
	trust := v.trustFile()

	s := newSite(t, bankKey, trust, "1.0.0")
	if out, code := s.agent([]string{"report", "upgrade-failed"}, "--from", "1.0.0", "--to", "1.1.0"); code != 0 {
		t.Fatal(out)
	}
	good := filepath.Join(s.dir, "good.json")
	if out, code := s.agent([]string{"export"}, "-o", good); code != 0 {
		t.Fatal(out)
	}

	// Altered: one event's detail changed after signing.
	var env sign.Envelope
	data, _ := os.ReadFile(good)
	must(t, json.Unmarshal(data, &env))
	env.Payload = []byte(strings.Replace(string(env.Payload), `"kind":"upgrade_failed"`, `"kind":"upgrade_failed","detail":"x"`, 1))
	tampered := filepath.Join(s.dir, "tampered.json")
	writeJSONFile(t, tampered, env)
	if out, code := ringfence(t, "bundle", "import", tampered); code == 0 || !strings.Contains(out, "signature does not verify") {
		t.Fatalf("tampered export: exit %d:\n%s", code, out)
	}

	// Bound to an enrollment key the vendor never issued.
	fakeKey := filepath.Join(s.dir, "fake.key")
	must(t, os.WriteFile(fakeKey, []byte("rfe_not_a_key_the_vendor_issued\n"), 0o600))
	forger := newSite(t, fakeKey, trust, "1.0.0")
	forged := filepath.Join(s.dir, "forged.json")
	if out, code := forger.agent([]string{"export"}, "-o", forged); code != 0 {
		t.Fatal(out)
	}
	if out, code := ringfence(t, "bundle", "import", forged); code == 0 || !strings.Contains(out, "not bound to any active enrollment key") {
		t.Fatalf("export bound to no key: exit %d:\n%s", code, out)
	}

	// The genuine export registers the installation's key ...
	if out, code := ringfence(t, "bundle", "import", good); code != 0 {
		t.Fatalf("genuine export: exit %d:\n%s", code, out)
	}
	// ... after which a copy of the installation with a new key (its export
	// key removed), though bound to the real enrollment key, is refused.
	must(t, os.Remove(filepath.Join(s.flags[1], "export_key.json")))
	impostor := filepath.Join(s.dir, "impostor.json")
	if out, code := s.agent([]string{"export"}, "-o", impostor); code != 0 {
		t.Fatal(out)
	}
	if out, code := ringfence(t, "bundle", "import", impostor); code == 0 || !strings.Contains(out, "signed by a key other than the one the installation registered") {
		t.Fatalf("export under a second key: exit %d:\n%s", code, out)
	}
	// Nothing of the refused files was recorded: one installation, its
	// reports from the genuine export only.
	var list struct { // --json prints a list as its items
		Items []release.Installation `json:"items"`
	}
	must(t, json.Unmarshal([]byte(v.run(0, "release", "installations", "acme", "--json")), &list))
	if insts := list.Items; len(insts) != 1 {
		t.Fatalf("installations after the refusals: %+v", insts)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(path, data, 0o644))
}

// httpGet fetches url's body (200 only).
func httpGet(url string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
