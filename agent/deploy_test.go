package agent_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSystemdUnitHardening keeps deploy/systemd/ringfence-agent.service at
// an exposure of at most 2.0 in systemd's own analysis, and its ExecStart
// on the flags the agent has.
func TestSystemdUnitHardening(t *testing.T) {
	const unit = "../deploy/systemd/ringfence-agent.service"
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test dependency missing in CI: systemd-analyze (scripts/deps.sh installs systemd): %v", err)
		}
		t.Skipf("systemd-analyze not installed: %v", err)
	}
	out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --threshold=20 (exposure 2.0): %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Log(lines[len(lines)-1])

	data, err := os.ReadFile(unit)
	must(t, err)
	cmdline := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, flag := range []string{"agent run", "--config", "--state ${STATE_DIRECTORY}", "--key-file ${CREDENTIALS_DIRECTORY}/", "--trust ${CREDENTIALS_DIRECTORY}/", "--log-format json"} {
		if !strings.Contains(cmdline, flag) {
			t.Errorf("ExecStart lacks %q", flag)
		}
	}
	for _, line := range []string{"DynamicUser=yes", "StateDirectory=ringfence-agent", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(data), line) {
			t.Errorf("unit lacks %q", strings.TrimSpace(line))
		}
	}
}
