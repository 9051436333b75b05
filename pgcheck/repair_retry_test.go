package pgcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestRepairOnALiveDatabase covers the failures a rebuild
// meets on a live database.
//
// testDuplicateArrivingMidway stores a new duplicate just
// before the unique index is rebuilt, as an application writing through the
// still-corrupt index would: REINDEX CONCURRENTLY fails on it and leaves
// an invalid copy; the repair drops the copy, resolves the duplicate with
// the rule, and rebuilds.
func TestRepairOnALiveDatabase(t *testing.T) { pgtest.ForEachVersion(t, testRepairOnALiveDatabase) }

func testRepairOnALiveDatabase(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	t.Run("duplicate", func(t *testing.T) { testDuplicateArrivingMidway(t, c) })
	t.Run("lock timeout", func(t *testing.T) { testRebuildRetriesLockTimeout(t, c) })
	t.Run("limited to an index", func(t *testing.T) { testRepairLimitedToAnIndex(t, c) })
	t.Run("nothing at risk", func(t *testing.T) { testRepairNothingAtRisk(t, c) })
	t.Run("old transaction", func(t *testing.T) { testRebuildWaitsOutOldTransactions(t, c) })
	t.Run("interrupted", func(t *testing.T) { testRepairInterruptedMidStep(t, c) })
	t.Run("leftovers", func(t *testing.T) { testLeftoverDetection(t, c) })
	t.Run("foreign schema", func(t *testing.T) { testRepairSchemaOwnedByAnother(t, c) })
}

