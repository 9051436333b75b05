package pgcheck

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// inventorySchema has one object of every collation-dependent kind, safe
// ones (C, POSIX, ucs_basic) that must be listed but not at risk, and
// objects that must not be listed at all.
const inventorySchema = `
CREATE SCHEMA inv;
CREATE EXTENSION citext;
SET search_path = inv, public;
CREATE COLLATION inv.de_icu (provider = icu, locale = 'de-DE');
CREATE COLLATION inv.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE people (
	id int PRIMARY KEY,
	email text CONSTRAINT people_email_key UNIQUE,
	name text,
	code text COLLATE "C",
	tag text COLLATE "ucs_basic",
	pos text COLLATE "POSIX",
	title text COLLATE "en_US.utf8",
	nick text COLLATE inv.de_icu,
	status text,
	age int,
	CONSTRAINT people_name_check CHECK (name < 'zzz'),
	CONSTRAINT people_status_check CHECK (status IN ('a', 'b')),
	CONSTRAINT people_len_check CHECK (length(name) < 100),
	CONSTRAINT people_age_check CHECK (age > 0),
	CONSTRAINT people_ci_check CHECK (status <> 'X' COLLATE inv.ci)
);
CREATE INDEX people_name ON people (name);
CREATE INDEX people_code ON people (code);
CREATE INDEX people_tag ON people (tag);
CREATE INDEX people_pos ON people (pos);
CREATE INDEX people_title ON people (title);
CREATE INDEX people_nick ON people (nick);
CREATE INDEX people_lower_name ON people (lower(name));
CREATE INDEX people_age_partial ON people (age) WHERE name > 'm';
CREATE INDEX people_age_collate ON people (age) WHERE code COLLATE "en_US.utf8" > 'x';
CREATE INDEX people_age_eq ON people (age) WHERE status = 'a';
CREATE INDEX people_age_row ON people (age) WHERE (name, code) < ('m', 'x');
CREATE INDEX people_age ON people (age);
CREATE INDEX people_name_hash ON people USING hash (name);
CREATE INDEX people_name_like ON people (name text_pattern_ops);
CREATE INDEX people_title_like ON people (age, title varchar_pattern_ops);
CREATE TABLE orders (id int PRIMARY KEY, email text CONSTRAINT orders_email_fkey REFERENCES people (email),
	person int CONSTRAINT orders_person_fkey REFERENCES people (id));
CREATE TABLE skus (sku text CONSTRAINT skus_pkey PRIMARY KEY);
CREATE TABLE codes (code text COLLATE "C" CONSTRAINT codes_pkey PRIMARY KEY);
CREATE TABLE rooms (room text, CONSTRAINT rooms_excl EXCLUDE USING btree (room WITH =));
CREATE TABLE events (k text, v int) PARTITION BY RANGE (k);
CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('a') TO ('m');
CREATE TABLE events_m PARTITION OF events FOR VALUES FROM ('m') TO (MAXVALUE);
CREATE TABLE events_c (k text COLLATE "C") PARTITION BY LIST (k);
CREATE TABLE events_c1 PARTITION OF events_c FOR VALUES IN ('x');
CREATE TABLE hashed (k text) PARTITION BY HASH (k);
CREATE TABLE hashed_ci (k text COLLATE ci) PARTITION BY HASH (k);
CREATE TABLE byint (n int) PARTITION BY RANGE (n);
INSERT INTO people SELECT g, 'p' || g || '@example.com', 'name ' || g, 'c' || g, 't', 'p', 'T', 'n', 'a', 30
	FROM generate_series(1, 100) g;
INSERT INTO events VALUES ('apple', 1), ('zebra', 2);
CREATE TYPE pair AS (a text, b int);
CREATE TYPE cpair AS (a text COLLATE "C", b int);
CREATE TYPE textrange AS RANGE (subtype = text);
CREATE TABLE typed (p pair, c cpair, r textrange, ps pair[], n int);
CREATE INDEX typed_p ON typed (p);
CREATE INDEX typed_c ON typed (c);
CREATE INDEX typed_r ON typed USING gist (r);
CREATE INDEX typed_ps ON typed (ps);
CREATE INDEX typed_p_hash ON typed USING hash (p);
CREATE DOMAIN code_dom AS text CONSTRAINT code_dom_check CHECK (VALUE < 'zzz');
CREATE DOMAIN code_dom2 AS code_dom;
CREATE DOMAIN eq_dom AS text CONSTRAINT eq_dom_check CHECK (VALUE <> 'x');
CREATE DOMAIN en_dom AS text COLLATE "en_US.utf8";
CREATE TABLE domained (c code_dom2, cs code_dom[], e eq_dom, en en_dom);
CREATE INDEX domained_en ON domained (en);
ALTER TABLE people ADD CONSTRAINT people_row_check CHECK ((name, status) < ('zzz', 'z'));
CREATE TABLE cis (k citext CONSTRAINT cis_eq_check CHECK (k <> 'x'), t text CONSTRAINT cis_t_check CHECK (t <> 'x'));
CREATE COLLATION c_en (provider = libc, lc_collate = 'C', lc_ctype = 'en_US.UTF-8');
CREATE TABLE ct (x text COLLATE c_en);
CREATE INDEX ct_x ON ct (x);
CREATE INDEX ct_lower ON ct (lower(x));
CREATE INDEX ct_re ON ct (x) WHERE x ~* 'a';
CREATE INDEX ct_lower_c ON ct (lower(x COLLATE "C"));
CREATE TABLE arrs (a text[], ac text[] COLLATE "C");
CREATE INDEX arrs_a ON arrs (a);
CREATE INDEX arrs_ac ON arrs (ac);
CREATE TABLE cict (k citext COLLATE c_en);
CREATE INDEX cict_k ON cict (k);
CREATE TABLE exprpart (k text) PARTITION BY RANGE (lower(k));
CREATE TABLE fk_parent (k text COLLATE "en_US.utf8" PRIMARY KEY);
CREATE TABLE fk_child (k text COLLATE "C" CONSTRAINT fk_child_k_fkey REFERENCES fk_parent);
CREATE MATERIALIZED VIEW mv AS SELECT name FROM people;
CREATE INDEX mv_name ON mv (name);
ANALYZE;
`

