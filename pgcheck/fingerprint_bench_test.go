package pgcheck

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// benchTables is how many tables (two at-risk text indexes each) the
// fingerprint benchmark's catalog holds, beside one table of benchRows rows:
// the fingerprint's cost depends on the catalog, never on the data.
const (
	benchTables = 500
	benchRows   = 1000000
)

// BenchmarkFingerprint times what `pg fingerprint --record` and every
// `pg check` (compare with a baseline) do: read the inventory, sort the
// built-in corpus under every at-risk collation in use.
//
//	go test ./pgcheck -run '^$' -bench BenchmarkFingerprint -benchtime 20x
func BenchmarkFingerprint(b *testing.B) {
	ctx := context.Background()
	c := pgtest.New(b)
	c.CreateDatabase("bench")
	c.Exec("bench", fmt.Sprintf(`
		CREATE COLLATION de_icu (provider = icu, locale = 'de-DE');
		CREATE TABLE big (id bigint PRIMARY KEY, name text, title text COLLATE "en_US.utf8", nick text COLLATE de_icu);
		INSERT INTO big SELECT g, md5(g::text), 'title ' || g, 'nick ' || g FROM generate_series(1, %d) g;
		CREATE INDEX big_name ON big (name);
		CREATE INDEX big_title ON big (title);
		CREATE INDEX big_nick ON big (nick);
		DO $$ BEGIN
			FOR i IN 1..%d LOOP
				EXECUTE format('CREATE TABLE t%%s (id int PRIMARY KEY, a text UNIQUE, b text COLLATE "en_US.utf8")', i);
				EXECUTE format('CREATE INDEX ON t%%s (b)', i);
			END LOOP;
		END $$;
		ANALYZE;`, benchRows, benchTables))
	conn := c.Connect("bench")
	file := filepath.Join(b.TempDir(), "baseline.json")
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	base, err := NewBaseline(ctx, conn, inv)
	if err != nil {
		b.Fatal(err)
	}
	if err := WriteBaselineFile(file, base); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d objects, %d collations fingerprinted, %d strings each", len(inv.Objects),
		len(base.Fingerprints), len(base.Fingerprints[0].Order))

	b.Run("inventory", func(b *testing.B) {
		for b.Loop() {
			if _, err := ReadInventory(ctx, conn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		for b.Loop() {
			inv, err := ReadInventory(ctx, conn)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := NewBaseline(ctx, conn, inv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compare", func(b *testing.B) {
		for b.Loop() {
			findings, ok, err := CheckFingerprint(ctx, conn, file)
			if err != nil || !ok || len(findings) != 0 {
				b.Fatalf("findings %v ok %v err %v", findings, ok, err)
			}
		}
	})
}

// BenchmarkCompare100k times `pg compare` of two at-risk indexes with
// 100,000 distinct keys sampled each, from a server under the machine's
// en_US to one under code-point order (the Debian -> Alpine move).
//
//	go test ./pgcheck -run '^$' -bench BenchmarkCompare100k -benchtime 5x
func BenchmarkCompare100k(b *testing.B) {
	ctx := context.Background()
	old := pgtest.New(b)
	old.CreateDatabase("bench")
	old.Exec("bench", `
		CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE, name text COLLATE "en_US.utf8");
		INSERT INTO customers
		SELECT g, (ARRAY['user', 'User', 'USER'])[1 + g % 3] || g || '@example.com',
		       (ARRAY['Adam ', 'bob-', 'Zed ', 'émile ', 'co op ', 'O''Brien'])[1 + g % 6] || substr(md5(g::text), 1, 10)
		FROM generate_series(1, 300000) g;
		CREATE INDEX customers_name ON customers (name);
		ANALYZE;`)
	neu := pgtest.New(b, pgtest.WithVariant(pgtest.CodePoint))
	from, to := old.Connect("bench"), neu.Connect("postgres")
	for b.Loop() {
		rep, err := compareConns(ctx, from, to, CompareOptions{Sample: 100000})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Indexes) != 2 || !rep.Differs() {
			b.Fatalf("report %+v", rep.Indexes)
		}
		for _, ix := range rep.Indexes {
			if ix.Columns[0].Keys != 100000 {
				b.Fatalf("%s: %d keys sampled", ix.Name, ix.Columns[0].Keys)
			}
		}
	}
}
