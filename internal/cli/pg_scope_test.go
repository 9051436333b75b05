package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// checkCounts is the part of `pg check --json` that says what was checked.
type checkCounts struct {
	Checked struct {
		Databases int `json:"databases"`
		Indexes   int `json:"indexes"`
	} `json:"checked"`
	Skipped []struct {
		Database string `json:"database"`
		Object   string `json:"object"`
		Reason   string `json:"reason"`
		Error    bool   `json:"error"`
	} `json:"skipped"`
}

func parseCounts(t *testing.T, stdout string) checkCounts {
	t.Helper()
	var c checkCounts
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	return c
}

// TestPatternsThatMatchNothing: every include pattern or name must select
// something, in every command that takes one; exclusions that leave
// nothing are an error too.
func TestPatternsThatMatchNothing(t *testing.T) {
	ctx := context.Background()
	c := appDB(t, `CREATE EXTENSION amcheck;
		CREATE TABLE words (id int PRIMARY KEY, w text UNIQUE);
		INSERT INTO words SELECT g, 'w' || g FROM generate_series(1, 100) g;`)
	dsn := c.DSN("app")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pg", "check", "--index", "nosuch"}, "--index nosuch"},
		{[]string{"pg", "check", "-t", "no_such_table", "-t", "pg_catalog.pg_class"}, "--table no_such_table"},
		{[]string{"pg", "check", "-s", "public", "-i", "words_w_key", "-i", "nosuch*"}, "--index nosuch*"},
		{[]string{"pg", "check", "-S", "*"}, "leave nothing to check"},
		{[]string{"pg", "check", "-t", "words", "-T", "words"}, "--table words"},
		{[]string{"pg", "check", "--exclude-catalogs", "-I", "*"}, "leave nothing to check"},
		{[]string{"pg", "duplicates", "--index", "nosuch"}, `"nosuch"`},
		{[]string{"pg", "repair", "--index", "nosuch"}, `"nosuch"`},
		{[]string{"pg", "repair", "--apply", "--index", "nosuch"}, `"nosuch"`},
	} {
		args := append(append([]string{}, tc.args...), "-q", dsn)
		code, stdout, stderr := run(t, ctx, args...)
		if code != cli.ExitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 naming %q\n%s", strings.Join(tc.args, " "), code, stderr, tc.want, stdout)
		}
	}
	// The same patterns, all matching, pass.
	code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "-t", "words", "-t", "pg_catalog.pg_class", "-i", "words_*", "-i", "pg_class_oid_index", dsn)
	if code != cli.ExitOK || !strings.Contains(stdout, "checked 3 B-tree indexes") {
		t.Fatalf("matching patterns: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestAllDatabasesCountsOnlyWhatWasChecked: a database that cannot be
// checked and an index under a held lock are listed, not counted, and make
// the run incomplete (exit 2).
func TestAllDatabasesCountsOnlyWhatWasChecked(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	for _, db := range []string{"one", "two"} {
		c.CreateDatabase(db)
		c.Exec(db, `CREATE EXTENSION amcheck; CREATE TABLE t (id int PRIMARY KEY, s text UNIQUE)`)
	}
	c.CreateDatabase("bare") // no amcheck
	indexesIn := func(db string) int {
		code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "--json", c.DSN(db))
		if code != cli.ExitOK {
			t.Fatalf("check %s: exit %d\n%s", db, code, stderr)
		}
		return parseCounts(t, stdout).Checked.Indexes
	}
	one, two := indexesIn("one"), indexesIn("two")
	// postgres and template1 lack amcheck too.
	code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "-a", "--json", c.DSN("one"))
	rep := parseCounts(t, stdout)
	if code != cli.ExitError || rep.Checked.Indexes != one+two || rep.Checked.Databases != 2 {
		t.Fatalf("-a: exit %d, %d indexes in %d databases; want exit 2, %d in 2\n%s\n%s", code,
			rep.Checked.Indexes, rep.Checked.Databases, one+two, stdout, stderr)
	}
	notChecked := map[string]bool{}
	for _, s := range rep.Skipped {
		if s.Error {
			notChecked[s.Database] = true
		}
	}
	if !notChecked["bare"] {
		t.Errorf("database bare not listed as not checked: %+v", rep.Skipped)
	}
	code, stdout, _ = run(t, ctx, "pg", "check", "-q", "-a", c.DSN("one"))
	if code != cli.ExitError || !strings.Contains(stdout, fmt.Sprintf("checked %d B-tree indexes", one+two)) ||
		!strings.Contains(stdout, "2 of 5 databases checked") {
		t.Fatalf("-a readable: exit %d\n%s", code, stdout)
	}

	// An index whose table is locked: listed as NOT CHECKED, not counted
	// (its TOAST table's index is not locked and is counted).
	code, stdout, _ = run(t, ctx, "pg", "check", "-q", "--json", "-t", "t", c.DSN("one"))
	unlocked := parseCounts(t, stdout).Checked.Indexes
	if code != cli.ExitOK || unlocked != 3 {
		t.Fatalf("-t t: exit %d, %d indexes, want 3 (two and the TOAST index)\n%s", code, unlocked, stdout)
	}
	lock := c.Connect("one")
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run(t, ctx, "pg", "check", "-q", "--json", "--lock-timeout", "100ms", "-t", "t", c.DSN("one"))
	rep = parseCounts(t, stdout)
	if code != cli.ExitError || rep.Checked.Indexes != unlocked-2 || len(rep.Skipped) != 2 {
		t.Fatalf("under a held lock: exit %d, %d checked, skipped %+v; want exit 2, %d checked, 2 not checked\n%s", code, rep.Checked.Indexes, rep.Skipped, unlocked-2, stdout)
	}
}

