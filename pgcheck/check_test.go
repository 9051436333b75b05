package pgcheck_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/pgcheck"
)

func mustCheck(t *testing.T, dsn string, opts pgcheck.CheckOptions) *pgcheck.CheckReport {
	t.Helper()
	srv, err := pgcheck.Open(dsn, pgcheck.ConnOptions{StatementTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pgcheck.Check(context.Background(), srv, opts)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return rep
}

// pgAmcheckCorrupt runs the reference tool and returns the relations of
// kind ("btree index" or "heap table") it reports as corrupt, as
// "schema.name".
func pgAmcheckCorrupt(t *testing.T, c *pgtest.Cluster, db, kind string) []string {
	t.Helper()
	out, _ := exec.Command(c.Tool("pg_amcheck"), "-h", "127.0.0.1", "-p", fmt.Sprint(c.Port),
		"-U", "postgres", "-d", db, "--no-dependent-toast").CombinedOutput()
	re := regexp.MustCompile(kind + ` "` + regexp.QuoteMeta(db) + `\.([^."]+)\.([^"]+)"`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		got = append(got, m[1]+"."+m[2])
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func findingsOf(rep *pgcheck.CheckReport, kind pgcheck.Kind) []string {
	var got []string
	for _, f := range rep.Findings {
		if f.Kind == kind {
			got = append(got, f.Schema+"."+f.Object)
		}
	}
	slices.Sort(got)
	return got
}

// recordBaseline records the database's collation fingerprints.
func recordBaseline(t *testing.T, c *pgtest.Cluster, db string) {
	t.Helper()
	if err := pgcheck.RecordFingerprints(context.Background(), c.Connect(db)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCleanDatabase(t *testing.T) { pgtest.ForEachVersion(t, testCheckCleanDatabase) }

func testCheckCleanDatabase(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	pgtest.CollationFixture(t, c, "app")
	recordBaseline(t, c, "app")
	rep := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{Heap: true, HeapAllIndexed: true, Jobs: 2})
	if len(rep.Findings) != 0 {
		t.Fatalf("clean database: findings %+v", rep.Findings)
	}
	if !rep.Checked.Fingerprint {
		t.Error("the recorded baseline was not compared")
	}
	if rep.Checked.Indexes < 9 || rep.Checked.HeapRelations < 5 {
		t.Errorf("checked too little: %+v", rep.Checked)
	}
	if rep.Checked.Partitions != 2 || rep.Checked.CheckConstraints != 1 {
		t.Errorf("partitions %d, check constraints %d; want 2 and 1 (the text one)", rep.Checked.Partitions, rep.Checked.CheckConstraints)
	}

	// Planning uses pg_class.relpages, which can be stale: a table that has
	// shrunk since is still checked whole, and without errors.
	c.Exec("app", `UPDATE pg_class SET relpages = 1000 WHERE relname = 'ints'`)
	stale := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{Heap: true, Jobs: 2, HeapChunkBlocks: 100,
		Filter: pgcheck.Filter{Tables: []string{"ints"}}})
	if len(stale.Findings) != 0 || len(stale.Skipped) != 0 {
		t.Errorf("stale relpages: findings %+v, skipped %+v", stale.Findings, stale.Skipped)
	}
}

func TestCheckAfterCollationChange(t *testing.T) {
	pgtest.ForEachVersion(t, testCheckAfterCollationChange)
}

func testCheckAfterCollationChange(t *testing.T, b pgtest.Build) {
	for _, sc := range []struct{ from, to pgtest.Variant }{
		{pgtest.Glibc227, pgtest.Current},
		{pgtest.Current, pgtest.CodePoint},
		{pgtest.Current, pgtest.Synthetic},
	} {
		t.Run(fmt.Sprintf("%s-to-%s", sc.from, sc.to), func(t *testing.T) {
			c := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(sc.from))
			pgtest.CollationFixture(t, c, "app")
			recordBaseline(t, c, "app")
			c.Restart(sc.to)

			rep := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{Jobs: 2})
			got := findingsOf(rep, pgcheck.KindIndexCorrupt)
			want := pgAmcheckCorrupt(t, c, "app", "btree index")
			if !slices.Equal(got, want) {
				t.Errorf("corrupt indexes %v, pg_amcheck reports %v", got, want)
			}
			if !slices.Contains(got, "public.words_name_key") {
				t.Errorf("words_name_key not reported corrupt: %v", got)
			}
			for _, safe := range []string{"public.words_pkey", "public.words_name_c", "public.words_n",
				"public.words_n_name_c", "public.ints_pkey", "public.ints_x"} {
				if slices.Contains(got, safe) {
					t.Errorf("%s reported corrupt; it cannot depend on the collation", safe)
				}
			}
			if len(findingsOf(rep, pgcheck.KindCollationChanged)) == 0 {
				t.Errorf("no collation_changed finding although the baseline was recorded under %s", sc.from)
			}
			if v := findingsOf(rep, pgcheck.KindCollationVersionMismatch); len(v) != 0 {
				t.Errorf("PostgreSQL's version check should be blind here, got %v", v)
			}
			if p := findingsOf(rep, pgcheck.KindPartitionBoundViolation); len(p) == 0 {
				t.Errorf("no partition bound violation reported")
			}
			if cc := findingsOf(rep, pgcheck.KindCheckConstraintViolation); !slices.Equal(cc, []string{"public.bounded_s_check"}) {
				t.Errorf("check constraint violations %v, want [public.bounded_s_check]", cc)
			}
			// The counts agree with a plain query under the new collation.
			conn := c.Connect("app")
			var outside, violating int64
			if err := conn.QueryRow(context.Background(), `SELECT
				(SELECT count(*) FROM ONLY parts_lo WHERE NOT k < 'm b') + (SELECT count(*) FROM ONLY parts_hi WHERE NOT k >= 'm b'),
				(SELECT count(*) FROM bounded WHERE NOT s < 'm b')`).Scan(&outside, &violating); err != nil {
				t.Fatal(err)
			}
			var gotOutside, gotViolating int64
			for _, f := range rep.Findings {
				switch f.Kind {
				case pgcheck.KindPartitionBoundViolation:
					gotOutside += f.Rows
				case pgcheck.KindCheckConstraintViolation:
					gotViolating += f.Rows
				}
			}
			if gotOutside != outside || gotViolating != violating || outside == 0 || violating == 0 {
				t.Errorf("rows outside partitions %d (query: %d), violating CHECK %d (query: %d)", gotOutside, outside, gotViolating, violating)
			}

			// Filters: one table, one index left out (the TOAST index follows
			// its table).
			filtered := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{
				Filter: pgcheck.Filter{Tables: []string{"words"}, ExcludeIndexes: []string{"public.words_lower"}}})
			wantFiltered := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "public.words_lower" })
			if g := findingsOf(filtered, pgcheck.KindIndexCorrupt); !slices.Equal(g, wantFiltered) {
				t.Errorf("filtered check found %v, want %v", g, wantFiltered)
			}
			if filtered.Checked.Indexes != 7 {
				t.Errorf("filtered check covered %d indexes, want 7 (words' 6 but words_lower, and its TOAST index)", filtered.Checked.Indexes)
			}

			coll := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{Scope: pgcheck.ScopeCollation})
			if g := findingsOf(coll, pgcheck.KindIndexCorrupt); !slices.Equal(g, got) {
				t.Errorf("--scope collation found %v, scope all %v", g, got)
			}
			if coll.Checked.Indexes >= rep.Checked.Indexes {
				t.Errorf("--scope collation checked %d indexes, scope all %d: it should skip safe ones", coll.Checked.Indexes, rep.Checked.Indexes)
			}
		})
	}
}

