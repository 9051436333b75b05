package pgcheck

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// driftSchema has a unique index on the default collation and an index on
// the libc "en_US.utf8" collation.
const driftSchema = `
CREATE TABLE users (id int PRIMARY KEY, name text CONSTRAINT users_name_key UNIQUE,
	title text COLLATE "en_US.utf8");
CREATE INDEX users_title ON users (title);
INSERT INTO users SELECT g, 'user ' || g, 'title-' || g FROM generate_series(1, 200) g;`

// TestFingerprintSeesLocaleChanges records baselines under one locale
// variant and compares after restarting under another: every change is
// reported as collation_changed while PostgreSQL's versions stay the same,
// and nothing is reported when nothing changed.
func TestFingerprintSeesLocaleChanges(t *testing.T) {
	pgtest.ForEachVersion(t, testFingerprintSeesLocaleChanges)
}

func testFingerprintSeesLocaleChanges(t *testing.T, b pgtest.Build) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	c.CreateDatabase("fp")
	c.Exec("fp", driftSchema)
	dir := t.TempDir()

	versions := func() map[string]string {
		t.Helper()
		inv, err := ReadInventory(ctx, c.Connect("fp"))
		if err != nil {
			t.Fatal(err)
		}
		if m := VersionMismatches(inv); len(m) != 0 {
			t.Errorf("PostgreSQL reports a version mismatch: %+v", m)
		}
		v := map[string]string{}
		for _, c := range inv.Collations {
			v[c.Name] = c.RecordedVersion + "/" + c.ActualVersion
		}
		return v
	}
	record := func(path string) {
		t.Helper()
		conn := c.Connect("fp")
		inv, err := ReadInventory(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewBaseline(ctx, conn, inv)
		if err != nil {
			t.Fatal(err)
		}
		if err := RecordBaseline(ctx, conn, b); err != nil {
			t.Fatal(err)
		}
		if got := len(b.Fingerprints); got != 2 {
			t.Fatalf("baseline has %d fingerprints, want 2 (default, public.en_US.utf8)", got)
		}
		if err := WriteBaselineFile(path, b); err != nil {
			t.Fatal(err)
		}
	}
	// check compares with the file baseline and the database's own, which
	// must agree, and returns the changed collations.
	check := func(path string) []string {
		t.Helper()
		fromFile, ok, err := CheckFingerprint(ctx, c.Connect("fp"), path)
		if err != nil || !ok {
			t.Fatalf("check against %s: ok %v err %v", path, ok, err)
		}
		fromDB, ok, err := CheckFingerprint(ctx, c.Connect("fp"), "")
		if err != nil || !ok {
			t.Fatalf("check against the recorded baseline: ok %v err %v", ok, err)
		}
		var names []string
		for _, f := range fromFile {
			if f.Kind != KindCollationChanged || f.Database != "fp" || f.Schema+"."+f.Object != map[string]string{
				"default": "pg_catalog.default", "public.en_US.utf8": "public.en_US.utf8"}[f.Collation] {
				t.Errorf("finding %+v", f)
			}
			if !strings.Contains(f.Detail, "PostgreSQL reports the same collation version") {
				t.Errorf("detail %q does not say the version is unchanged", f.Detail)
			}
			var objs []string
			for _, r := range f.AtRisk {
				objs = append(objs, r.Object)
			}
			want := map[string][]string{"default": {"users_name_key"}, "public.en_US.utf8": {"users_title"}}[f.Collation]
			if !slices.Equal(objs, want) {
				t.Errorf("%s: at risk %v, want %v", f.Collation, objs, want)
			}
			names = append(names, f.Collation)
		}
		if len(fromDB) != len(fromFile) {
			t.Errorf("database baseline gives %d findings, file %d", len(fromDB), len(fromFile))
		}
		slices.Sort(names)
		return names
	}
	both := []string{"default", "public.en_US.utf8"}

	current := filepath.Join(dir, "current.json")
	record(current)
	before := versions()
	c.Restart(pgtest.Current)
	if got := check(current); len(got) != 0 {
		t.Errorf("restart under the same locale: changed %v, want none", got)
	}
	for _, v := range []pgtest.Variant{pgtest.CodePoint, pgtest.Synthetic} {
		c.Restart(v)
		if got := check(current); !slices.Equal(got, both) {
			t.Errorf("current -> %s: changed %v, want %v", v, got, both)
		}
		if after := versions(); !maps.Equal(before, after) {
			t.Errorf("current -> %s: versions %v, before %v", v, after, before)
		}
	}

	// The real history: record under glibc 2.27's locale data, upgrade to
	// the machine's current data.
	c.Restart(pgtest.Glibc227)
	old := filepath.Join(dir, "glibc-2.27.json")
	record(old)
	c.Restart(pgtest.Current)
	if got := check(old); !slices.Equal(got, both) {
		t.Errorf("glibc 2.27 -> current: changed %v, want %v", got, both)
	}
	if after := versions(); !maps.Equal(before, after) {
		t.Errorf("glibc 2.27 -> current: versions %v, before %v", after, before)
	}
	base, err := ReadBaselineFile(old)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ReadInventory(ctx, c.Connect("fp"))
	if err != nil {
		t.Fatal(err)
	}
	results, _, err := CompareFingerprints(ctx, c.Connect("fp"), inv, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != FingerprintChanged || r.ChangedPairs == 0 || len(r.Examples) == 0 {
			t.Errorf("glibc 2.27 -> current result %+v", r)
		}
	}

	// A hot standby receives the baseline by replication and compares
	// against it read-only: under the locale data the baseline was taken
	// with (glibc 2.27, the last one recorded) nothing changed; under
	// different data, the standby's own order differs.
	s := c.Standby(pgtest.Glibc227)
	if findings, ok, err := CheckFingerprint(ctx, s.Connect("fp"), ""); err != nil || !ok || len(findings) != 0 {
		t.Errorf("standby under the baseline's locale: findings %+v ok %v err %v", findings, ok, err)
	}
	s.Restart(pgtest.Synthetic)
	if findings, ok, err := CheckFingerprint(ctx, s.Connect("fp"), ""); err != nil || !ok || len(findings) != 2 {
		t.Errorf("standby under another locale: findings %+v ok %v err %v", findings, ok, err)
	}

	// A fresh cluster with the same data under the same locale agrees with
	// the first cluster's baseline, and has no baseline of its own.
	c2 := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	c2.CreateDatabase("fp")
	c2.Exec("fp", driftSchema)
	findings, ok, err := CheckFingerprint(ctx, c2.Connect("fp"), current)
	if err != nil || !ok || len(findings) != 0 {
		t.Errorf("fresh cluster against the baseline: findings %+v ok %v err %v", findings, ok, err)
	}
	if _, ok, err := CheckFingerprint(ctx, c2.Connect("fp"), ""); ok || err != nil {
		t.Errorf("fresh cluster has a recorded baseline (ok %v, err %v)", ok, err)
	}
}

