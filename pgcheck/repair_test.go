package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// repairFixture builds, under the old locale, tables whose indexes and
// partitions a collation change breaks: a primary key and a unique
// constraint, a partial unique expression index, a unique index on a table
// without a primary key (rows are then named by ctid), a range-partitioned
// table with a text bound, and a B-tree exclusion constraint (which cannot
// be rebuilt concurrently). The keys mix case, spaces, hyphens and
// apostrophes, which every locale variant orders differently.
const repairFixture = `
CREATE TABLE users (
	id bigint PRIMARY KEY,
	email text NOT NULL CONSTRAINT users_email_key UNIQUE,
	name text,
	updated_at timestamptz NOT NULL);
CREATE UNIQUE INDEX users_name_lower ON users (lower(name)) WHERE name IS NOT NULL;
CREATE INDEX users_name ON users (name);
CREATE TABLE tags (label text COLLATE "en_US.utf8", updated_at timestamptz NOT NULL);
CREATE UNIQUE INDEX tags_label_key ON tags (label);
CREATE TABLE events (k text NOT NULL, id int NOT NULL, updated_at timestamptz NOT NULL,
	PRIMARY KEY (k, id)) PARTITION BY RANGE (k);
CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('a-b');
CREATE TABLE events_high PARTITION OF events FOR VALUES FROM ('a-b') TO (MAXVALUE);
CREATE TABLE rooms (room text, CONSTRAINT rooms_excl EXCLUDE USING btree (room WITH =));
CREATE TABLE bounds (lo text CONSTRAINT bounds_lo_check CHECK (lo < 'a-b'),
	hi text CONSTRAINT bounds_hi_check CHECK (hi >= 'a-b'));
CREATE TEMP TABLE words AS
	SELECT w, ord::int - 1 AS n
	  FROM unnest(ARRAY['a', 'A', 'a b', 'a-b', 'ab', 'b', 'z', 'Z', 'zebra', 'Zebra', 'apple', 'Apple',
	                    'co-op', 'coop', 'co op', 'a''b', 'ab-c', 'Ab c']) WITH ORDINALITY AS u(w, ord);
INSERT INTO users
	SELECT g, w || '.' || (g / 18) || '@example.com', w || ' ' || g, timestamptz '2024-01-01' + g * interval '1 minute'
	  FROM generate_series(0, 3599) g JOIN words ON n = g % 18;
INSERT INTO tags
	SELECT w || ' ' || (g / 18), timestamptz '2024-01-01' + g * interval '1 minute'
	  FROM generate_series(0, 1799) g JOIN words ON n = g % 18;
INSERT INTO tags VALUES (NULL, now()), (NULL, now());
INSERT INTO events
	SELECT w || (g / 18), g, timestamptz '2024-01-01' + g * interval '1 minute'
	  FROM generate_series(0, 3599) g JOIN words ON n = g % 18;
INSERT INTO events SELECT w, 100000 + n, timestamptz '2024-01-01' FROM words;
INSERT INTO rooms SELECT w FROM words;
INSERT INTO bounds SELECT w, NULL FROM words WHERE w < 'a-b';
INSERT INTO bounds SELECT NULL, w FROM words WHERE w >= 'a-b';
`

// breakFixture runs after the switch: it inserts a copy of existing keys.
// Each copy the corrupt unique index fails to see gets in, as happens in
// production; rows inserted into events now land in the partition the new
// order picks, next to old rows the old order put elsewhere.
const breakFixture = `
INSERT INTO users (id, email, name, updated_at)
	SELECT id + 100000, email, CASE WHEN id % 2 = 0 THEN upper(name) END, timestamptz '2025-01-01' + id * interval '1 second'
	  FROM users ON CONFLICT DO NOTHING;
INSERT INTO tags SELECT label, timestamptz '2025-01-01' FROM tags WHERE label IS NOT NULL ON CONFLICT DO NOTHING;
INSERT INTO events SELECT k, id, timestamptz '2025-01-01' FROM events WHERE id % 3 = 0 ON CONFLICT DO NOTHING;
`

func TestRepairGlibc227ToCurrent(t *testing.T) {
	pgtest.ForEachVersion(t, func(t *testing.T, b pgtest.Build) { testRepairScenario(t, b, pgtest.Glibc227, pgtest.Current) })
}

