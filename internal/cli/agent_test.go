package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/sign"
)

// agentSetup creates product acme with one ring, a customer and releases
// 1.0.0 to 1.2.0, and writes the enrollment key, the trust file and a
// config file naming both into a directory; it returns the config file.
func agentSetup(t *testing.T) (conf, dir string) {
	t.Helper()
	url, token := apiServer(t)
	return agentSetupOn(t, url, token)
}

// agentSetupOn is agentSetup on the server at url, with an admin token.
func agentSetupOn(t *testing.T, url, token string) (conf, dir string) {
	t.Helper()
	api(t, url, token, "product", "create", "acme")
	api(t, url, token, "ring", "create", "acme", "all", "--position", "0")
	api(t, url, token, "customer", "create", "acme", "bigco", "--ring", "all")
	var key struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(api(t, url, token, "customer", "key", "create", "acme", "bigco", "--json")), &key); err != nil || key.Key == "" {
		t.Fatalf("enrollment key: %v %+v", err, key)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		api(t, url, token, "release", "create", "acme", v)
	}
	dir = t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trust := write("trust.json", api(t, url, "", "keys", "list", "--json"))
	keyFile := write("key", key.Key+"\n")
	conf = write("agent.conf", strings.Join([]string{"# agent", "server = " + url, "product = acme", "key-file = " + keyFile,
		"trust = " + trust, "state = " + filepath.Join(dir, "state"), "version = 1.0.0", "deep-check = off", ""}, "\n"))
	return conf, dir
}

