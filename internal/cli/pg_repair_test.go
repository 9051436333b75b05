package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// repairCLIFixture is built under the machine's locale; after a switch to
// code-point order (Debian to Alpine) its indexes and partitions are wrong.
const repairCLIFixture = `
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL CONSTRAINT users_email_key UNIQUE,
	updated_at timestamptz NOT NULL);
CREATE TABLE tags (label text CONSTRAINT tags_label_key UNIQUE, updated_at timestamptz NOT NULL);
CREATE TABLE events (k text NOT NULL, id int NOT NULL, updated_at timestamptz NOT NULL,
	PRIMARY KEY (k, id)) PARTITION BY RANGE (k);
CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('m');
CREATE TABLE events_high PARTITION OF events FOR VALUES FROM ('m') TO (MAXVALUE);
CREATE TEMP TABLE words AS SELECT w, ord::int - 1 AS n
	FROM unnest(ARRAY['a', 'A', 'a b', 'a-b', 'ab', 'b', 'z', 'Z', 'Zebra', 'apple', 'Apple', 'co-op'])
	WITH ORDINALITY AS u(w, ord);
INSERT INTO users SELECT g, w || '.' || (g / 12) || '@example.com', timestamptz '2024-01-01' + g * interval '1 minute'
	FROM generate_series(0, 2399) g JOIN words ON n = g % 12;
INSERT INTO tags SELECT w || ' ' || (g / 12), timestamptz '2024-01-01' + g * interval '1 minute'
	FROM generate_series(0, 1199) g JOIN words ON n = g % 12;
INSERT INTO events SELECT w || (g / 12), g, timestamptz '2024-01-01' + g * interval '1 minute'
	FROM generate_series(0, 2399) g JOIN words ON n = g % 12;
`

const repairCLIBreak = `
INSERT INTO users SELECT id + 100000, email, timestamptz '2025-01-01' FROM users ON CONFLICT DO NOTHING;
INSERT INTO tags SELECT label, timestamptz '2025-01-01' FROM tags ON CONFLICT DO NOTHING;
`

