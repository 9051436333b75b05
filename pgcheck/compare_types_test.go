package pgcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// typesSchema has at-risk indexes whose key type is not text: a domain over
// a domain over text, citext, an array of a domain and a composite type.
const typesSchema = `
CREATE EXTENSION citext;
CREATE DOMAIN dom_text AS text CHECK (VALUE <> '');
CREATE DOMAIN dom2 AS dom_text;
CREATE TYPE pair AS (a text, b int);
CREATE TABLE kinds (id int PRIMARY KEY, d dom2, ci citext, arr dom_text[], en text COLLATE "en_US.utf8", p pair);
INSERT INTO kinds SELECT i, w, w, ARRAY[w, 'x'], w, ROW(w, 1)::pair FROM words;
CREATE INDEX kinds_p ON kinds (p);
CREATE INDEX kinds_en ON kinds (en);
CREATE INDEX kinds_d ON kinds (d);
CREATE INDEX kinds_ci ON kinds (ci);
CREATE INDEX kinds_arr ON kinds (arr);`

// TestCompareKeyTypes compares indexes on domains, citext and arrays in
// their real types: never skipped as "not text", an error (incomplete)
// where the new server lacks the type, and differs when the order changes.
func TestCompareKeyTypes(t *testing.T) { pgtest.ForEachVersion(t, testCompareKeyTypes) }

func testCompareKeyTypes(t *testing.T, b pgtest.Build) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	old.CreateDatabase("app")
	if _, err := old.Connect("app").Exec(ctx, `CREATE TABLE words AS SELECT w, i::int FROM unnest($1::text[]) WITH ORDINALITY u(w, i)`,
		pgtest.Words()); err != nil {
		t.Fatal(err)
	}
	old.Exec("app", typesSchema)
	neu := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))

	compare := func(db string) (*CompareReport, map[string]IndexComparison) {
		t.Helper()
		rep, err := compareConns(ctx, old.Connect("app"), neu.Connect(db), CompareOptions{Sample: 1000})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]IndexComparison{}
		for _, ix := range rep.Indexes {
			got[ix.Name] = ix
		}
		return rep, got
	}
	names := []string{"kinds_d", "kinds_ci", "kinds_arr", "kinds_en", "kinds_p"}

	// citext and the composite type do not exist on the new server: those
	// indexes cannot be compared, and the report says so.
	rep, got := compare("postgres")
	for _, name := range []string{"kinds_ci", "kinds_p"} {
		if ix := got[name]; ix.Status != CompareError || !rep.Incomplete() {
			t.Errorf("type missing on the new server: %s = %+v, incomplete %v", name, ix, rep.Incomplete())
		}
	}
	for _, name := range []string{"kinds_d", "kinds_arr", "kinds_en"} {
		if ix := got[name]; ix.Status != CompareSame || ix.Columns[0].Keys != 1000 {
			t.Errorf("same locale: %s = %+v, want same with 1000 keys", name, ix)
		}
	}

	neu.Exec("postgres", "CREATE EXTENSION citext; CREATE TYPE pair AS (a text, b int)")
	rep, got = compare("postgres")
	for _, name := range names {
		if ix := got[name]; ix.Status != CompareSame {
			t.Errorf("same locale, citext installed: %s = %+v, want same", name, ix)
		}
	}
	if rep.Incomplete() || rep.Differs() {
		t.Errorf("same locale: incomplete %v, differs %v", rep.Incomplete(), rep.Differs())
	}

	// A database on the new server whose default collation is C: the old
	// default's keys cannot be sorted under "default" there.
	neu.Exec("postgres", "CREATE DATABASE cdb TEMPLATE template0 LOCALE 'C'")
	neu.Exec("cdb", "CREATE EXTENSION citext")
	_, got = compare("cdb")
	if ix := got["kinds_d"]; ix.Status != CompareError || !strings.Contains(ix.Columns[0].Error, "differs on --to") {
		t.Errorf("default collation C on the new server: kinds_d = %+v, want error", ix)
	}
	// A collation with the old default's locale stands in for it; a
	// collation of the same name but another locale is an error.
	neu.Exec("cdb", `CREATE COLLATION en_stand_in (provider = libc, locale = 'en_US.UTF-8');
		CREATE COLLATION "en_US.utf8" (provider = libc, locale = 'C')`)
	rep, got = compare("cdb")
	if ix := got["kinds_d"]; ix.Status != CompareSame {
		t.Errorf("default mapped to en_stand_in: kinds_d = %+v, want same", ix)
	}
	if ix := got["kinds_en"]; ix.Status != CompareError || !strings.Contains(ix.Columns[0].Error, "differs on --to") {
		t.Errorf("en_US.utf8 is C on the new server: kinds_en = %+v, want error", ix)
	}
	if rep.To.Database != "cdb" || rep.To.DefaultLocale != "C" {
		t.Errorf("report's new server %+v", rep.To)
	}

	checkSampling(t, old)

	neu.Restart(pgtest.CodePoint)
	_, got = compare("postgres")
	for _, name := range names {
		if ix := got[name]; ix.Status != CompareDiffers || ix.Columns[0].ChangedPairs == 0 {
			t.Errorf("code-point order: %s = %+v, want differs", name, ix)
		}
	}
}

