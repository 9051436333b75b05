package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestSizesAreBinaryAndNeverNegative: a partitioned table's foreign key
// (relpages -1 on PostgreSQL 14+) is never "-8192 bytes", and every size
// is printed in B/KiB/MiB.
func TestSizesAreBinaryAndNeverNegative(t *testing.T) {
	ctx := context.Background()
	c := appDB(t, `CREATE EXTENSION amcheck;
		CREATE TABLE parent (k text PRIMARY KEY);
		CREATE TABLE child (k text REFERENCES parent, v int) PARTITION BY LIST (v);
		CREATE TABLE child_1 PARTITION OF child FOR VALUES IN (1);
		INSERT INTO parent SELECT 'k' || g FROM generate_series(1, 5000) g;
		INSERT INTO child SELECT 'k' || g, 1 FROM generate_series(1, 5000) g;`)
	code, stdout, stderr := run(t, ctx, "pg", "inventory", c.DSN("app"))
	if code != cli.ExitOK {
		t.Fatalf("inventory: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stdout, "-8192") || strings.Contains(stdout, " bytes") || strings.Contains(stdout, " kB") {
		t.Fatalf("sizes not in binary units or negative:\n%s", stdout)
	}
	if !regexp.MustCompile(`\d (B|KiB|MiB)\b`).MatchString(stdout) {
		t.Fatalf("no size in B/KiB/MiB:\n%s", stdout)
	}
	code, stdout, _ = run(t, ctx, "pg", "check", "-q", c.DSN("app"))
	if code != cli.ExitOK || !regexp.MustCompile(`indexes \(\d+(\.\d)? (B|KiB|MiB)\)`).MatchString(stdout) {
		t.Fatalf("check: exit %d\n%s", code, stdout)
	}
}