// TestCheckBesideConcurrentReindex runs pg check again and again while
// another session rebuilds and drops indexes concurrently: an index that
// vanishes or is being rebuilt when its turn comes is listed as skipped,
// and the run is still complete (exit 0).
func TestCheckBesideConcurrentReindex(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	c.CreateDatabase("app")
	var ddl strings.Builder
	ddl.WriteString("CREATE EXTENSION amcheck;\n")
	const tables = 6
	for i := range tables {
		fmt.Fprintf(&ddl, `CREATE TABLE t%d (id int PRIMARY KEY, a text, b text);
			INSERT INTO t%[1]d SELECT g, md5(g::text), md5((g*7)::text) FROM generate_series(1, 3000) g;
			CREATE INDEX t%[1]d_a ON t%[1]d (a); CREATE INDEX t%[1]d_b ON t%[1]d (b);`, i)
	}
	c.Exec("app", ddl.String())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rebuilt atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn := c.Connect("app")
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			i := n % tables
			var err error
			if n%3 == 2 {
				// Drop and re-create one, as a migration does.
				if _, err = conn.Exec(ctx, fmt.Sprintf("DROP INDEX CONCURRENTLY t%d_b", i)); err == nil {
					_, err = conn.Exec(ctx, fmt.Sprintf("CREATE INDEX CONCURRENTLY t%d_b ON t%[1]d (b)", i))
				}
			} else {
				_, err = conn.Exec(ctx, fmt.Sprintf("REINDEX INDEX CONCURRENTLY t%d_a", i))
			}
			if err != nil {
				t.Errorf("concurrent DDL: %v", err)
				return
			}
			rebuilt.Add(1)
		}
	}()
	skippedSeen := 0
	for run1 := range 12 {
		code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "--json", "-j", "2", "--lock-timeout", "30s", "--exclude-catalogs", c.DSN("app"))
		if code != cli.ExitOK {
			t.Errorf("run %d beside REINDEX CONCURRENTLY: exit %d\n%s\n%s", run1, code, stdout, stderr)
			continue
		}
		rep := parseCounts(t, stdout)
		for _, s := range rep.Skipped {
			if s.Error {
				t.Errorf("run %d: %s not checked: %s", run1, s.Object, s.Reason)
			}
			skippedSeen++
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d concurrent rebuilds or drops; %d indexes skipped as vanished or rebuilding", rebuilt.Load(), skippedSeen)
	if rebuilt.Load() < 12 {
		t.Errorf("only %d concurrent rebuilds ran beside the checks: the test proved little", rebuilt.Load())
	}
}
