package pgcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// partitionFixture is built under glibc's en_US order, where 'Mango',
// 'Zebra' and 'Zulu' sort after 'm'; under code-point order they sort
// before it, so after the switch they sit in the wrong partition.
//
//   - accounts is referenced by foreign keys with ON DELETE CASCADE and
//     ON DELETE SET NULL: moving its misplaced rows must not fire them.
//   - orders has a partial unique index whose predicate uses the
//     partition key: a search for its duplicates that lets the planner prune
//     partitions skips orders_high, where the misplaced copies are. It also
//     has a stored generated column, which a restore must leave out.
const partitionFixture = `
CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL) PARTITION BY RANGE (name);
CREATE TABLE accounts_low PARTITION OF accounts FOR VALUES FROM (MINVALUE) TO ('m');
CREATE TABLE accounts_high PARTITION OF accounts FOR VALUES FROM ('m') TO (MAXVALUE);
CREATE TABLE entries (account text NOT NULL REFERENCES accounts ON DELETE CASCADE ON UPDATE CASCADE, n int NOT NULL);
CREATE TABLE notes (account text REFERENCES accounts ON DELETE SET NULL, body text NOT NULL);
INSERT INTO accounts SELECT w, length(w)
	FROM unnest(ARRAY['apple', 'Apple', 'kiwi', 'Zebra', 'zebra', 'Mango', 'mango', 'Zulu']) w;
INSERT INTO entries SELECT name, g FROM accounts, generate_series(1, 3) g;
INSERT INTO notes SELECT name, 'note on ' || name FROM accounts;

CREATE TABLE orders (region text NOT NULL, code text NOT NULL, seq int NOT NULL, total int NOT NULL,
	tax int GENERATED ALWAYS AS (total / 10) STORED) PARTITION BY RANGE (region);
CREATE TABLE orders_low PARTITION OF orders FOR VALUES FROM (MINVALUE) TO ('m');
CREATE TABLE orders_high PARTITION OF orders FOR VALUES FROM ('m') TO (MAXVALUE);
CREATE UNIQUE INDEX orders_code_low ON orders (region, code) WHERE region < 'm';
INSERT INTO orders SELECT w, 'c' || g, g, 100 * g
	FROM unnest(ARRAY['apple', 'Zebra', 'Mango', 'kiwi']) w, generate_series(1, 5) g;
`

// partitionBreak runs under code-point order: the new rows are routed to
// orders_low, next to nothing, while their twins stay in orders_high.
const partitionBreak = `
INSERT INTO orders (region, code, seq, total) VALUES ('Zebra', 'c1', 101, 1), ('Mango', 'c2', 102, 2);
`

// TestRepairPartitions repairs partitioned tables after a switch to
// code-point order: duplicates across partitions under a partial unique
// index whose predicate prunes partitions, and misplaced rows referenced by
// cascading foreign keys.
func TestRepairPartitions(t *testing.T) { pgtest.ForEachVersion(t, testRepairPartitions) }