func TestInventoryFindsEveryKind(t *testing.T) { pgtest.ForEachVersion(t, testInventoryFindsEveryKind) }

func testInventoryFindsEveryKind(t *testing.T, b pgtest.Build) {
	c := pgtest.New(t, pgtest.WithBuild(b))
	c.CreateDatabase("inv")
	c.Exec("inv", inventorySchema)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv, err := ReadInventory(ctx, c.Connect("inv"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Database != "inv" || inv.ServerVersionNum < 120000 || inv.InRecovery {
		t.Errorf("server: database %q version %d recovery %v", inv.Database, inv.ServerVersionNum, inv.InRecovery)
	}
	d := inv.DefaultCollation
	if !d.IsDefault || d.Name != "default" || d.Locale != "en_US.UTF-8" || d.Provider != "libc" || !d.AtRisk {
		t.Errorf("default collation = %+v", d)
	}

	type want struct {
		typ        string
		atRisk     bool
		unique     bool
		collations []string
	}
	wants := map[string]want{
		"people_email_key":   {ObjectUniqueConstraint, true, true, []string{"default"}},
		"people_name_check":  {ObjectCheckConstraint, true, false, []string{"default"}},
		"people_ci_check":    {ObjectCheckConstraint, true, false, []string{"inv.ci"}},
		"people_name":        {ObjectIndex, true, false, []string{"default"}},
		"people_code":        {ObjectIndex, false, false, []string{"C"}},
		"people_tag":         {ObjectIndex, false, false, []string{"ucs_basic"}},
		"people_pos":         {ObjectIndex, false, false, []string{"POSIX"}},
		"people_title":       {ObjectIndex, true, false, []string{"public.en_US.utf8"}},
		"people_nick":        {ObjectIndex, true, false, []string{"inv.de_icu"}},
		"people_lower_name":  {ObjectIndex, true, false, []string{"default"}},
		"people_age_partial": {ObjectIndex, true, false, []string{"default"}},
		"people_age_collate": {ObjectIndex, true, false, []string{"public.en_US.utf8"}},
		"people_age_row":     {ObjectIndex, true, false, []string{"C", "default"}},
		"orders_email_fkey":  {ObjectForeignKey, true, false, []string{"default"}},
		"skus_pkey":          {ObjectPrimaryKey, true, true, []string{"default"}},
		"codes_pkey":         {ObjectPrimaryKey, false, true, []string{"C"}},
		"rooms_excl":         {ObjectExclusionConstraint, true, false, []string{"default"}},
		"events":             {ObjectPartitionKey, true, false, []string{"default"}},
		"events_c":           {ObjectPartitionKey, false, false, []string{"C"}},
		"hashed_ci":          {ObjectPartitionKey, true, false, []string{"inv.ci"}},
		"mv_name":            {ObjectMatviewIndex, true, false, []string{"default"}},
		// Composite and range types compare with their attributes' and
		// subtypes' collations.
		// Domain CHECK constraints apply to the tables using the domain.
		"code_dom_check":   {ObjectCheckConstraint, true, false, []string{"default"}},
		"domained_en":      {ObjectIndex, true, false, []string{"public.en_US.utf8"}},
		"people_row_check": {ObjectCheckConstraint, true, false, []string{"default"}},
		// citext's <> lowercases: not byte equality, unlike text's.
		"cis_eq_check": {ObjectCheckConstraint, true, false, []string{"default"}},
		// LC_COLLATE C orders bytes; its LC_CTYPE en_US still drives
		// lower() and regular expressions.
		"ct_x":       {ObjectIndex, false, false, []string{"inv.c_en"}},
		"ct_lower":   {ObjectIndex, true, false, []string{"inv.c_en"}},
		"ct_re":      {ObjectIndex, true, false, []string{"inv.c_en"}},
		"ct_lower_c": {ObjectIndex, false, false, []string{"C"}},
		// citext compares lower() of its values: the ctype counts.
		"cict_k":          {ObjectIndex, true, false, []string{"inv.c_en"}},
		"arrs_a":          {ObjectIndex, true, false, []string{"default"}},
		"arrs_ac":         {ObjectIndex, false, false, []string{"C"}},
		"exprpart":        {ObjectPartitionKey, true, false, []string{"default"}},
		"fk_child_k_fkey": {ObjectForeignKey, true, false, []string{"C", "public.en_US.utf8"}},
		"typed_p":         {ObjectIndex, true, false, []string{"default"}},
		"typed_c":         {ObjectIndex, false, false, []string{"C"}},
		"typed_r":         {ObjectIndex, true, false, []string{"default"}},
		"typed_ps":        {ObjectIndex, true, false, []string{"default"}},
	}
	// Not collation-dependent: ints, equality on a deterministic collation,
	// length(), hash indexes and hash partitioning.
	absent := []string{"people_pkey", "people_status_check", "people_len_check", "people_age_check",
		"people_age_eq", "people_age", "people_name_hash", "people_name_like", "people_title_like", "orders_pkey", "orders_person_fkey", "hashed", "byint",
		"typed_p_hash", "eq_dom_check", "cis_t_check"}

	got := map[string]DependentObject{}
	for _, o := range inv.Objects {
		if o.Schema == "pg_catalog" || o.Schema == "information_schema" {
			t.Errorf("system object listed: %+v", o)
		}
		if o.Schema != "inv" {
			continue
		}
		if _, dup := got[o.Name]; dup && o.Type != ObjectIndex {
			t.Errorf("%s listed twice", o.Name)
		}
		got[o.Name] = o
	}
	for name, w := range wants {
		o, ok := got[name]
		if !ok {
			t.Errorf("%s (%s) not listed", name, w.typ)
			continue
		}
		if o.Type != w.typ || o.AtRisk != w.atRisk || o.Unique != w.unique || !slices.Equal(o.Collations, w.collations) {
			t.Errorf("%s = type %s at_risk %v unique %v collations %v; want %s %v %v %v",
				name, o.Type, o.AtRisk, o.Unique, o.Collations, w.typ, w.atRisk, w.unique, w.collations)
		}
		if !o.Valid {
			t.Errorf("%s not valid", name)
		}
		if o.Type != ObjectPartitionKey && o.Type != ObjectForeignKey && o.Type != ObjectCheckConstraint && o.Bytes <= 0 {
			t.Errorf("%s: size %d", name, o.Bytes)
		}
	}
	if got["events"].Bytes <= 0 || got["people_name_check"].Bytes <= 0 {
		t.Errorf("partition key size %d, check constraint table size %d", got["events"].Bytes, got["people_name_check"].Bytes)
	}
	if o := got["code_dom_check"]; o.Table != "domained" {
		t.Errorf("domain CHECK listed on table %q, want domained", o.Table)
	}
	for _, name := range absent {
		if o, ok := got[name]; ok {
			t.Errorf("%s listed but depends on no collation: %+v", name, o)
		}
	}

	colls := map[string]CollationInfo{}
	for _, c := range inv.Collations {
		colls[c.Name] = c
	}
	for name, atRisk := range map[string]bool{"default": true, "C": false, "POSIX": false, "ucs_basic": false,
		"public.en_US.utf8": true, "inv.de_icu": true, "inv.ci": true} {
		c, ok := colls[name]
		if !ok {
			t.Errorf("collation %s not listed", name)
			continue
		}
		if c.AtRisk != atRisk {
			t.Errorf("collation %s at_risk %v, want %v", name, c.AtRisk, atRisk)
		}
	}
	if c := colls["public.en_US.utf8"]; c.Provider != "libc" || c.RecordedVersion == "" || c.ActualVersion != c.RecordedVersion {
		t.Errorf("en_US.utf8 = %+v: want libc with equal recorded and actual versions", c)
	}
	if c := colls["inv.de_icu"]; c.Provider != "icu" || c.Locale != "de-DE" || c.Schema != "inv" {
		t.Errorf("inv.de_icu = %+v", c)
	}
	if c := colls["inv.c_en"]; c.AtRisk || !c.CtypeAtRisk || c.Locale != "C/en_US.UTF-8" {
		t.Errorf("inv.c_en = %+v: want order safe, ctype at risk", c)
	}
	if c := colls["inv.ci"]; c.Deterministic {
		t.Errorf("inv.ci deterministic")
	}
	if m := VersionMismatches(inv); len(m) != 0 {
		t.Errorf("fresh cluster has version mismatches: %+v", m)
	}

	// The inventory takes no relation locks: it completes while another
	// session holds ACCESS EXCLUSIVE on a table and a partition.
	locker := c.Connect("inv")
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE inv.people, inv.events_a IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	blocked := c.Connect("inv")
	if _, err := blocked.Exec(ctx, `SET lock_timeout = '200ms'`); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInventory(ctx, blocked); err != nil {
		t.Errorf("inventory behind an ACCESS EXCLUSIVE lock: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// PostgreSQL's own check: a recorded version that differs from the
	// library's is reported with the objects at risk.
	c.Exec("inv", `UPDATE pg_collation SET collversion = '1.0' WHERE collname = 'en_US.utf8'`)
	inv, err = ReadInventory(ctx, c.Connect("inv"))
	if err != nil {
		t.Fatal(err)
	}
	m := VersionMismatches(inv)
	if len(m) != 1 || m[0].Kind != KindCollationVersionMismatch || m[0].Collation != "public.en_US.utf8" ||
		!strings.Contains(m[0].Detail, "1.0") {
		t.Fatalf("version mismatches = %+v", m)
	}
	var names []string
	for _, r := range m[0].AtRisk {
		names = append(names, r.Object)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"domained_en", "fk_child_k_fkey", "fk_parent_pkey", "people_age_collate", "people_title"}) {
		t.Errorf("at risk = %v", names)
	}

	checkICUFingerprints(t, c)
}

func TestParseNodeTree(t *testing.T) {
	cases := []struct {
		tree string
		want []collationUse
	}{
		{`{OPEXPR :opno 666 :opfuncid 742 :opresulttype 16 :opretset false :opcollid 0 :inputcollid 100 :args ({VAR :varno 1 :varattno 2 :vartype 25 :vartypmod -1 :varcollid 100 :varlevelsup 0 :varnosyn 1 :varattnosyn 2 :location 242} {CONST :consttype 25 :consttypmod -1 :constcollid 100 :constlen -1 :constbyval false :constisnull false :location 246 :constvalue 5 [ 20 0 0 0 109 ]}) :location 244}`,
			[]collationUse{{node: "OPEXPR", opno: 666, coll: 100}}},
		{`{OPEXPR :opno 521 :opfuncid 147 :opresulttype 16 :opretset false :opcollid 0 :inputcollid 0 :args ({FUNCEXPR :funcid 1317 :funcresulttype 23 :funcretset false :funcvariadic false :funcformat 0 :funccollid 0 :inputcollid 16384 :args ({VAR :varno 1 :varattno 2 :vartype 25 :vartypmod -1 :varcollid 100 :varlevelsup 0 :varnosyn 1 :varattnosyn 2 :location 198}) :location 191} {CONST :consttype 23 :consttypmod -1 :constcollid 0 :constlen 4 :constbyval true :constisnull false :location 203 :constvalue 4 [ 0 0 0 0 0 0 0 0 ]}) :location 201}`,
			[]collationUse{{node: "FUNCEXPR", funcn: 1317, coll: 16384}}},
		{`{ROWCOMPAREEXPR :rctype 1 :opnos (o 664 664) :opfamilies (o 1994 1994) :inputcollids (o 100 950) :largs ({VAR :varno 1 :varattno 1 :vartype 25 :vartypmod -1 :varcollid 100 :varlevelsup 0 :varnosyn 1 :varattnosyn 1 :location 67}) :rargs ()}`,
			[]collationUse{{node: "ROWCOMPAREEXPR", coll: 100}, {node: "ROWCOMPAREEXPR", coll: 950}}},
		{"", nil},
		{"({VAR :varno 1 :varattno 2 :vartype 23 :vartypmod -1 :varcollid 0})", nil},
	}
	for _, c := range cases {
		if got := parseNodeTree(c.tree); !slices.Equal(got, c.want) {
			t.Errorf("parseNodeTree(%.40q) = %+v, want %+v", c.tree, got, c.want)
		}
	}
}
