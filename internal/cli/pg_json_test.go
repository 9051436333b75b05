package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestEveryPgJSONHasSchemaVersionAndDuration: every pg command's --json
// is one object with schema_version and duration_seconds.
func TestEveryPgJSONHasSchemaVersionAndDuration(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	dsn := c.DSN("app")
	for _, args := range [][]string{
		{"pg", "check", "-q", "--json", dsn},
		{"pg", "inventory", "--json", dsn},
		{"pg", "fingerprint", "--json", dsn},
		{"pg", "duplicates", "-q", "--json", dsn},
		{"pg", "repair", "-q", "--json", dsn},
		{"pg", "compare", "--json", "--from", dsn, "--to", dsn},
	} {
		code, stdout, stderr := run(t, ctx, args...)
		var v struct {
			SchemaVersion *int     `json:"schema_version"`
			Duration      *float64 `json:"duration_seconds"`
		}
		if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.SchemaVersion == nil || *v.SchemaVersion != 1 || v.Duration == nil {
			t.Errorf("%s: exit %d, %v, schema_version/duration_seconds missing:\n%.300s\n%s", strings.Join(args[:2], " "), code, err, stdout, stderr)
		}
	}
}
