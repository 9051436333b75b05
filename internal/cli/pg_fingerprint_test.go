package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/pgcheck"
)

// fingerprintJSON is the documented JSON form of `pg fingerprint --json`.
type fingerprintJSON struct {
	Baseline      string                      `json:"baseline"`
	Recorded      bool                        `json:"recorded"`
	BaselineFound bool                        `json:"baseline_found"`
	Results       []pgcheck.FingerprintResult `json:"results"`
	Findings      []pgcheck.Finding           `json:"findings"`
	Elapsed       *float64                    `json:"elapsed_seconds"`
}

func TestPgFingerprint(t *testing.T) {
	c := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	c.CreateDatabase("app")
	c.Exec("app", collationSchema)
	dsn := c.DSN("app")
	file := filepath.Join(t.TempDir(), "baseline.json")

	code, out, errOut := ringfence(t, "pg", "fingerprint", dsn)
	if code != cli.ExitOK || !strings.Contains(out, "no baseline in ringfence.collation_fingerprint") {
		t.Fatalf("without a baseline: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = ringfence(t, "pg", "fingerprint", "--record", dsn); code != cli.ExitOK ||
		!strings.Contains(out, "recorded 2 collation fingerprints of database app in ringfence.collation_fingerprint") {
		t.Fatalf("--record: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = ringfence(t, "pg", "fingerprint", "--record", "--baseline", file, dsn); code != cli.ExitOK {
		t.Fatalf("--record --baseline: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	// A baseline with the database's own keys added to the corpus.
	sampled := filepath.Join(t.TempDir(), "sampled.json")
	if code, out, errOut = ringfence(t, "pg", "fingerprint", "--record", "--sample-keys", "100", "--baseline", sampled, dsn); code != cli.ExitOK {
		t.Fatalf("--record --sample-keys: exit %d\n%s%s", code, out, errOut)
	}
	base, err := pgcheck.ReadBaselineFile(sampled)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, f := range base.Fingerprints {
		keys[f.Collation] = f.SampledKeys
	}
	// users_name_key has 500 distinct names; users_title 7 titles, of
	// which "adam", "Bob" and "Zed" are not in the built-in corpus.
	if keys["default"] != 100 || keys["public.en_US.utf8"] != 3 {
		t.Errorf("sampled keys per collation: %v", keys)
	}
	if code, _, _ = ringfence(t, "pg", "fingerprint", "--sample-keys", "5", dsn); code != cli.ExitError {
		t.Errorf("--sample-keys without --record: exit %d, want 2", code)
	}
	for _, args := range [][]string{{dsn}, {"--baseline", file, dsn}, {"--baseline", sampled, dsn}} {
		code, out, errOut = ringfence(t, append([]string{"pg", "fingerprint"}, args...)...)
		if code != cli.ExitOK || !strings.Contains(out, "no collation changed") {
			t.Errorf("unchanged %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}

	// Debian -> Alpine: code-point order under the same locale name, same
	// version as far as PostgreSQL can tell.
	c.Restart(pgtest.CodePoint)
	for _, args := range [][]string{{dsn}, {"--baseline", file, dsn}, {"--baseline", sampled, dsn}} {
		code, out, errOut = ringfence(t, append([]string{"pg", "fingerprint"}, args...)...)
		if code != cli.ExitFindings {
			t.Errorf("changed %v: exit %d, want 1\n%s%s", args, code, out, errOut)
		}
		for _, want := range []string{"collation_changed", "CHANGED", "at risk: unique_constraint public.users_name_key",
			"at risk: index public.users_title", "2 collations changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("changed %v: output lacks %q:\n%s", args, want, out)
			}
		}
	}
	code, out, _ = ringfence(t, "pg", "fingerprint", "--json", dsn)
	var rep fingerprintJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != cli.ExitFindings || !rep.BaselineFound || rep.Elapsed == nil || len(rep.Findings) != 2 ||
		rep.Findings[0].Kind != pgcheck.KindCollationChanged || len(rep.Results) != 2 ||
		rep.Results[0].Status != pgcheck.FingerprintChanged || len(rep.Results[0].Examples) == 0 {
		t.Errorf("--json: exit %d %+v", code, rep)
	}

	if code, _, errOut = ringfence(t, "pg", "fingerprint", "--baseline", filepath.Join(t.TempDir(), "none.json"), dsn); code != cli.ExitError ||
		!strings.Contains(errOut, "none.json") {
		t.Errorf("missing baseline file: exit %d, stderr %s", code, errOut)
	}

	// Back under the baseline's order: a collation the baseline lacks
	// cannot be vouched for (exit 2); one whose locale no longer loads is
	// a finding (exit 1).
	c.Restart(pgtest.Current)
	c.Exec("app", `CREATE COLLATION later (provider = libc, locale = 'en_US.UTF-8');
		CREATE INDEX users_later ON users ((name COLLATE later))`)
	code, out, errOut = ringfence(t, "pg", "fingerprint", dsn)
	if code != cli.ExitError || !strings.Contains(out, "no baseline yet (record again)") ||
		!strings.Contains(errOut, "public.later") {
		t.Errorf("collation not in the baseline: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if code, out, errOut = ringfence(t, "pg", "fingerprint", "--record", dsn); code != cli.ExitOK {
		t.Fatalf("--record again: exit %d\n%s%s", code, out, errOut)
	}
	c.Exec("app", `UPDATE pg_collation SET collcollate = 'xx_XX.UTF-8', collctype = 'xx_XX.UTF-8' WHERE collname = 'later'`)
	code, out, errOut = ringfence(t, "pg", "fingerprint", dsn)
	if code != cli.ExitFindings || !strings.Contains(out, "UNAVAILABLE") || !strings.Contains(out, "at risk: index public.users_later") {
		t.Errorf("locale gone: exit %d, want 1\n%s%s", code, out, errOut)
	}
}