// checkICUFingerprints runs on the inventory test's database (ICU
// collations inv.de_icu and the nondeterministic inv.ci): ties are recorded
// for the nondeterministic collation, and an ICU locale changed in the
// catalog, which keeps PostgreSQL's recorded version, is reported.
func checkICUFingerprints(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := c.Connect("inv")
	inv, base := takeBaseline(t, ctx, conn)
	fps := map[string]CollationFingerprint{}
	for _, f := range base.Fingerprints {
		fps[f.Collation] = f
	}
	ci, de := fps["inv.ci"], fps["inv.de_icu"]
	if len(ci.Ties) == 0 || len(de.Ties) != 0 || de.Provider != "icu" {
		t.Errorf("ties: inv.ci %d, inv.de_icu %d (provider %s)", len(ci.Ties), len(de.Ties), de.Provider)
	}
	// Equal strings are ordered by their bytes: "A" then "a", tied.
	if !slices.ContainsFunc(ci.Ties, func(i int) bool { return ci.Order[i-1] == "A" && ci.Order[i] == "a" }) {
		t.Errorf("inv.ci does not tie \"A\" and \"a\": ties %v", ci.Ties)
	}
	if _, findings, err := CompareFingerprints(ctx, conn, inv, base); err != nil || len(findings) != 0 {
		t.Fatalf("unchanged ICU collations: findings %+v err %v", findings, err)
	}

	// Swedish sorts ä and ö after z; the recorded version stays the same.
	c.Exec("inv", `UPDATE pg_collation SET `+icuLocaleColumn(c.Build.Major)+` = 'sv-SE' WHERE collname = 'de_icu'`)
	conn = c.Connect("inv")
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	_, findings, err := CompareFingerprints(ctx, conn, inv, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Collation != "inv.de_icu" || len(findings[0].AtRisk) != 1 ||
		findings[0].AtRisk[0].Object != "people_nick" {
		t.Errorf("ICU locale changed: findings %+v", findings)
	}
}

// icuLocaleColumn names pg_collation's column holding an ICU collation's
// locale on PostgreSQL major version major.
func icuLocaleColumn(major int) string {
	switch {
	case major >= 17:
		return "colllocale"
	case major >= 15:
		return "colliculocale"
	}
	return "collcollate"
}

// takeBaseline reads conn's inventory and fingerprints its at-risk
// collations.
func takeBaseline(t *testing.T, ctx context.Context, conn *pgx.Conn) (*DatabaseInventory, *Baseline) {
	t.Helper()
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewBaseline(ctx, conn, inv)
	if err != nil {
		t.Fatal(err)
	}
	return inv, base
}