// TestAgentConfigPrecedence: flags beat RINGFENCE_AGENT_* variables, which
// beat the config file.
func TestAgentConfigPrecedence(t *testing.T) {
	conf, _ := agentSetup(t)
	current := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(t, context.Background(), append([]string{"agent", "preflight", "--json", "--to", "1.2.0"}, args...)...)
		var d struct {
			Current  string `json:"current"`
			Decision string `json:"decision"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("preflight --json: exit %d: %v\n%s\n%s", code, err, out, errOut)
		}
		if (d.Decision == "go") != (code == 0) {
			t.Fatalf("decision %s with exit %d", d.Decision, code)
		}
		return d.Current
	}
	if v := current("--config", conf); v != "1.0.0" {
		t.Fatalf("version from the config file: %q", v)
	}
	t.Setenv("RINGFENCE_AGENT_VERSION", "1.1.0")
	if v := current("--config", conf); v != "1.1.0" {
		t.Fatalf("version with the environment set: %q, want the environment's", v)
	}
	if v := current("--config", conf, "--version", "1.2.0"); v != "1.2.0" {
		t.Fatalf("version with the flag set: %q, want the flag's", v)
	}
	// The config file itself may come from the environment.
	t.Setenv("RINGFENCE_AGENT_CONFIG", conf)
	if v := current(); v != "1.1.0" {
		t.Fatalf("version with RINGFENCE_AGENT_CONFIG: %q", v)
	}

	// A misspelt key is an error, not ignored.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("sever = http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, context.Background(), "agent", "status", "--config", bad)
	if code != 2 || !strings.Contains(errOut, `unknown key "sever"`) {
		t.Fatalf("misspelt config key: exit %d, %q", code, errOut)
	}
	// Two version sources are refused: preflight cannot decide.
	code, out, _ := run(t, context.Background(), "agent", "preflight", "--to", "1.2.0", "--config", conf, "--version-file", "/nonexistent")
	if code != 2 || !strings.Contains(out, "exactly one of --version") {
		t.Fatalf("two version sources: exit %d: %s", code, out)
	}
}

// TestAgentRunMetrics runs `agent run` in-process with a metrics listener
// and stops it by cancelling its context.
func TestAgentRunMetrics(t *testing.T) {
	conf, dir := agentSetup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr servertest.Buffer
	go func() {
		done <- cliRun(ctx, &stderr, "agent", "run", "--config", conf, "--interval", "200ms", "--metrics-listen", addr, "--log-format", "json")
	}()
	var body string
	servertest.Eventually(t, 20*time.Second, "metrics show verified check-ins", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `ringfence_agent_checkins_total{result="ok"} 2`)
	})
	for _, m := range []string{`ringfence_agent_release_status{action="none",status="ok",version="1.0.0"} 1`, "ringfence_agent_upgrade_offered 1",
		"ringfence_agent_undelivered_events 0", "ringfence_agent_last_verified_answer_timestamp_seconds", "go_goroutines"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("agent run exited %d after its context ended: %s", code, stderr.String())
	}
	// JSON logs, one object a line.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %s", line)
		}
	}
	code, out, _ := run(t, context.Background(), "agent", "status", "--state", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(out, "Upgrade to 1.2.0 is offered") || !strings.Contains(out, "undelivered: 0 events") {
		t.Fatalf("agent status: exit %d\n%s", code, out)
	}
}

// TestAgentStatusShowsLearnedKey: after a key rotation the agent learns the
// new key from a co-signed answer, and `agent status` says so, with the key
// that vouched for it.
func TestAgentStatusShowsLearnedKey(t *testing.T) {
	url, token := apiServer(t)
	conf, dir := agentSetupOn(t, url, token)
	state := filepath.Join(dir, "state")
	if code, out, errOut := run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.2.0"); code != 0 {
		t.Fatalf("preflight: exit %d\n%s%s", code, out, errOut)
	}
	old := apiJSON[struct{ Keys []sign.PublicKey }](t, url, "", "keys", "list").Keys
	rotated := apiJSON[sign.PublicKey](t, url, token, "keys", "rotate")
	var out string
	servertest.Eventually(t, 10*time.Second, "agent status shows the learnt key", func() bool {
		run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.2.0")
		_, out, _ = run(t, context.Background(), "agent", "status", "--state", state)
		return strings.Contains(out, "learned key: "+rotated.ID)
	})
	if !strings.Contains(out, "vouched for by "+old[0].ID) || strings.Contains(out, "KEY ROTATION") {
		t.Fatalf("agent status after the rotation:\n%s", out)
	}
}

// cliRun runs ringfence in-process with stdout discarded.
func cliRun(ctx context.Context, stderr io.Writer, args ...string) int {
	return cli.Run(ctx, append([]string{"ringfence"}, args...), io.Discard, stderr)
}

// TestAgentPreflightRestart: the init container of a restarted pod asks for
// the version already running: exit 0, said to be a restart, in the
// termination log too.
func TestAgentPreflightRestart(t *testing.T) {
	conf, dir := agentSetup(t)
	tl := filepath.Join(dir, "termination-log")
	code, out, errOut := run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.0.0", "--termination-log", tl)
	if code != 0 || !strings.Contains(out, "GO: 1.0.0 already runs here: a restart, not an upgrade") {
		t.Fatalf("preflight to the running version: exit %d\n%s%s", code, out, errOut)
	}
	if b, err := os.ReadFile(tl); err != nil || !strings.HasPrefix(string(b), "GO: 1.0.0 already runs here") {
		t.Fatalf("termination log %q %v", b, err)
	}
}

// TestAgentPreflightTimeout: while another agent process holds the state
// (a long deep check, say), preflight gives up at --timeout: undecided,
// exit 2, reason timeout, never a wait without end.
func TestAgentPreflightTimeout(t *testing.T) {
	conf, dir := agentSetup(t)
	if code, out, errOut := run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.2.0"); code != 0 {
		t.Fatalf("first preflight: exit %d\n%s%s", code, out, errOut)
	}
	f, err := os.OpenFile(filepath.Join(dir, "state", "lock"), os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, _ := run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.2.0", "--timeout", "1s")
	if code != 2 || !strings.Contains(out, "timeout: no decision in time") || time.Since(start) > 20*time.Second {
		t.Fatalf("preflight while the state is held: exit %d after %s\n%s", code, time.Since(start), out)
	}
}

// TestAgentReportNowDeliversThisReport: report --now checks in until its
// own report went out, also behind more older events than one check-in
// carries, and says only then that it delivered.
func TestAgentReportNowDeliversThisReport(t *testing.T) {
	conf, dir := agentSetup(t)
	if code, out, errOut := run(t, context.Background(), "agent", "preflight", "--config", conf, "--to", "1.2.0"); code != 0 {
		t.Fatalf("first preflight: exit %d\n%s%s", code, out, errOut)
	}
	outbox := filepath.Join(dir, "state", "outbox")
	for i := range 120 {
		ev := fmt.Sprintf(`{"kind":"upgrade_started","from":"1.0.0","to":"1.1.0","at":"2026-12-06T00:00:00Z","detail":"attempt %d"}`, i)
		if err := os.WriteFile(filepath.Join(outbox, fmt.Sprintf("%020d-old.json", i+1)), []byte(ev), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, context.Background(), "agent", "report", "upgrade-failed", "--config", conf, "--from", "1.0.0", "--to", "1.1.0", "--now")
	if code != 0 || !strings.Contains(out, "delivered 121 events") {
		t.Fatalf("report --now behind 120 older events: exit %d\n%s%s", code, out, errOut)
	}
	if left, err := os.ReadDir(outbox); err != nil || len(left) != 1 || left[0].Name() != "rejected" {
		t.Fatalf("outbox after report --now: %v %v", left, err)
	}
}