func testRepairPartitions(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	c.CreateDatabase("parts")
	c.Exec("parts", partitionFixture)
	c.Restart(pgtest.CodePoint)
	c.Exec("parts", partitionBreak)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("parts"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Connect("parts")

	// The search reads every partition, even those the predicate "rules
	// out" by their bounds.
	rep, err := FindDuplicates(ctx, srv, DuplicatesOptions{Indexes: []string{"orders_code_low"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Indexes) != 1 || rep.Indexes[0].Groups != 2 || rep.Indexes[0].ExcessRows != 2 {
		t.Fatalf("orders_code_low: %+v, want 2 duplicated keys across partitions", rep.Indexes)
	}
	for _, g := range rep.Indexes[0].Examples {
		tables := map[string]bool{}
		for _, r := range g.Rows {
			tables[r.Table] = true
		}
		if !tables[`"public"."orders_low"`] || !tables[`"public"."orders_high"`] {
			t.Fatalf("group %v: rows %+v, want one in each partition", g.Key, g.Rows)
		}
	}

	entriesBefore := seqCount(t, conn, "SELECT count(*) FROM entries")
	notesBefore := seqCount(t, conn, "SELECT count(*) FROM notes WHERE account IS NOT NULL")
	opts := RepairOptions{
		Dedupe:            []DedupeRule{{Table: "orders", KeepNewest: true, Column: "seq"}},
		ReroutePartitions: true,
		RetryWait:         10 * time.Millisecond,
	}
	res, err := applyRepair(ctx, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Major < 15 {
		// Before PostgreSQL 15 moving a row runs the ON DELETE actions of
		// the foreign keys referencing it: accounts is left to the
		// operator, who drops the references, and the run resumed.
		if pending := strings.Join(res.Pending, "\n"); len(res.Pending) != 1 ||
			!strings.Contains(pending, "(entries_account_fkey on entries, notes_account_fkey on notes), and before PostgreSQL 15 moving a row fires them") {
			t.Fatalf("PostgreSQL %d: pending %v, want accounts left for its foreign keys", b.Major, res.Pending)
		}
		if n := seqCount(t, conn, "SELECT count(*) FROM entries"); n != entriesBefore {
			t.Fatalf("entries: %d rows before the repair, %d after", entriesBefore, n)
		}
		c.Exec("parts", `ALTER TABLE entries DROP CONSTRAINT entries_account_fkey;
			ALTER TABLE notes DROP CONSTRAINT notes_account_fkey`)
		if res, err = applyRepair(ctx, srv, opts); err != nil {
			t.Fatal(err)
		}
	}
	if !res.Clean() {
		t.Fatalf("repair not clean: stopped %v failed %v pending %v verify %+v", res.Stopped, res.Failed, res.Pending, res.Verify)
	}
	if res.RunDeleted != 2 || res.RunMoved == 0 {
		t.Fatalf("deleted %d (want 2), moved %d", res.RunDeleted, res.RunMoved)
	}
	// Moving a referenced row fired no foreign-key action.
	if n := seqCount(t, conn, "SELECT count(*) FROM entries"); n != entriesBefore {
		t.Fatalf("entries: %d rows before the re-route, %d after: ON DELETE CASCADE fired", entriesBefore, n)
	}
	if n := seqCount(t, conn, "SELECT count(*) FROM notes WHERE account IS NOT NULL"); n != notesBefore {
		t.Fatalf("notes: %d referencing before the re-route, %d after: ON DELETE SET NULL fired", notesBefore, n)
	}
	for _, name := range []string{"Zebra", "Mango", "Zulu"} {
		var part string
		if err := conn.QueryRow(ctx, "SELECT tableoid::regclass::text FROM accounts WHERE name = $1", name).Scan(&part); err != nil {
			t.Fatalf("lookup of account %s after the re-route: %v", name, err)
		}
		if part != "accounts_low" {
			t.Fatalf("account %s is in %s, want accounts_low", name, part)
		}
	}
	// The older twins were removed, the newer ones kept.
	var kept string
	if err := conn.QueryRow(ctx, `SELECT string_agg(region || '/' || code || '/' || seq, ' ' ORDER BY region)
		FROM orders WHERE (region, code) IN (('Zebra', 'c1'), ('Mango', 'c2'))`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != "Mango/c2/102 Zebra/c1/101" {
		t.Fatalf("kept %q, want the newest rows Mango/c2/102 Zebra/c1/101", kept)
	}
	plan, err := dryRunRepair(ctx, srv, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) > 0 || len(plan.Duplicates) > 0 {
		t.Fatalf("after the repair: partitions %+v, duplicates %+v", plan.Partitions, plan.Duplicates)
	}

	// A quarantined row of a partitioned table with a generated column
	// restores through the partitioned table once its key is free.
	q, err := Quarantined(ctx, conn, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var victim *QuarantinedRow
	for i := range q {
		if q[i].Action == QuarantineDeleted && strings.Contains(string(q[i].Row), `"Zebra"`) {
			victim = &q[i]
		}
	}
	if victim == nil || victim.RestoreTable != `"public"."orders"` {
		t.Fatalf("no quarantined Zebra order restorable into orders: %+v", q)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM orders WHERE region = 'Zebra' AND code = 'c1'"); err != nil {
		t.Fatal(err)
	}
	sql, err := RestoreSQL(ctx, conn, victim.RestoreTable, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("restore %s: %v", sql, err)
	}
	var row string
	if err := conn.QueryRow(ctx, `SELECT tableoid::regclass::text || ' ' || seq || ' ' || tax FROM orders
		WHERE region = 'Zebra' AND code = 'c1'`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if row != "orders_low 1 10" {
		t.Fatalf("restored order: %q, want seq 1 with tax 10 in orders_low", row)
	}
}
