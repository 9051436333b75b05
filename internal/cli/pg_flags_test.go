package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestPgHostAndHelpFlags: as in psql and pg_amcheck, -h is the host of
// every pg command, and help is --help or -?.
func TestPgHostAndHelpFlags(t *testing.T) {
	for _, sub := range []string{"check", "inventory", "fingerprint", "compare", "duplicates", "repair"} {
		_, long, _ := ringfence(t, "pg", sub, "--help")
		for _, args := range [][]string{{"pg", sub, "-?"}, {"pg", sub, "-q", "-?"}} {
			code, out, errOut := ringfence(t, args...)
			if code != cli.ExitOK || out != long || !strings.Contains(out, "--host string, -h string") {
				t.Errorf("%v: exit %d, stdout differs from --help: %q\nstderr %s", args, code, out, errOut)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "nosocket")
	code, _, errOut := ringfence(t, "pg", "inventory", "-w", "-h", dir, "-p", "5999", "-U", "app", "db")
	if code != cli.ExitError || !strings.Contains(errOut, dir+"/.s.PGSQL.5999") {
		t.Errorf("-h DIR: exit %d, stderr %s", code, errOut)
	}
}
