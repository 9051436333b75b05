package pgcheck

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// dedupeFixture stores duplicates deterministically, with enforcement
// switched off in the catalog while they are inserted:
//
//   - public.ledger and archive.ledger hold the same groups; a rule for
//     "public.ledger" must win over one for "ledger" there, and only there.
//     Each group has a NULL, which never wins. public.ledger has an identity
//     column (GENERATED ALWAYS) and a stored generated column, which a
//     restore must cope with.
//   - ties has groups whose best value is shared, or NULL in every row:
//     no rule can pick a row to keep.
//   - hooked has a DELETE trigger, which a dedupe must not fire unasked.
const dedupeFixture = `
CREATE SCHEMA archive;
CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ref text NOT NULL, amount int NOT NULL,
	doubled int GENERATED ALWAYS AS (amount * 2) STORED, updated_at timestamptz);
CREATE UNIQUE INDEX ledger_ref_key ON ledger (ref);
CREATE TABLE archive.ledger (id int PRIMARY KEY, ref text NOT NULL, updated_at timestamptz);
CREATE UNIQUE INDEX ledger_ref_key ON archive.ledger (ref);
CREATE TABLE ties (id int PRIMARY KEY, code text NOT NULL, v int);
CREATE UNIQUE INDEX ties_code_key ON ties (code);
CREATE TABLE hooked (id int PRIMARY KEY, code text NOT NULL, updated_at timestamptz NOT NULL);
CREATE UNIQUE INDEX hooked_code_key ON hooked (code);
CREATE TABLE hook_log (id int, code text);
CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO hook_log VALUES (OLD.id, OLD.code); RETURN OLD; END $$;
CREATE TRIGGER hooked_log AFTER DELETE ON hooked FOR EACH ROW EXECUTE FUNCTION log_delete();
UPDATE pg_index SET indisunique = false WHERE indexrelid IN
	('ledger_ref_key'::regclass, 'archive.ledger_ref_key'::regclass, 'ties_code_key'::regclass, 'hooked_code_key'::regclass);
INSERT INTO ledger (ref, amount, updated_at) VALUES
	('a', 1, '2024-02-01'), ('a', 2, '2024-01-01'), ('a', 3, NULL),
	('b', 4, '2024-03-01'), ('b', 5, '2024-01-15'),
	('c', 6, '2024-01-01');
INSERT INTO archive.ledger VALUES
	(1, 'a', '2024-02-01'), (2, 'a', '2024-01-01'), (3, 'a', NULL),
	(4, 'b', '2024-03-01'), (5, 'b', '2024-01-15');
INSERT INTO ties VALUES (1, 'x', 5), (2, 'x', 5), (3, 'x', 1), (4, 'y', NULL), (5, 'y', NULL);
INSERT INTO hooked VALUES (1, 'h', '2024-01-01'), (2, 'h', '2024-02-01');
UPDATE pg_index SET indisunique = true WHERE indexrelid IN
	('ledger_ref_key'::regclass, 'archive.ledger_ref_key'::regclass, 'ties_code_key'::regclass, 'hooked_code_key'::regclass);
`

// TestRepairDedupeRules applies dedupe rules and checks exactly which rows
// each removes, that the most specific rule wins, that groups without a
// single row to keep and tables with triggers stop the repair, and that a
// dedupe never deletes a row it did not pick.
func TestRepairDedupeRules(t *testing.T) { pgtest.ForEachVersion(t, testRepairDedupeRules) }

func testRepairDedupeRules(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	t.Run("rules", func(t *testing.T) { testDedupeRules(t, c) })
	t.Run("race", func(t *testing.T) { testDedupeRace(t, c) })
}

