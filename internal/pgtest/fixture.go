package pgtest

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
)

// Words returns 3,000 distinct strings whose order differs between the
// locale variants: punctuation and spaces (glibc 2.28), case (code-point
// order), words starting with 'a' (the synthetic variant), accents and
// apostrophes. The list is the same on every call.
func Words() []string {
	words := []string{"ab", "a b", "a-b", "ma", "m b", "m-b", "mb", "Zebra", "zebra", "apple", "Apple",
		"banana", "Banana", "mango", "Mango", "co-op", "coop", "O'Brien", "OBrien", "o'brien",
		"résumé", "resume", "Straße", "strasse", "zoo", "Zoo", "a", "A", "b", "B", "z", "Z"}
	seen := map[string]bool{}
	for _, w := range words {
		seen[w] = true
	}
	return fillWords(words, seen, rand.New(rand.NewPCG(1, 2)), []rune("abmzABMZ -'é"), 6)
}

// fillWords appends to words strings of 2 to 1+spread runes drawn from
// letters by r, each one not in seen (and then added to it), until there
// are 3,000 of them, and returns them.
func fillWords(words []string, seen map[string]bool, r *rand.Rand, letters []rune, spread int) []string {
	for len(words) < 3000 {
		var b strings.Builder
		for range 2 + r.IntN(spread) {
			b.WriteRune(letters[r.IntN(len(letters))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}

// CollationFixture creates database db holding objects that a collation
// change breaks and objects it cannot break:
//   - words(id int PK, name text UNIQUE, name_c text COLLATE "C",
//     name_en text COLLATE "en_US.utf8", n int) with indexes words_name_c,
//     words_name_en, words_n, words_n_name_c and words_lower (lower(name));
//   - parts, range-partitioned on text at 'm b' (parts_lo, parts_hi);
//   - bounded(s text CHECK (s < 'm b'), i int CHECK (i < 100));
//   - ints(id bigint PK, x int) with index ints_x.
//
// Every text column holds Words(). amcheck is installed.
func CollationFixture(t testing.TB, c *Cluster, db string) {
	t.Helper()
	c.CreateDatabase(db)
	conn := c.Connect(db)
	if _, err := conn.Exec(context.Background(),
		`CREATE TABLE src AS SELECT w, i::int FROM unnest($1::text[]) WITH ORDINALITY u(w, i)`, Words()); err != nil {
		t.Fatal(err)
	}
	c.Exec(db, `
		CREATE EXTENSION amcheck;
		CREATE TABLE words (
			id int PRIMARY KEY,
			name text NOT NULL UNIQUE,
			name_c text COLLATE "C" NOT NULL,
			name_en text COLLATE "en_US.utf8",
			n int NOT NULL);
		INSERT INTO words SELECT i, w, w, w, i % 97 FROM src;
		CREATE INDEX words_name_c ON words (name_c);
		CREATE INDEX words_name_en ON words (name_en);
		CREATE INDEX words_n ON words (n);
		CREATE INDEX words_n_name_c ON words (n, name_c);
		CREATE INDEX words_lower ON words (lower(name));

		CREATE TABLE parts (k text NOT NULL, v int) PARTITION BY RANGE (k);
		CREATE TABLE parts_lo PARTITION OF parts FOR VALUES FROM (MINVALUE) TO ('m b');
		CREATE TABLE parts_hi PARTITION OF parts FOR VALUES FROM ('m b') TO (MAXVALUE);
		INSERT INTO parts SELECT w, 1 FROM src;

		CREATE TABLE bounded (s text CHECK (s < 'm b'), i int CHECK (i < 100));
		INSERT INTO bounded SELECT w, 1 FROM src WHERE w < 'm b';

		CREATE TABLE ints (id bigint PRIMARY KEY, x int);
		INSERT INTO ints SELECT g, g % 13 FROM generate_series(1, 5000) g;
		CREATE INDEX ints_x ON ints (x);
		DROP TABLE src;`)
	c.Exec(db, `VACUUM ANALYZE`)
}

// ICUWords returns 3,000 distinct strings whose ICU 60 (Unicode 10) and
// ICU 72 (Unicode 15) orders differ: ASCII next to characters that newer
// Unicode and CLDR versions added or re-weighted (emoji such as U+1FAE0,
// Cherokee, Adlam, Arabic Extended-A and -B letters). The list is the same
// on every call.
func ICUWords() []string {
	letters := []rune("abmzAB -\U0001FAE0\U0001FAE1\u13A0\uAB70\U0001E900\U0001E922\u08A0\u08B6\u0870")
	return fillWords(nil, map[string]bool{}, rand.New(rand.NewPCG(3, 4)), letters, 5)
}

// ICUFixture creates database db with amcheck and
// icu_words(id int PK, name text COLLATE "en-x-icu" UNIQUE
// (icu_words_name_key), updated_at timestamptz) holding ICUWords(), plus
// icu_words_name_c on name COLLATE "C", which no ICU change can break.
func ICUFixture(t testing.TB, c *Cluster, db string) {
	t.Helper()
	c.CreateDatabase(db)
	c.Exec(db, `
		CREATE EXTENSION amcheck;
		CREATE TABLE icu_words (
			id int PRIMARY KEY,
			name text COLLATE "en-x-icu" NOT NULL CONSTRAINT icu_words_name_key UNIQUE,
			updated_at timestamptz NOT NULL);
		CREATE INDEX icu_words_name_c ON icu_words ((name COLLATE "C"));`)
	if _, err := c.Connect(db).Exec(context.Background(), `INSERT INTO icu_words
		SELECT i, w, timestamptz '2024-01-01' + i * interval '1 minute' FROM unnest($1::text[]) WITH ORDINALITY u(w, i)`,
		ICUWords()); err != nil {
		t.Fatal(err)
	}
	c.Exec(db, `VACUUM ANALYZE`)
}
