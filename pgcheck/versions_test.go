package pgcheck

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestVersionDifferences pins what each major version offers ringfence,
// as the version table of docs/pg-check.md says: the database's collation
// version (recorded from 15 on), an ICU database default (15+) and the
// builtin provider (17+), counted as safe.
func TestVersionDifferences(t *testing.T) { pgtest.ForEachVersion(t, testVersionDifferences) }

func testVersionDifferences(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inventory := func(db string) *DatabaseInventory {
		t.Helper()
		inv, err := ReadInventory(ctx, c.Connect(db))
		if err != nil {
			t.Fatalf("inventory of %s: %v", db, err)
		}
		return inv
	}
	atRisk := func(inv *DatabaseInventory) []string {
		var names []string
		for _, o := range inv.Objects {
			if o.AtRisk && !systemSchema(o.Schema) {
				names = append(names, o.Name)
			}
		}
		slices.Sort(names)
		return names
	}

	// libc default: at risk everywhere; its version is recorded from 15 on.
	c.CreateDatabase("plain")
	c.Exec("plain", `CREATE EXTENSION amcheck;
		CREATE TABLE t (s text CONSTRAINT t_s_key UNIQUE);
		INSERT INTO t SELECT 'k' || g FROM generate_series(1, 1000) g`)
	d := inventory("plain").DefaultCollation
	if d.Provider != "libc" || !d.AtRisk || (d.RecordedVersion != "") != (b.Major >= 15) {
		t.Errorf("PostgreSQL %d, libc default: %+v (a recorded version from 15 on)", b.Major, d)
	}
	if b.Major >= 15 {
		// A database version that differs is PostgreSQL's own mismatch.
		c.Exec("plain", `UPDATE pg_database SET datcollversion = '1.0' WHERE datname = 'plain'`)
		m := VersionMismatches(inventory("plain"))
		if len(m) != 1 || m[0].Object != "default" || len(m[0].AtRisk) != 1 || m[0].AtRisk[0].Object != "t_s_key" {
			t.Errorf("PostgreSQL %d: database version mismatch %+v", b.Major, m)
		}
	}

	// A hot standby: bt_index_check and the scans run; the parent check
	// cannot (it needs a ShareLock) and is refused.
	s := c.Standby(pgtest.Current)
	standby, err := Open(s.DSN("plain"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, standby, CheckOptions{Heap: true})
	if err != nil || !rep.Server.InRecovery || rep.Checked.Indexes == 0 || rep.Checked.HeapRelations == 0 ||
		len(findingsOfKind(rep, KindIndexCorrupt)) != 0 {
		t.Errorf("PostgreSQL %d, check on a standby: %v, %+v", b.Major, err, rep)
	}
	if _, err := Check(ctx, standby, CheckOptions{ParentCheck: true}); !errors.Is(err, ErrParentCheckOnStandby) {
		t.Errorf("PostgreSQL %d, --parent-check on a standby: %v", b.Major, err)
	}

	// An ICU database default (15+): at risk, with the ICU locale and
	// version.
	if b.Major >= 15 {
		c.Exec("postgres", `CREATE DATABASE icudb TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'en_US.UTF-8'`)
		c.Exec("icudb", `CREATE TABLE t (s text CONSTRAINT t_s_key UNIQUE)`)
		inv := inventory("icudb")
		d := inv.DefaultCollation
		if d.Provider != "icu" || d.Locale != "en" || !d.AtRisk || d.RecordedVersion == "" || d.RecordedVersion != d.ActualVersion {
			t.Errorf("PostgreSQL %d, ICU default: %+v", b.Major, d)
		}
		if got := atRisk(inv); !slices.Equal(got, []string{"t_s_key"}) {
			t.Errorf("PostgreSQL %d, ICU default: at risk %v, want [t_s_key]", b.Major, got)
		}
	}

	// The builtin provider (17+) is PostgreSQL's own code: safe, as a
	// database default and as the pg_c_utf8 collation; a libc column in
	// the same database stays at risk.
	if b.Major >= 17 {
		c.Exec("postgres", `CREATE DATABASE builtin TEMPLATE template0 LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8' LOCALE 'en_US.UTF-8'`)
		c.Exec("builtin", `CREATE EXTENSION amcheck;
			CREATE COLLATION "en_US.utf8" (provider = libc, locale = 'en_US.UTF-8');
			CREATE TABLE t (s text CONSTRAINT t_s_key UNIQUE, u text COLLATE pg_c_utf8, e text COLLATE "en_US.utf8");
			CREATE INDEX t_u ON t (u);
			CREATE INDEX t_e ON t (e);
			INSERT INTO t SELECT w, w, w FROM unnest(ARRAY['a', 'B', 'c', 'D']) w`)
		inv := inventory("builtin")
		if d := inv.DefaultCollation; d.Provider != "builtin" || d.Locale != "C.UTF-8" || d.AtRisk || d.CtypeAtRisk {
			t.Errorf("PostgreSQL %d, builtin C.UTF-8 default: %+v, want safe", b.Major, d)
		}
		if got := atRisk(inv); !slices.Equal(got, []string{"t_e"}) {
			t.Errorf("PostgreSQL %d, builtin default: at risk %v, want only [t_e]", b.Major, got)
		}
		srv, err := Open(c.DSN("builtin"), ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rep, err = Check(ctx, srv, CheckOptions{Scope: ScopeCollation, Filter: Filter{Schemas: []string{"public"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 0 || rep.Checked.Indexes != 1 {
			t.Errorf("PostgreSQL %d, builtin default: --scope collation checked %d indexes (want t_e alone), findings %+v",
				b.Major, rep.Checked.Indexes, rep.Findings)
		}
	}
}

func findingsOfKind(rep *CheckReport, kind Kind) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}
