package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestAllDatabasesOnInventoryAndDuplicates: -a covers every database that
// accepts connections, and one the role may not read is listed and makes
// the run exit 2.
func TestAllDatabasesOnInventoryAndDuplicates(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	c.CreateDatabase("other")
	code, stdout, stderr := run(t, ctx, "pg", "inventory", "-a", "--json", c.DSN("postgres"))
	var inv struct {
		Databases []struct {
			Database string `json:"database"`
		} `json:"databases"`
		NotChecked []any `json:"not_checked"`
	}
	if err := json.Unmarshal([]byte(stdout), &inv); err != nil || code != cli.ExitOK {
		t.Fatalf("inventory -a: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	var names []string
	for _, d := range inv.Databases {
		names = append(names, d.Database)
	}
	if strings.Join(names, ",") != "app,other,postgres,template1" || len(inv.NotChecked) != 0 {
		t.Fatalf("inventory -a covered %v, not checked %v", names, inv.NotChecked)
	}
	code, stdout, stderr = run(t, ctx, "pg", "duplicates", "-q", "-a", c.DSN("postgres"))
	if code != cli.ExitOK || strings.Count(stdout, "no duplicates found") != 4 {
		t.Fatalf("duplicates -a: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A database the role may connect to but not read.
	c.Exec("postgres", `CREATE ROLE peek LOGIN; REVOKE CONNECT ON DATABASE other FROM PUBLIC`)
	c.Exec("app", `REVOKE ALL ON SCHEMA public FROM PUBLIC; REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM PUBLIC`)
	code, stdout, stderr = run(t, ctx, "pg", "duplicates", "-q", "-a", c.UserDSN("peek", "postgres"))
	if code != cli.ExitError || !strings.Contains(stdout, "NOT CHECKED: database app") || strings.Contains(stdout, "database other") {
		t.Fatalf("duplicates -a as peek: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestAllDatabasesOnFingerprint: -a compares every database that has a
// baseline and says which have none; recording across all is refused.
func TestAllDatabasesOnFingerprint(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	if code, _, stderr := run(t, ctx, "pg", "fingerprint", "--record", c.DSN("app")); code != cli.ExitOK {
		t.Fatalf("record: exit %d %s", code, stderr)
	}
	code, stdout, stderr := run(t, ctx, "pg", "fingerprint", "-a", "--json", c.DSN("postgres"))
	var rep struct {
		Databases []struct {
			Database      string `json:"database"`
			BaselineFound bool   `json:"baseline_found"`
		} `json:"databases"`
		Findings []any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != cli.ExitOK || len(rep.Databases) != 3 || len(rep.Findings) != 0 {
		t.Fatalf("fingerprint -a: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	for _, d := range rep.Databases {
		if d.BaselineFound != (d.Database == "app") {
			t.Errorf("database %s: baseline_found %v", d.Database, d.BaselineFound)
		}
	}
	code, _, stderr = run(t, ctx, "pg", "fingerprint", "-a", "--record", c.DSN("postgres"))
	if code != cli.ExitError || !strings.Contains(stderr, "templates") {
		t.Fatalf("--record -a: exit %d %q", code, stderr)
	}
}
