package pgcheck

import (
	"context"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// compareSchema has indexes whose keys order differently in code-point
// order (capitals first, punctuation by byte) than in en_US, one on a safe
// collation, one on an ICU collation the new server lacks, and a
// multi-column index with an int column.
const compareSchema = `
CREATE COLLATION de_icu (provider = icu, locale = 'de-DE');
CREATE TABLE customers (id int PRIMARY KEY, name text CONSTRAINT customers_name_key UNIQUE,
	title text COLLATE "en_US.utf8", code text COLLATE "C", nick text COLLATE de_icu, region int);
CREATE INDEX customers_title ON customers (title);
CREATE INDEX customers_code ON customers (code);
CREATE INDEX customers_nick ON customers (nick);
CREATE INDEX customers_region_lower ON customers (region, lower(name));
INSERT INTO customers
SELECT g, n || ' ' || g, n, upper(n) || g, n, g % 7
FROM generate_series(1, 3000) g,
     LATERAL (SELECT (ARRAY['adam', 'Bob', 'co-op', 'coop', 'co op', 'O''Brien', 'obrien', 'Zed', 'émile', 'Eve'])[1 + g % 10] AS n) v;
CREATE TABLE events (k text, v int) PARTITION BY RANGE (k);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('m');
CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM ('m') TO (MAXVALUE);
INSERT INTO events SELECT name, id FROM customers;
CREATE TABLE tags (t text) PARTITION BY LIST (lower(t));
CREATE TABLE tags_a PARTITION OF tags FOR VALUES IN ('a');`

func TestCompareNamesIndexesThatWouldBreak(t *testing.T) {
	pgtest.ForEachVersion(t, testCompareNamesIndexesThatWouldBreak)
}

func testCompareNamesIndexesThatWouldBreak(t *testing.T, b pgtest.Build) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	old.CreateDatabase("app")
	old.Exec("app", compareSchema)
	// The new server is empty: only its collations matter.
	neu := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))

	compare := func() map[string]IndexComparison {
		t.Helper()
		rep, err := compareConns(ctx, old.Connect("app"), neu.Connect("postgres"), CompareOptions{Sample: 500})
		if err != nil {
			t.Fatal(err)
		}
		if rep.From.DefaultLocale != "en_US.UTF-8" || rep.To.Database != "postgres" || rep.Sample != 500 {
			t.Errorf("report header %+v %+v", rep.From, rep.To)
		}
		got := map[string]IndexComparison{}
		for _, ix := range rep.Indexes {
			got[ix.Name] = ix
		}
		if _, ok := got["customers_code"]; ok {
			t.Error("index on the C collation compared")
		}
		if _, ok := got["customers_pkey"]; ok {
			t.Error("index on an int compared")
		}
		if ix := got["customers_nick"]; ix.Status != CompareError || ix.Columns[0].Error == "" {
			t.Errorf("index on a collation missing on the new server: %+v", ix)
		}
		if !rep.Incomplete() {
			t.Error("report not incomplete despite a missing collation")
		}
		for _, pk := range rep.PartitionKeys {
			got["partition "+pk.Name] = pk
		}
		if pk := got["partition tags"]; pk.Status != CompareSkipped || len(pk.Columns) != 1 || pk.Columns[0].Error == "" {
			t.Errorf("expression partition key: %+v", pk)
		}
		return got
	}

	got := compare()
	for _, name := range []string{"customers_name_key", "customers_title", "customers_region_lower", "partition events"} {
		ix, ok := got[name]
		if !ok || ix.Status != CompareSame {
			t.Errorf("same locale: %s = %+v, want same", name, ix)
		}
	}
	if pk := got["partition events"]; pk.Type != ObjectPartitionKey || pk.Columns[0].Expression != "k" || pk.Columns[0].Keys != 500 {
		t.Errorf("partition key events: %+v", pk)
	}
	if ix := got["customers_name_key"]; ix.Type != ObjectUniqueConstraint || ix.Columns[0].Keys != 500 {
		t.Errorf("customers_name_key: type %s, %d keys, want unique_constraint with 500 keys", ix.Type, ix.Columns[0].Keys)
	}
	if cols := got["customers_region_lower"].Columns; len(cols) != 2 || cols[0].Status != CompareSkipped ||
		cols[1].Expression != "lower(name)" || cols[1].Keys != 500 {
		t.Errorf("multi-column index columns %+v", cols)
	}

	// Tables estimated above a million rows are read through TABLESAMPLE.
	for _, rows := range []float64{2e6, 1e12} {
		c := &comparer{from: old.Connect("app"), sample: 500}
		keys, err := c.sampleKeys(ctx, DependentObject{Schema: "public", Table: "customers"},
			keyColumn{expr: "name", relTuples: rows})
		if err != nil || len(keys) > 500 {
			t.Errorf("sample of a table of %g rows: %d keys, err %v", rows, len(keys), err)
		}
	}

	neu.Restart(pgtest.CodePoint)
	got = compare()
	for _, name := range []string{"customers_name_key", "customers_title", "customers_region_lower", "partition events"} {
		ix := got[name]
		if ix.Status != CompareDiffers {
			t.Errorf("code-point order: %s = %+v, want differs", name, ix)
			continue
		}
		var c ColumnComparison
		for _, col := range ix.Columns {
			if col.Status == CompareDiffers {
				c = col
			}
		}
		if c.ChangedPairs == 0 || len(c.Examples) == 0 || c.Examples[0].Was != relBefore || c.Examples[0].Now != relAfter {
			t.Errorf("%s: differing column %+v", name, c)
		}
	}
}
