package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
)

// ringfenceBin is the ringfence binary TestMain builds for the tests that
// run real processes.
var ringfenceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringfence-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ringfenceBin = filepath.Join(dir, "ringfence")
	if out, err := exec.Command("go", "build", "-o", ringfenceBin, "github.com/ringfence/ringfence/cmd/ringfence").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is an `agent run` process.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *servertest.Buffer
	done   chan struct{}
}

// startAgent starts `ringfence agent run` with args; it is killed when the
// test ends.
func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{stderr: &servertest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(ringfenceBin, append([]string{"agent", "run"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *agentProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// ringfence runs the binary to completion and returns stdout and the exit
// code.
func ringfence(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(ringfenceBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out) + stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("ringfence %v: %v", args, err)
	}
	return string(out), 0
}

// statusOf runs `ringfence agent status --json` on dir.
func statusOf(t *testing.T, dir string) agent.Status {
	t.Helper()
	out, code := ringfence(t, "agent", "status", "--json", "--state", dir)
	if code != 0 {
		t.Fatalf("agent status: exit %d: %s", code, out)
	}
	var st agent.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agent status --json: %v\n%s", err, out)
	}
	return st
}

// TestKillBetweenReportAndDelivery: a report written while `agent run` is
// between check-ins survives kill -9 of the agent and is delivered exactly
// once by the next agent process.
func TestKillBetweenReportAndDelivery(t *testing.T) {
	f := newFleetReleased(t, "1.0.0", "1.1.0")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	must(t, os.WriteFile(keyFile, []byte(f.keys["ins-co"]+"\n"), 0o600))
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o700)) // as systemd's StateDirectory= does
	// Configuration through the environment and a config file, as a
	// service would have it.
	conf := filepath.Join(dir, "agent.conf")
	must(t, os.WriteFile(conf, []byte("# test\nproduct = acme\nversion = 1.0.0\ninterval = 1h\ntrust = "+f.trust+"\n"), 0o600))
	t.Setenv("RINGFENCE_AGENT_SERVER", f.srv.URL)
	t.Setenv("RINGFENCE_AGENT_KEY_FILE", keyFile)
	t.Setenv("RINGFENCE_AGENT_STATE", state)
	t.Setenv("RINGFENCE_AGENT_CONFIG", conf)

	verified := func() bool {
		st := statusOf(t, state)
		return st.Answer != nil && st.Answer.Verified && len(st.Undelivered) == 0
	}
	p := startAgent(t)
	servertest.Eventually(t, 20*time.Second, "first check-in", verified)
	id := statusOf(t, state).InstanceID

	// Between check-ins (the next is an hour away): the report, then kill -9.
	out, code := ringfence(t, "agent", "report", "upgrade-failed", "--from", "1.0.0", "--to", "1.1.0", "--detail", "migration 42 failed")
	if code != 0 {
		t.Fatalf("agent report: exit %d: %s", code, out)
	}
	p.kill()
	if st := statusOf(t, state); len(st.Undelivered) != 1 || st.Undelivered[0].Event.Kind != release.EventUpgradeFailed {
		t.Fatalf("after kill -9: undelivered %+v", st.Undelivered)
	}
	if n := len(f.events(id)); n != 0 {
		t.Fatalf("%d events on the server before any check-in carried them", n)
	}

	// The next agent delivers it at its first check-in; later check-ins do
	// not deliver it again.
	p = startAgent(t)
	servertest.Eventually(t, 20*time.Second, "report delivered", verified)
	p.kill()
	// Read before the start: the new process checks in at once, and the
	// next one is an hour away.
	before := statusOf(t, state).LastAttempt
	p = startAgent(t)
	servertest.Eventually(t, 20*time.Second, "another check-in", func() bool { return statusOf(t, state).LastAttempt.After(before) })
	p.kill()
	evs := f.events(id)
	if len(evs) != 1 || evs[0].Kind != release.EventUpgradeFailed || evs[0].Detail != "migration 42 failed" {
		t.Fatalf("server events = %+v, want the upgrade_failed exactly once", evs)
	}
	if !strings.Contains(p.stderr.String(), "checked in") {
		t.Errorf("agent log lacks the check-in: %s", p.stderr.String())
	}

	// report --now delivers at once, and preflight's exit codes reach the
	// shell.
	out, code = ringfence(t, "agent", "report", "upgrade-started", "--from", "1.0.0", "--to", "1.1.0", "--now")
	if code != 0 || !strings.Contains(out, "delivered 1 events") {
		t.Fatalf("report --now: exit %d: %s", code, out)
	}
	// The upgrade to 1.1.0 failed here (the report above): no retry by
	// itself, only when the operator says so.
	if out, code = ringfence(t, "agent", "preflight", "--to", "1.1.0"); code != 1 || !strings.Contains(out, "failed_here") {
		t.Fatalf("preflight to the version whose upgrade failed here: exit %d: %s", code, out)
	}
	if out, code = ringfence(t, "agent", "preflight", "--to", "1.1.0", "--retry-failed"); code != 0 || !strings.HasPrefix(out, "GO") {
		t.Fatalf("preflight to the offered version with --retry-failed: exit %d: %s", code, out)
	}
	if out, code = ringfence(t, "agent", "preflight", "--to", "1.2.0"); code != 1 || !strings.Contains(out, "not_offered") {
		t.Fatalf("preflight to a version not offered: exit %d: %s", code, out)
	}
	if out, code = ringfence(t, "agent", "preflight", "--to", "1.1.0", "--retry-failed", "--server", "http://127.0.0.1:1"); code != 2 || !strings.Contains(out, "UNDECIDED") {
		t.Fatalf("preflight with the server unreachable: exit %d: %s", code, out)
	}
}
