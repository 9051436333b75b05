package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestConventions: --version and version, shell completion, and a wrong
// command or flag answered with one line, a "did you mean" and the usage
// line instead of the whole help.
func TestConventions(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, stderr := run(t, ctx, args...)
		if code != cli.ExitOK || !strings.HasPrefix(stdout, "ringfence ") || !strings.Contains(stdout, "go1.") {
			t.Errorf("%v: exit %d, %q %q", args, code, stdout, stderr)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, stdout, stderr := run(t, ctx, "completion", shell)
		if code != cli.ExitOK || !strings.Contains(stdout, "ringfence") {
			t.Errorf("completion %s: exit %d, %d bytes, %q", shell, code, len(stdout), stderr)
		}
	}
	for _, tc := range []struct {
		args        []string
		want, usage string
	}{
		{[]string{"relase", "status", "acme"}, `unknown command "relase" for "ringfence" (did you mean "release"?)`, "usage: ringfence [options] COMMAND"},
		{[]string{"pg", "chek"}, `(did you mean "check"?)`, "usage: ringfence pg [options] COMMAND"},
		{[]string{"pg", "check", "--tabel", "x"}, "(did you mean --table?)", "usage: ringfence pg check [options] [DSN]"},
		{[]string{"release", "status", "--jsn", "acme"}, "(did you mean --json?)", "usage: ringfence release status"},
	} {
		code, stdout, stderr := run(t, ctx, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != cli.ExitError || len(lines) != 2 || !strings.Contains(lines[0], tc.want) || !strings.HasPrefix(lines[1], tc.usage) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant 2 lines: %q, then %q", tc.args, code, stdout, stderr, tc.want, tc.usage)
		}
	}
}
