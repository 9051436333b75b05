package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/pgcheck"
)

// ringfence runs the real program with args and returns its exit code,
// stdout and stderr.
func ringfence(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append([]string{"ringfence"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// collationSchema has a unique constraint on the default collation, an
// index on the libc "en_US.utf8" collation and one on the safe C collation,
// with keys whose order differs between locale variants.
const collationSchema = `
CREATE TABLE users (id int PRIMARY KEY, name text CONSTRAINT users_name_key UNIQUE,
	title text COLLATE "en_US.utf8", code text COLLATE "C");
CREATE INDEX users_title ON users (title);
CREATE INDEX users_code ON users (code);
INSERT INTO users
SELECT g, n || ' ' || g, n, n
FROM generate_series(1, 500) g,
     LATERAL (SELECT (ARRAY['adam', 'Bob', 'co-op', 'coop', 'co op', 'O''Brien', 'Zed'])[1 + g % 7] AS n) v;`

func TestPgInventory(t *testing.T) {
	c := appDB(t, collationSchema)
	dsn := c.DSN("app")

	code, out, errOut := ringfence(t, "pg", "inventory", dsn)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"database app", "default", "en_US.UTF-8", "unique_constraint", "public.users_name_key",
		"public.users_title", "3 objects depend on a collation, 2 at risk, of which 2 indexes"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "users_code") {
		t.Errorf("safe index listed without --safe:\n%s", out)
	}
	if code, out, _ = ringfence(t, "pg", "inventory", "--safe", dsn); code != cli.ExitOK || !strings.Contains(out, "users_code") {
		t.Errorf("--safe: exit %d, output:\n%s", code, out)
	}

	code, out, errOut = ringfence(t, "pg", "inventory", "--json", dsn)
	if code != cli.ExitOK {
		t.Fatalf("--json exit %d: %s", code, errOut)
	}
	var inv pgcheck.DatabaseInventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	risk := map[string]bool{}
	for _, o := range inv.Objects {
		risk[o.Name] = o.AtRisk
	}
	if len(risk) != 3 || !risk["users_name_key"] || !risk["users_title"] || risk["users_code"] {
		t.Errorf("--json objects: %+v", inv.Objects)
	}

	if code, _, errOut = ringfence(t, "pg", "inventory", c.DSN("missing")); code != cli.ExitError || !strings.Contains(errOut, "missing") {
		t.Errorf("missing database: exit %d, stderr %s", code, errOut)
	}
}
