package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestDedupeKeepOne: a duplicated varchar primary key has no timestamp or
// tiebreaker to choose by. The stopped repair shows the --dedupe syntax, a
// rule naming a missing column is exit 2, and keep-one keeps the row with
// the lowest ctid and quarantines the rest.
func TestDedupeKeepOne(t *testing.T) {
	ctx := context.Background()
	c := appDB(t, `CREATE EXTENSION amcheck;
		CREATE TABLE codes (code varchar(40) PRIMARY KEY, note text);
		CREATE TEMP TABLE words AS SELECT w FROM unnest(ARRAY['a', 'A', 'a b', 'a-b', 'ab', 'b', 'z', 'Z', 'Zebra', 'apple', 'Apple', 'co-op']) w;
		INSERT INTO codes SELECT w || g, 'first' FROM words, generate_series(1, 100) g;`)
	c.Restart(pgtest.CodePoint)
	c.Exec("app", `INSERT INTO codes SELECT code, 'second' FROM codes ON CONFLICT DO NOTHING`)
	conn := c.Connect("app")
	count := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	if _, err := conn.Exec(ctx, `SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off`); err != nil {
		t.Fatal(err)
	}
	if count(`SELECT count(*) FROM (SELECT code FROM codes GROUP BY code HAVING count(*) > 1) d`) == 0 {
		t.Fatal("the fixture made no duplicates")
	}
	dsn := c.DSN("app")

	code, stdout, stderr := run(t, ctx, "pg", "repair", "-q", "--apply", dsn)
	if code != cli.ExitFindings || !strings.Contains(stdout, "stopped before changing anything") ||
		!strings.Contains(stdout, "--dedupe [TABLE=]keep-newest:COLUMN, [TABLE=]keep-oldest:COLUMN or [TABLE=]keep-one") {
		t.Fatalf("without a rule: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", "--dedupe", "codes=keep-newest:updated_at", dsn)
	if code != cli.ExitError || !strings.Contains(stderr, `has no column "updated_at"`) || !strings.Contains(stderr, "keep-one") {
		t.Fatalf("missing column: exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	if count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'ringfence'`) != 0 {
		t.Fatal("a refused rule changed the database")
	}

	// keep-one keeps the first-stored row ('first', lowest ctid) of each key.
	code, stdout, stderr = run(t, ctx, "pg", "repair", "-q", "--apply", "--dedupe", "codes=keep-one", dsn)
	if code != cli.ExitOK || !strings.Contains(stdout, "finished: the database is repaired") {
		t.Fatalf("keep-one: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := count(`SELECT count(*) FROM codes WHERE note = 'second'`); n != 0 {
		t.Errorf("%d later copies kept", n)
	}
	if n := count(`SELECT count(*) FROM codes`); n != 1200 {
		t.Errorf("%d rows left, want 1200", n)
	}
	if n := count(`SELECT count(*) FROM ringfence.quarantine WHERE row_data->>'note' = 'second'`); n == 0 {
		t.Error("no removed row in the quarantine")
	}
}