func TestCheckHeapCorruption(t *testing.T) { pgtest.ForEachVersion(t, testCheckHeapCorruption) }

func testCheckHeapCorruption(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	pgtest.CollationFixture(t, c, "app")
	var file string
	if err := c.Connect("app").QueryRow(context.Background(), `SELECT pg_relation_filepath('ints')`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	// Point three line pointers of the first page (after the 24-byte page
	// header) past the end of the page: lp_off 0x7ff0, LP_NORMAL, length 64.
	path := filepath.Join(c.Dir, "data", file)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks 0 and 5: the second lies in the second block range (4-7).
	for _, block := range []int64{0, 5} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xf0, 0xff, 0x80, 0x00}, 3), block*8192+24+4*4); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	c.Start(c.Variant)

	rep := mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{Heap: true, Jobs: 2, HeapChunkBlocks: 4})
	if got := findingsOf(rep, pgcheck.KindHeapCorrupt); !slices.Equal(got, []string{"public.ints"}) {
		t.Fatalf("heap_corrupt on %v, want [public.ints]; findings %+v", got, rep.Findings)
	}
	if want := pgAmcheckCorrupt(t, c, "app", "heap table"); !slices.Equal(want, []string{"public.ints"}) {
		t.Errorf("pg_amcheck reports heap corruption in %v", want)
	}
	// From PostgreSQL 18 initdb enables data checksums: each damaged page
	// is one unreadable page, not three bad line pointers.
	problems := int64(6)
	if b.Major >= 18 {
		problems = 2
	}
	for _, f := range rep.Findings {
		if f.Kind == pgcheck.KindHeapCorrupt && (f.Rows < problems || !strings.Contains(f.Detail, "block 0") || !strings.Contains(f.Detail, "block 5")) {
			t.Errorf("heap finding %+v: want at least %d problems, in blocks 0 and 5", f, problems)
		}
	}
	// Without --heap the corruption is not looked for.
	if got := findingsOf(mustCheck(t, c.DSN("app"), pgcheck.CheckOptions{}), pgcheck.KindHeapCorrupt); len(got) != 0 {
		t.Errorf("heap checked without Heap: %v", got)
	}
}