func TestRepairCurrentToCodePoint(t *testing.T) {
	pgtest.ForEachVersion(t, func(t *testing.T, b pgtest.Build) { testRepairScenario(t, b, pgtest.Current, pgtest.CodePoint) })
}

func TestRepairCurrentToSynthetic(t *testing.T) {
	pgtest.ForEachVersion(t, func(t *testing.T, b pgtest.Build) { testRepairScenario(t, b, pgtest.Current, pgtest.Synthetic) })
}

// testRepairScenario breaks a database with a collation change and repairs
// it: dry run (changes nothing), apply without a rule (stops, changes
// nothing), apply interrupted, resumed (leaving the exclusion constraint and
// the CHECK violations to the operator, versions unrefreshed), and finished
// with Blocking once the operator fixed the rows; then proves the result: no
// duplicates, no misplaced rows, amcheck and pg check clean, versions
// refreshed, every removed row in the quarantine and the counts adding up,
// lookups through the rebuilt indexes finding every row, a quarantined row
// restorable.
func testRepairScenario(t *testing.T, b pgtest.Build, from, to pgtest.Variant) {
	c := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(from))
	c.CreateDatabase("shop")
	c.Exec("shop", repairFixture)
	recordBaseline(t, c.Connect("shop"))
	c.Restart(to)
	c.Exec("shop", breakFixture)
	// PostgreSQL records the library's version, not the locale data's: make
	// the catalog say what a glibc upgrade would (2.27 recorded, 2.36 now),
	// so that the refresh at the end has work.
	aged := ageVersions(t, c, "shop", true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("shop"), ConnOptions{LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Connect("shop")

	before := map[string]int64{}
	for _, tbl := range []string{"users", "tags", "events"} {
		before[tbl] = seqCount(t, conn, "SELECT count(*) FROM "+tbl)
	}
	if missing := missedByIndex(t, conn); missing == 0 {
		t.Fatalf("the switch from %s to %s broke no lookup: the scenario proves nothing", from, to)
	}
	if changed, _, err := CheckFingerprint(ctx, conn, ""); err != nil || len(changed) == 0 {
		t.Fatalf("the fingerprint did not notice the switch (%v): the baseline re-recording proves nothing", err)
	}

	dups, err := FindDuplicates(ctx, srv, DuplicatesOptions{MaxGroups: 100000})
	if err != nil {
		t.Fatal(err)
	}
	violated := map[string]IndexDuplicates{}
	for _, d := range dups.Violated() {
		violated[d.Index.Name] = d
	}
	for _, name := range []string{"users_email_key", "tags_label_key"} {
		if violated[name].Groups == 0 {
			t.Fatalf("no duplicates found under %s; report: %+v", name, dups.Indexes)
		}
	}
	for _, g := range violated["tags_label_key"].Examples {
		for _, r := range g.Rows {
			if r.CTID == "" || r.ID != nil {
				t.Fatalf("tags has no primary key: rows must be named by ctid, got %+v", r)
			}
		}
		if g.Key[0] == nil {
			t.Fatalf("NULL labels are distinct and must not be reported: %+v", g)
		}
	}
	for _, g := range violated["users_email_key"].Examples {
		for _, r := range g.Rows {
			if r.ID["id"] == nil {
				t.Fatalf("users rows must carry their primary key, got %+v", r)
			}
		}
	}
	if len(dups.Findings()) != len(dups.Violated()) || dups.Findings()[0].Kind != KindDuplicateKey {
		t.Fatalf("findings %+v", dups.Findings())
	}

	// A dry run changes nothing, and says what blocks.
	digest := databaseDigest(t, conn)
	plan, err := dryRunRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := databaseDigest(t, conn); got != digest {
		t.Fatal("the dry run changed the database")
	}
	if len(plan.Blockers()) == 0 || len(plan.Partitions) == 0 || len(plan.Rebuilds) == 0 {
		t.Fatalf("plan misses work: blockers %v, partitions %+v, rebuilds %d", plan.Blockers(), plan.Partitions, len(plan.Rebuilds))
	}
	if r := findRebuild(plan, "rooms_excl"); r == nil || r.Concurrent {
		t.Fatalf("the exclusion constraint must be planned as a blocking rebuild: %+v", r)
	}
	if r := findRebuild(plan, "users_email_key"); r == nil || r.BlockedBy == "" {
		t.Fatalf("users_email_key must be blocked by its duplicates: %+v", r)
	}
	if len(plan.Checks) == 0 {
		t.Fatal("no CHECK constraint violated after the switch: the scenario proves nothing")
	}
	if len(plan.Refresh) != strings.Count(aged, "2.27") ||
		(c.Build.Major >= 15 && !strings.Contains(strings.Join(plan.Refresh, " "), `ALTER DATABASE "shop" REFRESH COLLATION VERSION`)) {
		t.Fatalf("refresh %v, want the database's and en_US.utf8's", plan.Refresh)
	}
	if !unique(plan.Rebuilds[0].Type) {
		t.Fatalf("unique indexes must be rebuilt first, plan starts with %+v", plan.Rebuilds[0])
	}

	// Applied without a rule, the duplicates stop it before any change.
	res, err := applyRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stopped) == 0 || res.RunID != "" {
		t.Fatalf("repair without a dedupe rule must stop: %+v", res)
	}
	if got := databaseDigest(t, conn); got != digest {
		t.Fatal("a stopped repair changed the database")
	}

	// A failed REINDEX CONCURRENTLY leaves an invalid copy behind.
	if _, err := conn.Exec(ctx, "REINDEX INDEX CONCURRENTLY users_email_key"); err == nil {
		t.Fatal("REINDEX CONCURRENTLY succeeded over duplicates")
	}
	plan, err = dryRunRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Invalid) != 1 || !plan.Invalid[0].Leftover || plan.Invalid[0].Name != "users_email_key_ccnew" {
		t.Fatalf("invalid indexes %+v, want the users_email_key_ccnew leftover", plan.Invalid)
	}

	// Keep-newest keeps the copies inserted after the switch; remember
	// which row each duplicated email must end with.
	wantUser := map[string]int64{}
	for _, g := range violated["users_email_key"].Examples {
		var id int64
		err := seqTx(t, conn, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT id FROM users WHERE email = $1 ORDER BY updated_at DESC LIMIT 1", g.Key[0]).Scan(&id)
		})
		if err != nil {
			t.Fatal(err)
		}
		wantUser[g.Key[0].(string)] = id
	}

	// Interrupted at the second rebuild.
	opts := RepairOptions{
		Dedupe:            []DedupeRule{{KeepNewest: true, Column: "updated_at"}},
		ReroutePartitions: true,
		RetryWait:         50 * time.Millisecond,
	}
	runCtx, stop := context.WithCancel(ctx)
	rebuilds := 0
	var rebuiltBefore []string
	opts.Progress = func(p Progress) {
		e := *p.Event
		if e.Step == StepRebuild && e.Status == StatusDone {
			rebuiltBefore = append(rebuiltBefore, e.Target)
		}
		if e.Step == StepRebuild && e.Status == StatusStarted {
			if rebuilds++; rebuilds == 2 {
				stop()
			}
		}
	}
	if _, err := applyRepair(runCtx, srv, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted repair: %v, want context.Canceled", err)
	}
	stop()

	// Resumed without --blocking: everything but the exclusion constraint.
	opts.Progress = nil
	res, err = applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	pending := strings.Join(res.Pending, "\n")
	if !res.Resumed || res.Finished || len(res.Failed) > 0 || !strings.Contains(pending, "rooms_excl") ||
		!strings.Contains(pending, "violate the CHECK constraint") {
		t.Fatalf("resumed repair: resumed %v finished %v pending %v failed %v verify %+v", res.Resumed, res.Finished, res.Pending, res.Failed, res.Verify)
	}
	if v := collVersions(t, conn); v != aged {
		t.Fatalf("versions refreshed although decisions are pending: %s", v)
	}
	// The operator decides the CHECK violations: here, drop those rows.
	if _, err := conn.Exec(ctx, `DELETE FROM bounds WHERE (lo < 'a-b') IS FALSE OR (hi >= 'a-b') IS FALSE`); err != nil {
		t.Fatal(err)
	}
	if len(rebuiltBefore) != 1 || !hasEvent(res, StepRebuild, rebuiltBefore[0], StatusSkipped) {
		t.Fatalf("the resumed run rebuilt again what the interrupted one finished: %+v", res.Events)
	}
	run := res.RunID

	// Finished with --blocking, still the same run.
	opts.Blocking = true
	res, err = applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() || res.RunID != run {
		t.Fatalf("final repair not clean: run %s (want %s), failed %v pending %v verify %+v", res.RunID, run, res.Failed, res.Pending, res.Verify)
	}

	if v := collVersions(t, conn); v == "2.27 2.27" || strings.Contains(v, "2.27") {
		t.Fatalf("collation versions not refreshed: %s", v)
	}

	// Nothing left: no duplicates, nothing misplaced, no invalid index.
	after, err := FindDuplicates(ctx, srv, DuplicatesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := after.Violated(); len(v) > 0 {
		t.Fatalf("duplicates after repair: %+v", v)
	}
	plan, err = dryRunRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) > 0 || len(plan.Invalid) > 0 || len(plan.Duplicates) > 0 || plan.ResumeRun != "" {
		t.Fatalf("plan after repair: partitions %+v invalid %+v duplicates %d resume %q", plan.Partitions, plan.Invalid, len(plan.Duplicates), plan.ResumeRun)
	}
	check, err := Check(ctx, srv, CheckOptions{HeapAllIndexed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(check.Findings) > 0 {
		t.Fatalf("pg check after repair: %+v", check.Findings)
	}
	if missing := missedByIndex(t, conn); missing != 0 {
		t.Fatalf("%d row(s) still missed by index lookups", missing)
	}
	if !check.Checked.Fingerprint || !hasEvent(res, StepBaseline, BaselineTable, StatusDone) {
		t.Fatalf("the collation baseline was not recorded again (compared %v, events %+v)", check.Checked.Fingerprint, res.Events)
	}

	// Every removed row is in the quarantine, and the counts add up.
	q, err := Quarantined(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	deleted, moved := map[string]int64{}, int64(0)
	for _, r := range q {
		if r.RunID != run {
			t.Fatalf("quarantine row of run %s, want %s", r.RunID, run)
		}
		switch r.Action {
		case QuarantineDeleted:
			deleted[strings.TrimPrefix(strings.ReplaceAll(r.RestoreTable, `"`, ""), "public.")]++
		case QuarantineMoved:
			moved++
		}
	}
	for tbl, n := range before {
		now := seqCount(t, conn, "SELECT count(*) FROM "+tbl)
		if now+deleted[tbl] != n {
			t.Errorf("%s: %d rows before, %d now, %d quarantined as deleted", tbl, n, now, deleted[tbl])
		}
	}
	if deleted["users"] < violated["users_email_key"].ExcessRows || deleted["tags"] != violated["tags_label_key"].ExcessRows {
		t.Errorf("quarantined %v, want at least the excess rows (users %d, tags %d)", deleted,
			violated["users_email_key"].ExcessRows, violated["tags_label_key"].ExcessRows)
	}
	if moved == 0 {
		t.Error("no row was re-routed to its partition")
	}
	for email, id := range wantUser {
		var got []int64
		rows, err := conn.Query(ctx, "SELECT id FROM users WHERE email = $1", email)
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != id {
			t.Fatalf("lookup of %q returns %v, want the newest row %d", email, got, id)
		}
	}

	// A quarantined row restores once its key is free again.
	var victim QuarantinedRow
	for _, r := range q {
		if r.Action == QuarantineDeleted && r.RestoreTable == QuoteIdent("public", "tags") {
			victim = r
			break
		}
	}
	restore, err := victim.RestoreSQL(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, restore); err == nil {
		t.Fatal("restoring a duplicate succeeded: the rebuilt unique index does not hold")
	}
	var label string
	if err := conn.QueryRow(ctx, "SELECT row_data->>'label' FROM ringfence.quarantine WHERE id = $1", victim.ID).Scan(&label); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM tags WHERE label = $1", label); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, restore); err != nil {
		t.Fatalf("restore: %v", err)
	}
	var same bool
	if err := conn.QueryRow(ctx, `SELECT to_jsonb(t) = q.row_data FROM tags t, ringfence.quarantine q
		WHERE t.label = $1 AND q.id = $2`, label, victim.ID).Scan(&same); err != nil || !same {
		t.Fatalf("restored row differs from its quarantined copy (%v)", err)
	}
}

// recordBaseline records the database's collation fingerprints, as an
// operator running `pg fingerprint --record` before the upgrade would.
func recordBaseline(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	if err := RecordFingerprints(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
}

// ageVersions makes db's catalog say what a glibc upgrade would (2.27
// recorded, 2.36 now) for the database's collation (recorded from
// PostgreSQL 15 on) and, with collation, for "en_US.utf8", so that a repair
// has versions to refresh. It returns what collVersions then reads.
func ageVersions(t *testing.T, c *pgtest.Cluster, db string, collation bool) string {
	t.Helper()
	if c.Build.Major >= 15 {
		c.Exec(db, `UPDATE pg_database SET datcollversion = '2.27' WHERE datname = current_database()`)
	}
	if collation {
		c.Exec(db, `UPDATE pg_collation SET collversion = '2.27' WHERE collname = 'en_US.utf8'`)
	}
	return collVersions(t, c.Connect(db))
}

// collVersions returns the recorded versions of the database's collation
// ("-" before PostgreSQL 15, which records none) and of "en_US.utf8".
func collVersions(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var v string
	err := conn.QueryRow(context.Background(), `SELECT
		coalesce((SELECT to_jsonb(d) ->> 'datcollversion' FROM pg_database d WHERE datname = current_database()), '-') || ' ' ||
		(SELECT collversion FROM pg_collation WHERE collname = 'en_US.utf8')`).Scan(&v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func findRebuild(p *RepairPlan, name string) *PlannedRebuild {
	for i := range p.Rebuilds {
		if p.Rebuilds[i].Name == name {
			return &p.Rebuilds[i]
		}
	}
	return nil
}

func unique(typ string) bool { return typ == ObjectPrimaryKey || typ == ObjectUniqueConstraint }

func hasEvent(r *RepairResult, step RepairStep, target string, status RepairStatus) bool {
	for _, e := range r.Events {
		if e.Step == step && e.Target == target && e.Status == status {
			return true
		}
	}
	return false
}

// seqTx runs fn in a transaction that cannot use indexes.
func seqTx(t *testing.T, conn *pgx.Conn, fn func(pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := seqScanOnly(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

func seqCount(t *testing.T, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := seqTx(t, conn, func(tx pgx.Tx) error { return tx.QueryRow(context.Background(), sql).Scan(&n) }); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// missedByIndex counts the rows that an indexed lookup of their own key
// (or partition-pruned lookup) fails to find.
func missedByIndex(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, s := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL enable_hashjoin = off",
			"SET LOCAL enable_mergejoin = off", "SET LOCAL enable_bitmapscan = off"} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		var users, events int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT email FROM users OFFSET 0) s
			WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.email = s.email)`).Scan(&users); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT k, id FROM events OFFSET 0) s
			WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.k = s.k AND e.id = s.id)`).Scan(&events); err != nil {
			return err
		}
		n = users + events
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// databaseDigest hashes what a repair could change: the catalog rows of
// user relations, indexes' validity, collation versions, extensions and
// schemas, and every user table's rows with their physical addresses.
func databaseDigest(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	ctx := context.Background()
	var catalog string
	err := conn.QueryRow(ctx, `SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
		SELECT format('rel %s %s %s %s %s', n.nspname, c.relname, c.oid, c.relfilenode, c.relkind)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
		UNION ALL SELECT format('idx %s %s %s', indexrelid, indisvalid, indisready) FROM pg_index
		UNION ALL SELECT format('coll %s %s', oid, collversion) FROM pg_collation
		UNION ALL SELECT format('db %s %s', datname, to_jsonb(d) ->> 'datcollversion') FROM pg_database d
		UNION ALL SELECT format('ext %s %s', extname, extversion) FROM pg_extension
		UNION ALL SELECT format('nsp %s', nspname) FROM pg_namespace) s(x)`).Scan(&catalog)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(catalog)
	for _, tbl := range tables {
		var h string
		q := fmt.Sprintf("SELECT coalesce(md5(string_agg(t.ctid::text || t::text, ',' ORDER BY t.ctid)), '') FROM ONLY %s t", tbl)
		if err := conn.QueryRow(ctx, q).Scan(&h); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, " %s=%s", tbl, h)
	}
	return b.String()
}