func testDedupeRules(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("rules")
	c.Exec("rules", dedupeFixture)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("rules"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Connect("rules")
	opts := RepairOptions{
		Dedupe: []DedupeRule{
			{Table: "ledger", KeepNewest: true, Column: "updated_at"},
			{Table: "public.ledger", Column: "updated_at"},
			{Table: "ties", KeepNewest: true, Column: "v"},
			{Table: "hooked", KeepNewest: true, Column: "updated_at"},
		},
		RetryWait: 10 * time.Millisecond,
	}

	plan, err := dryRunRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]string{}
	rules := map[string]string{}
	for _, d := range plan.Duplicates {
		problems[d.Index.QualifiedName()] = d.Problem
		if d.Rule != nil {
			rules[d.Index.QualifiedName()] = d.Rule.String()
		}
	}
	if rules[`"public"."ledger_ref_key"`] != "public.ledger=keep-oldest:updated_at" ||
		rules[`"archive"."ledger_ref_key"`] != "ledger=keep-newest:updated_at" {
		t.Fatalf("rules chosen: %v; the schema-qualified rule must win for public.ledger only", rules)
	}
	if p := problems[`"public"."ties_code_key"`]; !strings.Contains(p, "2 duplicated key(s) have no single row to keep") {
		t.Fatalf("ties: problem %q, want both groups ambiguous (a shared best value, all NULL)", p)
	}
	if p := problems[`"public"."hooked_code_key"`]; !strings.Contains(p, "trigger hooked_log on hooked") {
		t.Fatalf("hooked: problem %q, want the trigger named", p)
	}
	if problems[`"public"."ledger_ref_key"`] != "" || problems[`"archive"."ledger_ref_key"`] != "" {
		t.Fatalf("ledger problems: %v", problems)
	}
	res, err := applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stopped) != 2 || res.RunID != "" {
		t.Fatalf("repair with ambiguous groups and a trigger: stopped %v, run %q; want it stopped on both", res.Stopped, res.RunID)
	}

	// The operator settles the ties and allows the trigger.
	c.Exec("rules", `DELETE FROM ties WHERE id IN (2, 5)`)
	opts.AllowTriggers = true
	res, err = applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() {
		t.Fatalf("repair not clean: stopped %v failed %v pending %v verify %+v", res.Stopped, res.Failed, res.Pending, res.Verify)
	}
	victims := map[string][]int{}
	q, err := Quarantined(ctx, conn, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range q {
		var row struct {
			ID int `json:"id"`
		}
		if err := json.Unmarshal(r.Row, &row); err != nil {
			t.Fatal(err)
		}
		victims[r.SourceTable] = append(victims[r.SourceTable], row.ID)
	}
	for tbl := range victims {
		slices.Sort(victims[tbl])
	}
	want := map[string][]int{
		// keep-oldest: a keeps 2 (NULL never wins), b keeps 5.
		`"public"."ledger"`: {1, 3, 4},
		// keep-newest: a keeps 1, b keeps 4.
		`"archive"."ledger"`: {2, 3, 5},
		`"public"."ties"`:    {3},
		`"public"."hooked"`:  {1},
	}
	for tbl, ids := range want {
		if !slices.Equal(victims[tbl], ids) {
			t.Errorf("%s: removed %v, want %v (all: %v)", tbl, victims[tbl], ids, victims)
		}
	}
	if n := seqCount(t, conn, "SELECT count(*) FROM hook_log WHERE id = 1"); n != 1 {
		t.Errorf("the allowed trigger logged %d deletion(s) of hooked row 1, want 1", n)
	}

	// A removed row with an identity and a generated column restores as it
	// was once its key is free.
	var id1 QuarantinedRow
	for _, r := range q {
		if r.SourceTable == `"public"."ledger"` && strings.Contains(string(r.Row), `"id": 1,`) {
			id1 = r
		}
	}
	c.Exec("rules", `DELETE FROM ledger WHERE ref = 'a'`)
	sql, err := id1.RestoreSQL(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("restore %s: %v", sql, err)
	}
	var got string
	if err := conn.QueryRow(ctx, `SELECT id || ' ' || amount || ' ' || doubled FROM ledger WHERE ref = 'a'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "1 1 2" {
		t.Fatalf("restored ledger row: %q, want id 1, amount 1, doubled 2", got)
	}
}

// testDedupeRace updates the row a dedupe picked for removal, between the
// pick and the delete, so that it becomes the newest of its group. The
// dedupe must not act on the stale pick: it fails with a serialization
// failure, starts again on fresh data and removes the other row, without a
// rebuild attempt wasted on duplicates left behind.
func testDedupeRace(t *testing.T, c *pgtest.Cluster) {
	c.CreateDatabase("race")
	c.Exec("race", `CREATE TABLE race (id int PRIMARY KEY, code text NOT NULL, updated_at timestamptz NOT NULL);
		CREATE UNIQUE INDEX race_code_key ON race (code);
		UPDATE pg_index SET indisunique = false WHERE indexrelid = 'race_code_key'::regclass;
		INSERT INTO race VALUES (1, 'k', '2024-01-01'), (2, 'k', '2024-02-01'), (3, 'other', '2024-01-01');
		UPDATE pg_index SET indisunique = true WHERE indexrelid = 'race_code_key'::regclass`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("race"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := c.Connect("race")
	raced := false
	res, err := applyRepair(ctx, srv, RepairOptions{
		Dedupe:    []DedupeRule{{KeepNewest: true, Column: "updated_at"}},
		RetryWait: 10 * time.Millisecond,
		afterPick: func() {
			if raced {
				return
			}
			raced = true
			if _, err := other.Exec(ctx, "UPDATE race SET updated_at = '2030-01-01' WHERE id = 1"); err != nil {
				t.Error(err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !raced || !res.Clean() {
		t.Fatalf("raced %v, repair: failed %v pending %v verify %+v", raced, res.Failed, res.Pending, res.Verify)
	}
	var ids []int
	rows, err := other.Query(ctx, "SELECT id FROM race ORDER BY id")
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int{1, 3}) {
		t.Fatalf("rows left %v, want [1 3]: row 1 was the newest when the rows were deleted", ids)
	}
	var dedupeRetries, rebuildRetries int
	if err := other.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE step = 'dedupe' AND status = 'retry' AND error LIKE '%could not serialize%'),
		count(*) FILTER (WHERE step = 'rebuild' AND status = 'retry')
		FROM ringfence.repair_log`).Scan(&dedupeRetries, &rebuildRetries); err != nil {
		t.Fatal(err)
	}
	if dedupeRetries != 1 || rebuildRetries != 0 {
		t.Fatalf("%d dedupe retries on a serialization failure (want 1), %d rebuild retries (want 0)", dedupeRetries, rebuildRetries)
	}
}