// repairRun runs the real program in this process.
func repairRun(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append([]string{"ringfence"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestPgRepairHelperProcess is not a test: it is the child process that
// TestPgRepair kills with SIGKILL. It runs ringfence with the arguments in
// RINGFENCE_REPAIR_CHILD and does nothing when that is unset.
func TestPgRepairHelperProcess(t *testing.T) {
	args := os.Getenv("RINGFENCE_REPAIR_CHILD")
	if args == "" {
		return
	}
	os.Exit(cli.Run(context.Background(), append([]string{"ringfence"}, strings.Split(args, "\n")...), os.Stdout, os.Stderr))
}

func TestPgRepair(t *testing.T) {
	c := appDB(t, repairCLIFixture)
	c.Restart(pgtest.CodePoint)
	c.Exec("app", repairCLIBreak)
	dsn := c.DSN("app")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	watch := c.Connect("app")
	count := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := watch.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}

	// pg duplicates: readable, JSON, one index.
	code, out, errOut := repairRun(ctx, "pg", "duplicates", dsn)
	t.Logf("pg duplicates:\n%s", out)
	if code != cli.ExitFindings || !strings.Contains(out, "public.users_email_key (constraint users_email_key") ||
		!strings.Contains(out, "id=") || !strings.Contains(out, "tags_label_key") {
		t.Fatalf("pg duplicates: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = repairRun(ctx, "pg", "duplicates", "--json", "--index", "users_email_key", dsn)
	var dups struct {
		Searched int `json:"indexes_searched"`
		Findings []struct {
			Kind   string `json:"kind"`
			Object string `json:"object"`
			Rows   int64  `json:"rows"`
		} `json:"findings"`
		Indexes []struct {
			Index struct {
				Name string `json:"index"`
			} `json:"index"`
			Groups   int64 `json:"groups"`
			Examples []struct {
				Key  []any `json:"key"`
				Rows []struct {
					ID map[string]any `json:"id"`
				} `json:"rows"`
			} `json:"examples"`
		} `json:"indexes"`
	}
	if err := json.Unmarshal([]byte(out), &dups); err != nil {
		t.Fatalf("pg duplicates --json: %v\n%s", err, out)
	}
	if code != cli.ExitFindings || dups.Searched != 1 || dups.Indexes[0].Index.Name != "users_email_key" ||
		dups.Indexes[0].Groups == 0 || len(dups.Indexes[0].Examples[0].Rows) < 2 || dups.Indexes[0].Examples[0].Rows[0].ID["id"] == nil {
		t.Fatalf("pg duplicates --json --index: exit %d\n%s", code, out)
	}
	if len(dups.Findings) != 1 || dups.Findings[0].Kind != "duplicate_key" || dups.Findings[0].Object != "users_email_key" ||
		dups.Findings[0].Rows != dups.Indexes[0].Groups {
		t.Fatalf("pg duplicates --json findings: %+v", dups.Findings)
	}
	if code, _, errOut := repairRun(ctx, "pg", "duplicates", "--index", "no_such_index", dsn); code != cli.ExitError ||
		!strings.Contains(errOut, "no_such_index") {
		t.Fatalf("unknown index: exit %d, %s", code, errOut)
	}

	// Dry run: the plan, and nothing created.
	code, out, _ = repairRun(ctx, "pg", "repair", dsn)
	t.Logf("pg repair (dry run):\n%s", out)
	if code != cli.ExitFindings || !strings.Contains(out, `REINDEX INDEX CONCURRENTLY "public"."users_email_key"`) ||
		!strings.Contains(out, "--apply would stop") || !strings.Contains(out, "events_low") {
		t.Fatalf("pg repair: exit %d\n%s", code, out)
	}
	if n := count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'ringfence'`); n != 0 {
		t.Fatal("the dry run created the ringfence schema")
	}
	code, out, _ = repairRun(ctx, "pg", "repair", "--json", "--dedupe", "users=keep-oldest:id", dsn)
	var plan struct {
		Duplicates []struct {
			Index struct {
				Name string `json:"index"`
			} `json:"index"`
			Rule *struct {
				Column string `json:"column"`
			} `json:"rule"`
		} `json:"duplicates"`
		Partitions []struct {
			Partition  string `json:"partition"`
			Rows       int64  `json:"rows"`
			RerouteSQL string `json:"reroute_sql"`
		} `json:"partition_violations"`
		Rebuilds []struct {
			SQL       string `json:"sql"`
			BlockedBy string `json:"blocked_by"`
		} `json:"rebuilds"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("pg repair --json: %v\n%s", err, out)
	}
	rules := map[string]string{}
	for _, d := range plan.Duplicates {
		rules[d.Index.Name] = ""
		if d.Rule != nil {
			rules[d.Index.Name] = d.Rule.Column
		}
	}
	if code != cli.ExitFindings || rules["users_email_key"] != "id" || rules["tags_label_key"] != "" ||
		len(plan.Partitions) != 1 || plan.Partitions[0].Rows == 0 || !strings.HasPrefix(plan.Partitions[0].RerouteSQL, `UPDATE "public"."events" AS t SET k = t.k WHERE t.tableoid = `) ||
		len(plan.Rebuilds) != 4 {
		t.Fatalf("pg repair --json: exit %d, rules %v\n%s", code, rules, out)
	}
	if code, _, errOut := repairRun(ctx, "pg", "repair", "--dedupe", "keep-latest:x", dsn); code != cli.ExitError ||
		!strings.Contains(errOut, "keep-latest") {
		t.Fatalf("bad rule: exit %d, %s", code, errOut)
	}

	// --apply without a rule stops.
	code, out, _ = repairRun(ctx, "pg", "repair", "--apply", dsn)
	if code != cli.ExitFindings || !strings.Contains(out, "stopped before changing anything") {
		t.Fatalf("pg repair --apply without rule: exit %d\n%s", code, out)
	}

	// kill -9 while a rebuild waits: a writer holds tags open, so REINDEX
	// CONCURRENTLY of tags_label_key builds its copy, then waits for the
	// writer. The child is killed once pg_stat_activity shows that very
	// statement waiting; its backend notices the dead client and aborts,
	// leaving tags_label_key_ccnew invalid.
	writer, err := watch.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Exec(ctx, `INSERT INTO tags VALUES ('held open by the test', now())`); err != nil {
		t.Fatal(err)
	}
	applyArgs := []string{"pg", "repair", "--apply", "--dedupe", "keep-newest:updated_at", "--reroute-partitions"}
	child := exec.Command(os.Args[0], "-test.run=^TestPgRepairHelperProcess$")
	child.Env = append(os.Environ(), "RINGFENCE_REPAIR_CHILD="+strings.Join(append(applyArgs,
		"--lock-timeout", "300ms", "--rebuild-lock-timeout", "1m", dsn), "\n"))
	var childErr bytes.Buffer
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	poll := c.Connect("app")
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int64
		_ = poll.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = 'app' AND state = 'active' AND wait_event_type = 'Lock'
			  AND query = 'REINDEX INDEX CONCURRENTLY "public"."tags_label_key"'`).Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			t.Fatalf("the child's REINDEX of tags_label_key never waited for the writer:\n%s", childErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	// The orphaned backend gives up within client_connection_check_interval
	// (watched from a session outside the writer's transaction, whose view
	// of pg_stat_activity would stay frozen).
	deadline = time.Now().Add(30 * time.Second)
	for {
		var running int64
		if err := poll.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = 'app' AND query LIKE 'REINDEX INDEX CONCURRENTLY%'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed repair's REINDEX went on without its client")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := writer.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed child's progress:\n%s", childErr.String())
	if n := count(`SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE NOT i.indisvalid AND c.relname LIKE 'tags_label_key_ccnew%'`); n == 0 {
		t.Fatal("the killed run left no invalid tags_label_key_ccnew")
	}
	if n := count(`SELECT count(*) FROM ringfence.repair_run WHERE finished_at IS NULL`); n != 1 {
		t.Fatalf("%d unfinished runs after the kill, want 1", n)
	}
	// The server notices the dead client and releases the repair lock.
	deadline = time.Now().Add(30 * time.Second)
	for count(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed repair's advisory lock was never released")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A second repair while one runs is refused.
	holder := c.Connect("app")
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock(x'7266726570616972'::bigint)"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = repairRun(ctx, append(applyArgs, dsn)...)
	if code != cli.ExitError || !strings.Contains(errOut, "another repair is running") {
		t.Fatalf("concurrent repair: exit %d, %s", code, errOut)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}

	// Run again: it resumes the killed run and ends clean.
	code, out, errOut = repairRun(ctx, append(applyArgs, dsn)...)
	t.Logf("pg repair --apply (resumed):\n%s\nprogress:\n%s", out, errOut)
	if code != cli.ExitOK || !strings.Contains(out, "(resumed)") || !strings.Contains(out, "finished: the database is repaired") {
		t.Fatalf("resumed repair: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, `drop_leftover "public"."tags_label_key_ccnew"`) {
		t.Fatalf("the resumed run did not drop the leftover:\n%s", errOut)
	}
	if code, out, _ := repairRun(ctx, "pg", "duplicates", dsn); code != cli.ExitOK || !strings.Contains(out, "no duplicates found") {
		t.Fatalf("duplicates after repair: exit %d\n%s", code, out)
	}
	code, out, errOut = repairRun(ctx, "pg", "check", "--heapallindexed", "--quiet", dsn)
	if code != cli.ExitOK {
		t.Fatalf("pg check after repair: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = repairRun(ctx, "pg", "repair", dsn)
	t.Logf("pg repair (dry run after the repair):\n%s", out)
	if code != cli.ExitOK {
		t.Fatalf("dry run after the repair: exit %d\n%s", code, out)
	}
	if n := count(`SELECT count(*) FROM ringfence.quarantine`); n == 0 {
		t.Fatal("nothing in the quarantine")
	}
	if n := count(`SELECT count(*) FROM ringfence.repair_log WHERE sql = ''`); n != 0 {
		t.Fatalf("%d journal rows without SQL", n)
	}
}
