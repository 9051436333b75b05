package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestWritesAsANonOwnerSayWhatIsMissing: a monitoring role that may read
// everything cannot record the baseline in the database or repair; the
// errors name the missing grant or ownership and point to --baseline FILE
// and docs/pg-check.md.
func TestWritesAsANonOwnerSayWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	c.Exec("app", `CREATE ROLE monitor LOGIN; GRANT pg_read_all_data TO monitor`)
	dsn := c.UserDSN("monitor", "app")

	code, _, stderr := run(t, ctx, "pg", "fingerprint", "--record", dsn)
	for _, want := range []string{"permission denied", `GRANT CREATE ON DATABASE app TO monitor`, "--baseline FILE", "docs/pg-check.md"} {
		if code != cli.ExitError || !strings.Contains(stderr, want) {
			t.Errorf("fingerprint --record as monitor: exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
	file := filepath.Join(t.TempDir(), "baseline.json")
	if code, _, stderr := run(t, ctx, "pg", "fingerprint", "--record", "--baseline", file, dsn); code != cli.ExitOK {
		t.Fatalf("fingerprint --record --baseline FILE as monitor: exit %d\n%s", code, stderr)
	}

	code, _, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", "--rebuild-at-risk", dsn)
	for _, want := range []string{"permission denied", "owner of the tables", "role monitor", "docs/pg-check.md"} {
		if code != cli.ExitError || !strings.Contains(stderr, want) {
			t.Errorf("repair --apply as monitor: exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}