func TestCheckAllDatabases(t *testing.T) { pgtest.ForEachVersion(t, testCheckAllDatabases) }

func testCheckAllDatabases(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	pgtest.CollationFixture(t, c, "one")
	pgtest.CollationFixture(t, c, "two")
	c.Restart(pgtest.Synthetic)
	rep := mustCheck(t, c.DSN("postgres"), pgcheck.CheckOptions{AllDatabases: true, Jobs: 2})
	dbs := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Kind == pgcheck.KindIndexCorrupt {
			dbs[f.Database] = true
		}
	}
	if !dbs["one"] || !dbs["two"] || len(dbs) != 2 {
		t.Errorf("corrupt indexes found in %v, want one and two", dbs)
	}
	// postgres and template1 have no amcheck: listed as not checked.
	var missing []string
	for _, s := range rep.Skipped {
		if s.Error && s.Object == "amcheck" {
			missing = append(missing, s.Database)
		}
	}
	slices.Sort(missing)
	if !slices.Equal(missing, []string{"postgres", "template1"}) {
		t.Errorf("databases without amcheck %v, want [postgres template1]", missing)
	}
}

// TestCheckScansAreSafe: the scans never run a table owner's code, and a
// lock held on one partition costs that partition, not the whole run.
func TestCheckScansAreSafe(t *testing.T) { pgtest.ForEachVersion(t, testCheckScansAreSafe) }

func testCheckScansAreSafe(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	pgtest.CollationFixture(t, c, "app")
	c.Exec("app", `
		CREATE FUNCTION public.evil(s text) RETURNS boolean LANGUAGE plpgsql AS $$
		BEGIN
			IF current_setting('application_name') = 'ringfence' THEN
				RAISE EXCEPTION 'evil ran with the checker''s privileges';
			END IF;
			RETURN s < 'm b';
		END $$;
		CREATE TABLE victim (s text CHECK (public.evil(s)));
		INSERT INTO victim VALUES ('apple'), ('banana');`)
	ctx := context.Background()
	locker := c.Connect("app")
	if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE parts_lo IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	srv, err := pgcheck.Open(c.DSN("app"), pgcheck.ConnOptions{LockTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pgcheck.Check(ctx, srv, pgcheck.CheckOptions{Jobs: 2})
	if err != nil {
		t.Fatalf("a lock on one partition failed the whole check: %v", err)
	}
	var victim, locked bool
	for _, s := range rep.Skipped {
		switch {
		case s.Object == "victim_s_check" && !s.Error && strings.Contains(s.Reason, "not built in"):
			victim = true
		case s.Object == "parts_lo" && s.Error && strings.Contains(s.Reason, "lock_timeout"):
			locked = true
		case s.Error:
			t.Errorf("unexpected error skip: %+v", s)
		}
	}
	if !victim || !locked {
		t.Errorf("skipped %+v: want victim_s_check not evaluated and parts_lo not checked (lock)", rep.Skipped)
	}
	// Counts are of what was checked: the locked partition is not.
	if rep.Checked.CheckConstraints != 1 || rep.Checked.Partitions != 1 {
		t.Errorf("checked %+v", rep.Checked)
	}
}
