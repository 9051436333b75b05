package pgcheck

import (
	"context"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// typesSchema has at-risk indexes whose key type is not text: a domain over
// a domain over text, citext and an array of a domain.
const typesSchema = `
CREATE EXTENSION citext;
CREATE DOMAIN dom_text AS text CHECK (VALUE <> '');
CREATE DOMAIN dom2 AS dom_text;
CREATE TABLE kinds (id int PRIMARY KEY, d dom2, ci citext, arr dom_text[]);
INSERT INTO kinds SELECT i, w, w, ARRAY[w, 'x'] FROM words;
CREATE INDEX kinds_d ON kinds (d);
CREATE INDEX kinds_ci ON kinds (ci);
CREATE INDEX kinds_arr ON kinds (arr);`

// TestCompareKeyTypes compares indexes on domains, citext and arrays in
// their real types: never skipped as "not text", an error (incomplete)
// where the new server lacks the type, and differs when the order changes.
func TestCompareKeyTypes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	old := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	old.CreateDatabase("app")
	if _, err := old.Connect("app").Exec(ctx, `CREATE TABLE words AS SELECT w, i::int FROM unnest($1::text[]) WITH ORDINALITY u(w, i)`,
		pgtest.Words()); err != nil {
		t.Fatal(err)
	}
	old.Exec("app", typesSchema)
	neu := pgtest.New(t, pgtest.WithVariant(pgtest.Current))

	compare := func(db string) (*CompareReport, map[string]IndexComparison) {
		t.Helper()
		rep, err := Compare(ctx, old.Connect("app"), neu.Connect(db), CompareOptions{Sample: 1000})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]IndexComparison{}
		for _, ix := range rep.Indexes {
			got[ix.Name] = ix
		}
		return rep, got
	}
	names := []string{"kinds_d", "kinds_ci", "kinds_arr"}

	// citext does not exist on the new server: that index cannot be
	// compared, and the report says so.
	rep, got := compare("postgres")
	if ix := got["kinds_ci"]; ix.Status != CompareError || !rep.Incomplete() {
		t.Errorf("citext missing on the new server: %+v, incomplete %v", ix, rep.Incomplete())
	}
	for _, name := range []string{"kinds_d", "kinds_arr"} {
		if ix := got[name]; ix.Status != CompareSame || ix.Columns[0].Keys != 1000 {
			t.Errorf("same locale: %s = %+v, want same with 1000 keys", name, ix)
		}
	}

	neu.Exec("postgres", "CREATE EXTENSION citext")
	rep, got = compare("postgres")
	for _, name := range names {
		if ix := got[name]; ix.Status != CompareSame {
			t.Errorf("same locale, citext installed: %s = %+v, want same", name, ix)
		}
	}
	if rep.Incomplete() || rep.Differs() {
		t.Errorf("same locale: incomplete %v, differs %v", rep.Incomplete(), rep.Differs())
	}

	neu.Restart(pgtest.CodePoint)
	_, got = compare("postgres")
	for _, name := range names {
		if ix := got[name]; ix.Status != CompareDiffers || ix.Columns[0].ChangedPairs == 0 {
			t.Errorf("code-point order: %s = %+v, want differs", name, ix)
		}
	}
}