// repairEndingTxOnSecondRetry runs a repair whose rebuild tx holds up: it
// ends tx when the rebuild is retried the second time, and checks that the
// retries were for the reason given and that the repair then ended clean.
func repairEndingTxOnSecondRetry(ctx context.Context, t *testing.T, srv *Target, tx pgx.Tx, reason string, opts RepairOptions) *RepairResult {
	t.Helper()
	retries := 0
	opts.Attempts = 10
	opts.Progress = func(p Progress) {
		e := *p.Event
		if e.Step != StepRebuild || e.Status != StatusRetry {
			return
		}
		if !strings.Contains(e.Error, reason) {
			t.Errorf("rebuild retried for another reason than %q: %s", reason, e.Error)
		}
		if retries++; retries == 2 {
			if err := tx.Rollback(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	res, err := applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if retries != 2 || !res.Clean() {
		t.Fatalf("%d retries, clean %v: failed %v verify %+v", retries, res.Clean(), res.Failed, res.Verify)
	}
	return res
}

// testRebuildWaitsOutOldTransactions keeps a transaction with a snapshot
// open: a REINDEX CONCURRENTLY would build the whole index, then wait for
// it and time out. The repair does not start the rebuild while the
// transaction is older than the rebuild's lock timeout; it retries, and
// rebuilds once the transaction has ended, without a build thrown away.
func testRebuildWaitsOutOldTransactions(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("old")
	c.Exec("old", `CREATE TABLE o (code text CONSTRAINT o_code_key UNIQUE); CREATE TABLE other (x int);
		INSERT INTO o SELECT 'code ' || g FROM generate_series(1, 100) g`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("old"), ConnOptions{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	holder := c.Connect("old")
	tx, err := holder.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM other"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	res := repairEndingTxOnSecondRetry(ctx, t, srv, tx, "open for longer than the rebuild lock timeout", RepairOptions{
		RetryWait:          100 * time.Millisecond,
		RebuildLockTimeout: 200 * time.Millisecond,
	})
	for _, e := range res.Events {
		if e.Step == StepDropLeftover {
			t.Fatalf("a rebuild was started and thrown away: %+v", res.Events)
		}
	}
}

// testRepairInterruptedMidStep interrupts a repair inside its dedupe
// transaction (once pg_stat_activity shows the DELETE waiting for a row
// lock) and between its two refresh statements; each time the next run
// resumes the same run, and the last ends clean with the rows and the
// versions accounted for.
func testRepairInterruptedMidStep(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("intr")
	c.Exec("intr", `CREATE TABLE d (id int PRIMARY KEY, code text COLLATE "en_US.utf8" NOT NULL, updated_at timestamptz NOT NULL);
		CREATE UNIQUE INDEX d_code_key ON d (code);
		UPDATE pg_index SET indisunique = false WHERE indexrelid = 'd_code_key'::regclass;
		INSERT INTO d VALUES (1, 'k', '2024-01-01'), (2, 'k', '2024-02-01'), (3, 'other', '2024-01-01');
		UPDATE pg_index SET indisunique = true WHERE indexrelid = 'd_code_key'::regclass`)
	ageVersions(t, c, "intr", true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("intr"), ConnOptions{LockTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Connect("intr")
	opts := RepairOptions{Dedupe: []DedupeRule{{KeepNewest: true, Column: "updated_at"}}, RetryWait: 10 * time.Millisecond}

	// 1. Inside the dedupe transaction: the DELETE waits for row 1.
	holder, err := c.Connect("intr").Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT * FROM d WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := applyRepair(runCtx, srv, opts)
		done <- err
	}()
	watch := c.Connect("intr")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = 'intr' AND wait_event_type = 'Lock' AND query LIKE 'WITH deleted AS (DELETE%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dedupe's DELETE never waited for the held row")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("repair interrupted in its dedupe: %v, want context.Canceled", err)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var rows, quarantined, dedupeDone int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM ringfence.quarantine),
		(SELECT count(*) FROM ringfence.repair_log WHERE step = 'dedupe' AND status = 'done')`).Scan(&rows, &quarantined, &dedupeDone); err != nil {
		t.Fatal(err)
	}
	if rows != 3 || quarantined != 0 || dedupeDone != 0 {
		t.Fatalf("after the interrupted dedupe: %d rows (want 3), %d quarantined (want 0), %d dedupe done (want 0)", rows, quarantined, dedupeDone)
	}

	// 2. Between the two refresh statements (PostgreSQL 14 records no
	// database collation version: there is one refresh, and nothing between).
	if c.Build.Major >= 15 {
		refreshes := 0
		runCtx, stop = context.WithCancel(ctx)
		opts.Progress = func(p Progress) {
			e := *p.Event
			if e.Step == StepRefresh && e.Status == StatusStarted {
				if refreshes++; refreshes == 2 {
					stop()
				}
			}
		}
		if _, err := applyRepair(runCtx, srv, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("repair interrupted between refreshes: %v, want context.Canceled", err)
		}
		stop()
		if v := collVersions(t, conn); strings.Count(v, "2.27") != 1 {
			t.Fatalf("after one refresh of two: versions %q, want exactly one still 2.27", v)
		}
	}

	// 3. Finished by the same run.
	opts.Progress = nil
	res, err := applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Clean() || res.RunDeleted != 1 || len(res.Plan.Refresh) != 1 {
		t.Fatalf("final run: resumed %v clean %v, %d deleted in the run (want 1), refresh %v (want the one left)",
			res.Resumed, res.Clean(), res.RunDeleted, res.Plan.Refresh)
	}
	if v := collVersions(t, conn); strings.Contains(v, "2.27") {
		t.Fatalf("versions %q after the repair", v)
	}
	var runs int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ringfence.repair_run`).Scan(&runs); err != nil || runs != 1 {
		t.Fatalf("%d repair runs (%v), want the one run resumed twice", runs, err)
	}
}

// testLeftoverDetection tells REINDEX CONCURRENTLY leftovers from indexes
// that only look like them: a leftover has a twin with the same definition
// on its table, valid or not; an invalid index without a twin is the
// operator's, whatever its name.
func testLeftoverDetection(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("left")
	c.Exec("left", `CREATE TABLE t (a text, b text);
		CREATE INDEX t_a_idx ON t (a);
		CREATE INDEX t_a_idx_ccnew ON t (a);
		CREATE INDEX mine_ccnew ON t (b);
		UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'mine_ccnew'::regclass`)
	srv, err := Open(c.DSN("left"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := dryRunRepair(context.Background(), srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ii := range plan.Invalid {
		got[ii.Name] = ii.Leftover
	}
	if len(got) != 2 || !got["t_a_idx_ccnew"] || got["mine_ccnew"] {
		t.Fatalf("invalid indexes %+v: want t_a_idx_ccnew (a valid twin) a leftover, mine_ccnew (no twin) not", plan.Invalid)
	}
	if findRebuild(plan, "t_a_idx_ccnew") != nil || findRebuild(plan, "t_a_idx") == nil {
		t.Fatalf("rebuilds %+v: the leftover is dropped, its twin rebuilt", plan.Rebuilds)
	}
}

// testRepairSchemaOwnedByAnother refuses to keep quarantined rows in a
// ringfence schema that another role owns (it could read them).
func testRepairSchemaOwnedByAnother(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("foreign")
	c.Exec("foreign", `CREATE ROLE mallory; CREATE SCHEMA ringfence AUTHORIZATION mallory;
		CREATE TABLE k (code text UNIQUE); INSERT INTO k VALUES ('a'), ('B')`)
	srv, err := Open(c.DSN("foreign"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = applyRepair(context.Background(), srv, RepairOptions{})
	if err == nil || !strings.Contains(err.Error(), "schema ringfence is owned by mallory") {
		t.Fatalf("repair into mallory's schema: %v", err)
	}
	var tables int
	if err := c.Connect("foreign").QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = 'ringfence'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d repair table(s) created in mallory's schema", tables)
	}
}

// testRepairNothingAtRisk applies a repair to a database whose text is all
// in the C collation: nothing to do, and nothing is created.
func testRepairNothingAtRisk(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("safe")
	c.Exec("safe", `CREATE TABLE k (code text COLLATE "C" PRIMARY KEY); INSERT INTO k VALUES ('a'), ('B')`)
	srv, err := Open(c.DSN("safe"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := applyRepair(context.Background(), srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() || len(res.Events) != 0 || res.RunID != "" {
		t.Fatalf("repair of a safe database: %+v", res)
	}
	var schemas, extensions int
	if err := c.Connect("safe").QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_namespace WHERE nspname = 'ringfence'),
		(SELECT count(*) FROM pg_extension WHERE extname = 'amcheck')`).Scan(&schemas, &extensions); err != nil {
		t.Fatal(err)
	}
	if schemas+extensions != 0 {
		t.Fatalf("a repair with nothing to do created %d schema(s) and %d extension(s)", schemas, extensions)
	}
}

func testDuplicateArrivingMidway(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("late")
	c.Exec("late", `CREATE TABLE s (id int PRIMARY KEY, code text CONSTRAINT s_code_key UNIQUE, updated_at timestamptz NOT NULL);
		INSERT INTO s SELECT g, 'code ' || g, timestamptz '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 500) g`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("late"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	injected := false
	opts := RepairOptions{
		Dedupe:    []DedupeRule{{KeepNewest: true, Column: "updated_at"}},
		RetryWait: 10 * time.Millisecond,
		Progress: func(p Progress) {
			e := *p.Event
			if e.Step == StepRebuild && e.Status == StatusStarted && strings.Contains(e.Target, "s_code_key") && !injected {
				injected = true
				c.Exec("late", `UPDATE pg_index SET indisunique = false WHERE indexrelid = 's_code_key'::regclass;
					INSERT INTO s VALUES (1001, 'code 7', timestamptz '2000-01-01');
					UPDATE pg_index SET indisunique = true WHERE indexrelid = 's_code_key'::regclass`)
			}
		},
	}
	res, err := applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !injected || !res.Clean() {
		t.Fatalf("repair not clean (injected %v): failed %v pending %v verify %+v events %+v", injected, res.Failed, res.Pending, res.Verify, res.Events)
	}
	conn := c.Connect("late")
	var retries, leftovers, quarantined int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ringfence.repair_log WHERE step = 'rebuild' AND status = 'retry' AND error LIKE '%could not create unique index%'),
		(SELECT count(*) FROM ringfence.repair_log WHERE step = 'drop_leftover' AND status = 'done' AND target LIKE '%s_code_key_ccnew%'),
		(SELECT count(*) FROM ringfence.quarantine WHERE (row_data->>'id')::int = 1001 AND action = 'deleted')`).Scan(&retries, &leftovers, &quarantined)
	if err != nil {
		t.Fatal(err)
	}
	if retries != 1 || leftovers != 1 || quarantined != 1 {
		t.Fatalf("journal: %d retries, %d leftovers dropped, %d rows quarantined; want 1 each", retries, leftovers, quarantined)
	}
	var ids []int
	rows, err := conn.Query(ctx, `SELECT id FROM s WHERE code = 'code 7'`)
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil || len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("code 7 rows %v (%v), want the newer row 7", ids, err)
	}
}

// testRebuildRetriesLockTimeout holds a lock that REINDEX CONCURRENTLY
// conflicts with for a while: the rebuild times out on lock_timeout, waits,
// retries, and succeeds once the lock is gone; the repair never queues
// behind the lock for longer than lock_timeout.
func testRebuildRetriesLockTimeout(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("busy")
	c.Exec("busy", `CREATE TABLE b (code text CONSTRAINT b_code_key UNIQUE);
		INSERT INTO b SELECT 'code ' || g FROM generate_series(1, 100) g`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("busy"), ConnOptions{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	holder := c.Connect("busy")
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE b IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	repairEndingTxOnSecondRetry(ctx, t, srv, tx, "lock timeout", RepairOptions{
		RetryWait:          200 * time.Millisecond,
		RebuildLockTimeout: 100 * time.Millisecond,
	})
	var timeouts int
	if err := c.Connect("busy").QueryRow(ctx, `SELECT count(*) FROM ringfence.repair_log
		WHERE step = 'rebuild' AND status = 'retry' AND error LIKE '%lock timeout%'`).Scan(&timeouts); err != nil {
		t.Fatal(err)
	}
	if timeouts != 2 {
		t.Fatalf("%d lock-timeout retries journaled, want 2", timeouts)
	}
}

// testRepairLimitedToAnIndex repairs one index: it is rebuilt and verified,
// but the run stays unfinished (versions unrefreshed) until a repair of
// every index at risk resumes and finishes it.
func testRepairLimitedToAnIndex(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("some")
	c.Exec("some", `CREATE TABLE p (a text CONSTRAINT p_a_key UNIQUE, b text CONSTRAINT p_b_key UNIQUE);
		INSERT INTO p SELECT 'a ' || g, 'b ' || g FROM generate_series(1, 100) g`)
	aged := ageVersions(t, c, "some", false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("some"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recordBaseline(t, c.Connect("some"))
	res, err := applyRepair(ctx, srv, RepairOptions{Indexes: []string{"p_b_key"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Rebuilds) != 1 || res.Plan.Rebuilds[0].Name != "p_b_key" || !hasEvent(res, StepRebuild, `"public"."p_b_key"`, StatusDone) {
		t.Fatalf("limited repair rebuilt %+v, events %+v", res.Plan.Rebuilds, res.Events)
	}
	for _, e := range res.Events {
		if e.Step == StepRefresh || e.Step == StepBaseline {
			t.Fatalf("a limited repair ran %s: %+v", e.Step, e)
		}
	}
	if res.Finished || len(res.Verify) > 0 || len(res.Failed) > 0 || len(res.Pending) != 1 {
		t.Fatalf("limited repair: finished %v verify %+v failed %v pending %v", res.Finished, res.Verify, res.Failed, res.Pending)
	}
	conn := c.Connect("some")
	if v := collVersions(t, conn); v != aged {
		t.Fatalf("a limited repair refreshed the database's version: %s", v)
	}
	// The unfinished run cannot be resumed under another dedupe rule.
	if _, err := applyRepair(ctx, srv, RepairOptions{Dedupe: []DedupeRule{{Column: "a"}}}); err == nil ||
		!strings.Contains(err.Error(), "started with dedupe rules none, not --dedupe keep-oldest:a") {
		t.Fatalf("resume with another rule: %v", err)
	}
	res, err = applyRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Clean() || !hasEvent(res, StepRebuild, `"public"."p_b_key"`, StatusSkipped) ||
		!hasEvent(res, StepRebuild, `"public"."p_a_key"`, StatusDone) || !hasEvent(res, StepBaseline, BaselineTable, StatusDone) {
		t.Fatalf("full repair after a limited one: %+v", res)
	}
	if v := collVersions(t, conn); strings.HasPrefix(v, "2.27") {
		t.Fatalf("the full repair did not refresh the database's version: %s", v)
	}
}
