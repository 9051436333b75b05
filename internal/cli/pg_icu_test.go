package cli_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestPgICUUpgrade runs the ICU upgrade through the commands an operator
// types: a database of PostgreSQL 15 linked to ICU 60, rehearsed with
// pg compare against the ICU 72 build, then started by that build; pg
// check, pg fingerprint and pg duplicates find what broke, pg repair fixes
// it, and pg check is clean again.
func TestPgICUUpgrade(t *testing.T) {
	from, to := pgtest.ICUUpgrade(t)
	c := pgtest.New(t, pgtest.WithBuild(from))
	pgtest.ICUFixture(t, c, "icu")
	dsn := c.DSN("icu")
	if code, out, errOut := ringfence(t, "pg", "fingerprint", "--record", dsn); code != cli.ExitOK {
		t.Fatalf("pg fingerprint --record: exit %d\n%s%s", code, out, errOut)
	}

	rehearsal := pgtest.New(t, pgtest.WithBuild(to))
	code, out, errOut := ringfence(t, "pg", "compare", "--from", dsn, "--to", rehearsal.DSN("postgres"))
	if code != cli.ExitFindings || !strings.Contains(out, "differs  public.icu_words_name_key (unique)") {
		t.Fatalf("pg compare ICU 60 -> ICU 72: exit %d\n%s%s", code, out, errOut)
	}

	c.RestartWith(to, c.Variant)
	c.Exec("icu", `INSERT INTO icu_words SELECT id + 100000, name, timestamptz '2025-01-01'
		FROM icu_words ON CONFLICT DO NOTHING`)

	code, out, _ = ringfence(t, "pg", "check", "--json", dsn)
	rep := parseCheck(t, out)
	if code != cli.ExitFindings || !slices.Contains(rep.objects("index_corrupt"), "public.icu_words_name_key") ||
		!slices.Contains(rep.objects("collation_version_mismatch"), "pg_catalog.en-x-icu") ||
		!slices.Contains(rep.objects("collation_changed"), "pg_catalog.en-x-icu") {
		t.Fatalf("pg check after the ICU upgrade: exit %d\n%s", code, out)
	}
	if code, out, _ := ringfence(t, "pg", "fingerprint", dsn); code != cli.ExitFindings || !strings.Contains(out, "en-x-icu") {
		t.Errorf("pg fingerprint: exit %d\n%s", code, out)
	}
	if code, out, _ := ringfence(t, "pg", "duplicates", dsn); code != cli.ExitFindings || !strings.Contains(out, "icu_words_name_key") {
		t.Fatalf("pg duplicates: exit %d\n%s", code, out)
	}

	code, out, errOut = ringfence(t, "pg", "repair", "--apply", "--dedupe", "keep-newest:updated_at", dsn)
	if code != cli.ExitOK || !strings.Contains(out, "finished: the database is repaired") ||
		!strings.Contains(errOut, `ALTER COLLATION "pg_catalog"."en-x-icu" REFRESH VERSION: done`) {
		t.Fatalf("pg repair --apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := ringfence(t, "pg", "check", dsn); code != cli.ExitOK {
		t.Fatalf("pg check after the repair: exit %d\n%s%s", code, out, errOut)
	}
}
