package pgcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// duplicateSemantics stores rows that violate unique indexes
// deterministically: enforcement is switched off in the catalog while they
// are inserted (a corrupt index fails to enforce in just the same way, but
// only for keys the collation change happened to move).
const duplicateSemantics = `
CREATE TABLE s (id int PRIMARY KEY, code text, region text, note text);
CREATE TABLE s_child () INHERITS (s);
CREATE UNIQUE INDEX s_nnd ON s (code, region) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX s_plain ON s (code, region);
CREATE UNIQUE INDEX s_partial ON s (lower(code)) WHERE note IS NULL;
CREATE INDEX s_code ON s (code);
UPDATE pg_index SET indisunique = false WHERE indexrelid IN ('s_nnd'::regclass, 's_plain'::regclass, 's_partial'::regclass);
INSERT INTO s VALUES
	(1, 'x', NULL, 'n'), (2, 'x', NULL, 'n'),
	(3, 'y', 'r', 'n'), (4, 'y', 'r', 'n'), (5, 'y', 'r', 'n'),
	(6, 'Q', 'a', NULL), (7, 'q', 'b', NULL),
	(8, 'W', 'a', 'n'), (9, 'w', 'b', NULL);
INSERT INTO s_child VALUES (10, 'y', 'r', 'n');
UPDATE pg_index SET indisunique = true WHERE indexrelid IN ('s_nnd'::regclass, 's_plain'::regclass, 's_partial'::regclass);
`

func TestFindDuplicatesSemantics(t *testing.T) { pgtest.ForEachVersion(t, testFindDuplicatesSemantics) }

type group struct {
	key string
	ids []float64
}

func testFindDuplicatesSemantics(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	c.CreateDatabase("dups")
	fixture, nnd := duplicateSemantics, []group{{`y|r`, []float64{3, 4, 5}}, {`x|<nil>`, []float64{1, 2}}}
	if b.Major < 15 { // no NULLS NOT DISTINCT: s_nnd is a plain unique index
		fixture = strings.Replace(fixture, " NULLS NOT DISTINCT;", ";", 1)
		nnd = nnd[:1]
	}
	c.Exec("dups", fixture)
	// Make every session prefer the indexes, as on a big table: the search
	// must read past them anyway.
	c.Exec("dups", `ALTER DATABASE dups SET enable_seqscan = off`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := Open(c.DSN("dups"), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := FindDuplicates(ctx, srv, DuplicatesOptions{Indexes: []string{"public.s_nnd", "s_plain", "s_partial"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]IndexDuplicates{}
	for _, d := range rep.Indexes {
		got[d.Index.Name] = d
	}
	want := map[string][]group{
		// NULLS NOT DISTINCT: the NULL regions conflict.
		"s_nnd": nnd,
		// NULLS DISTINCT: they do not; the inheritance child is not covered.
		"s_plain": {{`y|r`, []float64{3, 4, 5}}},
		// Only rows matching the predicate, compared by the expression.
		"s_partial": {{`q`, []float64{6, 7}}},
	}
	for name, groups := range want {
		d, ok := got[name]
		if !ok {
			t.Fatalf("%s not searched: %+v", name, rep.Indexes)
		}
		if int(d.Groups) != len(groups) || len(d.Examples) != len(groups) {
			t.Fatalf("%s: %d groups %+v, want %v", name, d.Groups, d.Examples, groups)
		}
		var excess int64
		for i, g := range groups {
			e := d.Examples[i]
			var key []string
			for _, k := range e.Key {
				if k == nil {
					key = append(key, "<nil>")
				} else {
					key = append(key, k.(string))
				}
			}
			if strings.Join(key, "|") != g.key || len(e.Rows) != len(g.ids) {
				t.Fatalf("%s group %d: key %v rows %+v, want %s %v", name, i, e.Key, e.Rows, g.key, g.ids)
			}
			for j, r := range e.Rows {
				if r.ID["id"] != g.ids[j] || r.Table != `"public"."s"` || r.CTID == "" {
					t.Fatalf("%s group %d row %d: %+v, want id %v in \"public\".\"s\"", name, i, j, r, g.ids[j])
				}
			}
			excess += int64(len(g.ids) - 1)
		}
		if d.ExcessRows != excess {
			t.Errorf("%s: %d excess rows, want %d", name, d.ExcessRows, excess)
		}
	}
	// The plans prove it: with the search's settings no index is read;
	// without them the planner would read the indexes under test.
	conn := c.Connect("dups")
	for _, d := range rep.Indexes {
		query := "EXPLAIN " + strings.Replace(d.Index.groupsSQL(), "$1", "100", 1)
		with, without := explain(t, conn, query, true), explain(t, conn, query, false)
		if strings.Contains(with, "Index") || strings.Contains(with, "Bitmap") {
			t.Errorf("%s: the search reads an index:\n%s", d.Index.Name, with)
		}
		if !strings.Contains(without, "Index") && !strings.Contains(without, "Bitmap") {
			t.Errorf("%s: even without the search's settings no index is read, so this test proves nothing:\n%s", d.Index.Name, without)
		}
	}
	if f := rep.Findings(); len(f) != 3 || f[0].Kind != KindDuplicateKey || f[0].Rows == 0 {
		t.Errorf("findings %+v", f)
	}

	if _, err := FindDuplicates(ctx, srv, DuplicatesOptions{Indexes: []string{"s_code"}}); err == nil ||
		!strings.Contains(err.Error(), "not a unique B-tree index") {
		t.Errorf("a non-unique index was searched: %v", err)
	}
	if _, err := FindDuplicates(ctx, srv, DuplicatesOptions{Indexes: []string{"nope"}}); err == nil {
		t.Error("an unknown index was accepted")
	}
	// The default scope is every at-risk unique index: here those on s.
	all, err := FindDuplicates(ctx, srv, DuplicatesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Searched != 3 || len(all.Violated()) != 3 {
		t.Errorf("default scope searched %d, violated %d; want 3, 3: %+v", all.Searched, len(all.Violated()), all.Indexes)
	}
}

// explain returns the plan of query, in a transaction with the duplicate
// search's settings when seqOnly is set.
func explain(t *testing.T, conn *pgx.Conn, query string, seqOnly bool) string {
	t.Helper()
	ctx := context.Background()
	var plan []string
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if seqOnly {
			if err := seqScanOnly(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return strings.Join(plan, "\n")
}
