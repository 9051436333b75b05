package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// appDB starts a throwaway cluster with database app and runs sql in it.
func appDB(t *testing.T, sql string) *pgtest.Cluster {
	t.Helper()
	c := pgtest.New(t)
	c.CreateDatabase("app")
	c.Exec("app", sql)
	return c
}

// run runs the real program and returns its exit code, stdout and stderr.
func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append([]string{"ringfence"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkJSON is the documented JSON form of `pg check --json`.
type checkJSON struct {
	Findings []struct {
		Kind     string `json:"kind"`
		Database string `json:"database"`
		Schema   string `json:"schema"`
		Table    string `json:"table"`
		Object   string `json:"object"`
		Detail   string `json:"detail"`
	} `json:"findings"`
	Checked struct {
		Indexes int `json:"indexes"`
	} `json:"checked"`
	Duration *float64 `json:"duration_seconds"`
}

func parseCheck(t *testing.T, stdout string) checkJSON {
	t.Helper()
	var r checkJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if r.Duration == nil {
		t.Fatalf("--json output lacks duration_seconds:\n%s", stdout)
	}
	// Every finding carries the documented keys.
	var raw struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range raw.Findings {
		for _, key := range []string{"kind", "database", "schema", "table", "object", "detail"} {
			if _, ok := f[key]; !ok {
				t.Errorf("finding without %q: %v", key, f)
			}
		}
	}
	return r
}

func (r checkJSON) objects(kind string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Kind == kind {
			out = append(out, f.Schema+"."+f.Object)
		}
	}
	slices.Sort(out)
	return out
}

func TestCheckCannotConnect(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, dsn, want string }{
		{"bad DSN", "postgres://%zz", "parse connection string"},
		{"unreachable", "postgres://postgres@127.0.0.1:1/app?connect_timeout=3", "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, ctx, "pg", "check", "-q", tc.dsn)
			if code != cli.ExitError || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tc.want)
			}
		})
	}
	code, _, stderr := run(t, ctx, "pg", "check", "--scope", "most", "postgres://x@127.0.0.1:1/x")
	if code != cli.ExitError || !strings.Contains(stderr, "unknown scope") {
		t.Fatalf("bad --scope: exit %d, %q", code, stderr)
	}
}

func TestCheckExitCodesAndGrants(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	pgtest.CollationFixture(t, c, "app")
	c.CreateDatabase("bare")

	// A clean database exits 0, and the human report says so.
	code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "--heap", "-j", "2", c.DSN("app"))
	if code != cli.ExitOK || !strings.Contains(stdout, "no problems found") {
		t.Fatalf("clean database: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// A pattern that matches nothing is an error, not a clean bill of health.
	code, _, stderr = run(t, ctx, "pg", "check", "-q", "-t", "wrods", c.DSN("app"))
	if code != cli.ExitError || !strings.Contains(stderr, "no relation matched") {
		t.Fatalf("-t wrods: exit %d, %q", code, stderr)
	}

	// amcheck missing: a clear error naming the flag, and nothing installed.
	code, _, stderr = run(t, ctx, "pg", "check", "-q", c.DSN("bare"))
	if code != cli.ExitError || !strings.Contains(stderr, "--install-missing") {
		t.Fatalf("without amcheck: exit %d, %q", code, stderr)
	}
	var installed bool
	if err := c.Connect("bare").QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'amcheck')`).Scan(&installed); err != nil || installed {
		t.Fatalf("check without --install-missing installed amcheck (%v)", err)
	}
	if code, _, stderr = run(t, ctx, "pg", "check", "-q", "--install-missing", c.DSN("bare")); code != cli.ExitOK {
		t.Fatalf("--install-missing: exit %d, %q", code, stderr)
	}

	// Break the collation under the data: findings exit 1, for the
	// superuser and for a role holding only the documented grants.
	c.Restart(pgtest.CodePoint)
	code, stdout, stderr = run(t, ctx, "pg", "check", "-q", "--json", "--heap", c.DSN("app"))
	if code != cli.ExitFindings {
		t.Fatalf("after the change: exit %d\n%s", code, stderr)
	}
	super := parseCheck(t, stdout)
	if !slices.Contains(super.objects("index_corrupt"), "public.words_name_key") {
		t.Fatalf("words_name_key not reported: %v", super.Findings)
	}
	c.Exec("app", docGrants(t))
	code, stdout, stderr = run(t, ctx, "pg", "check", "-q", "--json", "--heap", c.UserDSN("ringfence_check", "app"))
	if code != cli.ExitFindings {
		t.Fatalf("non-superuser: exit %d\n%s", code, stderr)
	}
	user := parseCheck(t, stdout)
	for _, kind := range []string{"index_corrupt", "partition_bound_violation", "check_constraint_violation"} {
		if !slices.Equal(user.objects(kind), super.objects(kind)) || len(user.objects(kind)) == 0 {
			t.Errorf("%s: non-superuser %v, superuser %v", kind, user.objects(kind), super.objects(kind))
		}
	}
}

// docGrants returns the SQL docs/pg-check.md gives for a non-superuser
// role, so the test runs exactly what the documentation says.
func docGrants(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "pg-check.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Running as a non-superuser")
	if ok {
		_, rest, ok = strings.Cut(rest, "```sql\n")
	}
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(block, "CREATE ROLE ringfence_check") {
		t.Fatal("docs/pg-check.md has no SQL block under \"Running as a non-superuser\"")
	}
	return block
}

func TestCheckStandby(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t, pgtest.WithVariant(pgtest.Glibc227))
	pgtest.CollationFixture(t, c, "app")
	// The standby runs on newer locale data than its primary.
	s := c.Standby(pgtest.Current)
	code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "--json", s.DSN("app"))
	if code != cli.ExitFindings {
		t.Fatalf("standby: exit %d\n%s", code, stderr)
	}
	if got := parseCheck(t, stdout).objects("index_corrupt"); !slices.Contains(got, "public.words_name_key") {
		t.Errorf("standby with different locale data: corrupt %v", got)
	}
	code, _, stderr = run(t, ctx, "pg", "check", "-q", "--parent-check", s.DSN("app"))
	if code != cli.ExitError || !strings.Contains(stderr, "impossible on a hot standby") {
		t.Fatalf("--parent-check on a standby: exit %d, %q", code, stderr)
	}
	// The primary, on its own data, is clean.
	if code, stdout, _ = run(t, ctx, "pg", "check", "-q", "--parent-check", c.DSN("app")); code != cli.ExitOK {
		t.Fatalf("primary: exit %d\n%s", code, stdout)
	}
}

func TestCheckCancel(t *testing.T) {
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	// Another session holds a lock the check must wait for.
	locker := c.Connect("app")
	bg := context.Background()
	if _, err := locker.Exec(bg, `BEGIN; LOCK TABLE words IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan int)
	go func() {
		code, _, _ := run(t, ctx, "pg", "check", "-q", "--lock-timeout", "5m", c.DSN("app"))
		done <- code
	}()
	watch := c.Connect("postgres")
	waitFor(t, 30*time.Second, func() bool {
		var n int
		_ = watch.QueryRow(bg, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ringfence' AND wait_event_type = 'Lock'`).Scan(&n)
		return n > 0
	})
	start := time.Now()
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitError {
			t.Errorf("cancelled check exit %d, want 2", code)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("cancellation took %v", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("check did not stop after cancellation")
	}
	// No session or lock is left behind.
	waitFor(t, 10*time.Second, func() bool {
		var n int
		_ = watch.QueryRow(bg, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ringfence'`).Scan(&n)
		return n == 0
	})
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
