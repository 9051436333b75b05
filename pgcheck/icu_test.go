package pgcheck

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestICUUpgrade runs the ICU upgrade end to end on real libraries: a
// database initialised by a PostgreSQL 15 linked to ICU 60 is started
// unchanged by a PostgreSQL 15 linked to ICU 72. pg compare rehearses it
// beforehand (old build as --from, new as --to); afterwards pg check finds
// the corrupt ICU index and PostgreSQL's version mismatch, the fingerprint
// sees the change, the duplicates that slipped past the corrupt index are
// found, and the repair rebuilds, refreshes the ICU collation's version and
// leaves a database a fresh check finds clean.
func TestICUUpgrade(t *testing.T) {
	from, to := pgtest.ICUUpgrade(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := pgtest.New(t, pgtest.WithBuild(from))
	pgtest.ICUFixture(t, c, "icu")
	recordBaseline(t, c.Connect("icu"))
	recorded := icuVersions(t, c)
	if recorded[0] != recorded[1] {
		t.Fatalf("en-x-icu under %s: recorded %s, actual %s", from, recorded[0], recorded[1])
	}

	// The rehearsal: the new build, empty, sorts the old server's keys.
	rehearsal := pgtest.New(t, pgtest.WithBuild(to))
	rep, err := compareConns(ctx, c.Connect("icu"), rehearsal.Connect("postgres"), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]CompareStatus{}
	for _, ix := range rep.Indexes {
		statuses[ix.Name] = ix.Status
	}
	if statuses["icu_words_name_key"] != CompareDiffers {
		t.Errorf("pg compare ICU 60 -> ICU 72: icu_words_name_key %q, want differs (all: %v)", statuses["icu_words_name_key"], statuses)
	}
	if s, ok := statuses["icu_words_name_c"]; ok && s != CompareSame {
		t.Errorf("pg compare: the C index icu_words_name_c is %q", s)
	}

	c.RestartWith(to, c.Variant)
	c.Exec("icu", `INSERT INTO icu_words SELECT id + 100000, name, timestamptz '2025-01-01' + id * interval '1 second'
		FROM icu_words ON CONFLICT DO NOTHING`)
	now := icuVersions(t, c)
	if now[0] != recorded[0] || now[1] == recorded[1] {
		t.Fatalf("en-x-icu under %s: recorded %s, actual %s; want %s recorded and another actual", to, now[0], now[1], recorded[0])
	}

	srv, err := Open(c.DSN("icu"), ConnOptions{LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	check, err := Check(ctx, srv, CheckOptions{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[Kind][]string{}
	for _, f := range check.Findings {
		kinds[f.Kind] = append(kinds[f.Kind], f.Object)
	}
	if !slices.Contains(kinds[KindIndexCorrupt], "icu_words_name_key") || slices.Contains(kinds[KindIndexCorrupt], "icu_words_name_c") {
		t.Errorf("pg check after the ICU upgrade: corrupt indexes %v, want icu_words_name_key and not the C one", kinds[KindIndexCorrupt])
	}
	if !slices.Contains(kinds[KindCollationVersionMismatch], "en-x-icu") {
		t.Errorf("pg check: version mismatches %v, want en-x-icu (%s recorded, %s now)", kinds[KindCollationVersionMismatch], now[0], now[1])
	}
	if !check.Checked.Fingerprint || !slices.Contains(kinds[KindCollationChanged], "en-x-icu") {
		t.Errorf("pg check: fingerprint compared %v, changed collations %v, want en-x-icu", check.Checked.Fingerprint, kinds[KindCollationChanged])
	}
	changed, _, err := CheckFingerprint(ctx, c.Connect("icu"), "")
	if err != nil || !slices.ContainsFunc(changed, func(f Finding) bool { return f.Object == "en-x-icu" }) {
		t.Errorf("pg fingerprint: %+v (%v), want en-x-icu changed", changed, err)
	}

	dups, err := FindDuplicates(ctx, srv, DuplicatesOptions{MaxGroups: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var slipped int64
	for _, d := range dups.Violated() {
		if d.Index.Name == "icu_words_name_key" {
			slipped = d.ExcessRows
		}
	}
	if want := seqCount(t, c.Connect("icu"), `SELECT count(*) - count(DISTINCT name) FROM icu_words`); slipped == 0 || slipped != want {
		t.Fatalf("pg duplicates: %d excess rows under icu_words_name_key, a sequential scan counts %d", slipped, want)
	}

	res, err := applyRepair(ctx, srv, RepairOptions{
		Dedupe:    []DedupeRule{{KeepNewest: true, Column: "updated_at"}},
		RetryWait: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() || res.RunDeleted != slipped {
		t.Fatalf("pg repair: clean %v, deleted %d (want %d), failed %v pending %v verify %+v", res.Clean(), res.RunDeleted, slipped, res.Failed, res.Pending, res.Verify)
	}
	if !slices.ContainsFunc(res.Plan.Refresh, func(s string) bool { return strings.Contains(s, `"en-x-icu" REFRESH VERSION`) }) {
		t.Errorf("pg repair refreshed %v, want en-x-icu", res.Plan.Refresh)
	}
	if after := icuVersions(t, c); after[0] != now[1] {
		t.Errorf("en-x-icu after the repair: recorded %s, want %s", after[0], now[1])
	}
	fresh, err := Check(ctx, srv, CheckOptions{Jobs: 2, HeapAllIndexed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh.Findings) != 0 || !fresh.Checked.Fingerprint {
		t.Fatalf("pg check after the repair: findings %+v, fingerprint compared %v", fresh.Findings, fresh.Checked.Fingerprint)
	}
}

// icuVersions returns en-x-icu's recorded and actual versions in database
// icu.
func icuVersions(t *testing.T, c *pgtest.Cluster) [2]string {
	t.Helper()
	var v [2]string
	if err := c.Connect("icu").QueryRow(context.Background(), `SELECT collversion, pg_collation_actual_version(oid)
		FROM pg_collation WHERE collname = 'en-x-icu'`).Scan(&v[0], &v[1]); err != nil {
		t.Fatal(err)
	}
	return v
}