func TestNormalizeLocale(t *testing.T) {
	for _, c := range []struct{ provider, a, b string }{
		{"libc", "en_US.UTF-8", "en_US.utf8"},
		{"libc", "de_DE.ISO-8859-1@euro", "de_DE.iso88591@euro"},
		{"libc", "en_US.UTF-8/en_US.utf8", "en_US.utf8"},
		{"libc", "C", "C"},
	} {
		if x, y := normalizeLocale(c.provider, c.a), normalizeLocale(c.provider, c.b); x != y {
			t.Errorf("normalizeLocale(%q) = %q, (%q) = %q: want equal", c.a, x, c.b, y)
		}
	}
	if normalizeLocale("libc", "en_US.UTF-8") == normalizeLocale("libc", "en_GB.UTF-8") ||
		normalizeLocale("libc", "en_US.UTF-8/C") == normalizeLocale("libc", "en_US.UTF-8") {
		t.Error("different locales normalised to the same name")
	}
}

// checkSampling runs on the old server of TestCompareKeyTypes: the rows a
// sample reads are bounded even when the statistics are stale, partial
// indexes sample only the rows they cover, and keys equal under a
// nondeterministic collation are kept apart.
func checkSampling(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.Exec("app", `
		CREATE TABLE stale (k text) WITH (autovacuum_enabled = off);
		INSERT INTO stale SELECT 'k' || g FROM generate_series(1, 100) g;
		ANALYZE stale;
		INSERT INTO stale SELECT 'k' || g FROM generate_series(101, 50000) g;
		CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
		CREATE TABLE folded (k text COLLATE ci);
		INSERT INTO folded VALUES ('A'), ('a'), ('B');`)
	conn := c.Connect("app")
	stale := DependentObject{Schema: "public", Table: "stale"}

	// The statistics say 100 rows; 50,000 are there. Reading stops at the
	// bound.
	cmp := &comparer{from: conn, sample: 10, maxRead: 1000}
	var plan []map[string]any
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+
		cmp.sampleQuery(stale, keyColumn{expr: "k", relTuples: 100})).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	if n := scannedRows(plan[0]["Plan"]); n < 10 || n > 1000 {
		t.Errorf("sample of a table with stale statistics scanned %v rows, want 10..1000", n)
	}

	cmp = &comparer{from: conn, sample: 100000}
	keys, err := cmp.sampleKeys(ctx, stale, keyColumn{expr: "k", pred: "k < 'k2'", relTuples: 50000})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k >= "k2" {
			t.Fatalf("partial index predicate k < 'k2' ignored: sampled %q", k)
		}
	}
	if len(keys) != 11111 {
		t.Errorf("partial index: %d keys, want 11111", len(keys))
	}
	keys, err = cmp.sampleKeys(ctx, DependentObject{Schema: "public", Table: "folded"}, keyColumn{expr: "k"})
	if err != nil || len(keys) != 3 {
		t.Errorf("nondeterministic collation: keys %q err %v, want A, a and B", keys, err)
	}
}

// scannedRows sums the actual rows of the table scans in an EXPLAIN JSON
// plan node.
func scannedRows(node any) float64 {
	m, ok := node.(map[string]any)
	if !ok {
		return 0
	}
	var n float64
	if typ, _ := m["Node Type"].(string); typ == "Seq Scan" || typ == "Sample Scan" {
		n, _ = m["Actual Rows"].(float64)
	}
	children, _ := m["Plans"].([]any)
	for _, ch := range children {
		n += scannedRows(ch)
	}
	return n
}

// TestCompareSkippedIsIncomplete: every object compared is at risk, so one
// none of whose keys could be compared leaves the report incomplete.
func TestCompareSkippedIsIncomplete(t *testing.T) {
	rep := &CompareReport{Indexes: []IndexComparison{{Status: CompareSame}}}
	if rep.Incomplete() {
		t.Error("incomplete with every index compared")
	}
	rep.PartitionKeys = []IndexComparison{{Status: CompareSkipped}}
	if !rep.Incomplete() {
		t.Error("complete although a partition key was skipped")
	}
}
