package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestRepairApplyWithNothingFound: on a database where nothing is wrong,
// `pg repair --apply` says so and changes nothing; --rebuild-at-risk
// rebuilds anyway; after an invisible collation change (amcheck finds the
// damage) --apply rebuilds without being asked twice.
func TestRepairApplyWithNothingFound(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	dsn := c.DSN("app")
	filenode := func() int64 {
		t.Helper()
		var n int64
		if err := c.Connect("app").QueryRow(ctx, `SELECT pg_relation_filenode('words_name_en')::bigint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	schemaExists := func() bool {
		var ok bool
		if err := c.Connect("app").QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'ringfence')`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	before := filenode()

	code, stdout, stderr := run(t, ctx, "pg", "repair", "-q", dsn)
	if code != cli.ExitOK || !strings.Contains(stdout, "--rebuild-at-risk") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", dsn)
	if code != cli.ExitOK || !strings.Contains(stdout, "Nothing was changed") || !strings.Contains(stdout, "amcheck clean") {
		t.Fatalf("--apply with nothing wrong: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if filenode() != before || schemaExists() {
		t.Fatal("--apply with nothing found rebuilt an index or created the ringfence schema")
	}

	code, stdout, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", "--rebuild-at-risk", dsn)
	if code != cli.ExitOK || !strings.Contains(stdout, "finished: the database is repaired") {
		t.Fatalf("--apply --rebuild-at-risk: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rebuilt := filenode()
	if rebuilt == before {
		t.Fatal("--rebuild-at-risk did not rebuild words_name_en")
	}

	// The order changes under the indexes and PostgreSQL notices nothing:
	// amcheck does, so the repair rebuilds.
	c.Restart(pgtest.CodePoint)
	if code, stdout, _ := run(t, ctx, "pg", "check", "-q", "--scope", "collation", dsn); code != cli.ExitFindings {
		t.Fatalf("after the change pg check should find damage: exit %d\n%s", code, stdout)
	}
	code, stdout, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", "--reroute-partitions", dsn)
	if strings.Contains(stdout, "Nothing was changed") || filenode() == rebuilt {
		t.Fatalf("--apply after a collation change did not rebuild: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
