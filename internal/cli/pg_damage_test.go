package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// relationFile returns the path of relation rel's main data file in c.
func relationFile(t *testing.T, c *pgtest.Cluster, db, rel string) string {
	t.Helper()
	var p string
	if err := c.Connect(db).QueryRow(context.Background(), `SELECT pg_relation_filepath($1::regclass)`, rel).Scan(&p); err != nil {
		t.Fatalf("file of %s: %v", rel, err)
	}
	return filepath.Join(c.Dir, "data", p)
}

// toastOf returns the schema-qualified name of table's TOAST table.
func toastOf(t *testing.T, c *pgtest.Cluster, db, table string) string {
	t.Helper()
	var name string
	if err := c.Connect(db).QueryRow(context.Background(),
		`SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = $1::regclass`, table).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestCheckReportsDamagedFiles damages relation files of a stopped cluster
// the way a disk or a careless restore does (a heap, matview, partition,
// TOAST or index file removed, an index metapage overwritten) and expects
// every damaged relation reported as a finding (exit 1) with the error in
// its detail, and nothing else reported.
func TestCheckReportsDamagedFiles(t *testing.T) {
	ctx := context.Background()
	c := appDB(t, `CREATE EXTENSION amcheck;
		CREATE TABLE gone_heap (id int PRIMARY KEY, s text);
		INSERT INTO gone_heap SELECT g, 'row ' || g FROM generate_series(1, 2000) g;
		CREATE TABLE parted (id int, s text) PARTITION BY RANGE (id);
		CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
		CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (1000) TO (3000);
		INSERT INTO parted SELECT g, 'p ' || g FROM generate_series(1, 2000) g;
		CREATE MATERIALIZED VIEW mv AS SELECT g AS id FROM generate_series(1, 2000) g;
		CREATE TABLE toasty (id int PRIMARY KEY, big text);
		ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;
		INSERT INTO toasty SELECT g, repeat(md5(g::text), 400) FROM generate_series(1, 50) g;
		CREATE TABLE idx_gone (id int, s text);
		CREATE INDEX idx_gone_s ON idx_gone (s);
		INSERT INTO idx_gone SELECT g, 'v' || g FROM generate_series(1, 2000) g;
		CREATE TABLE idx_meta (id int, s text);
		CREATE INDEX idx_meta_s ON idx_meta (s);
		INSERT INTO idx_meta SELECT g, 'v' || g FROM generate_series(1, 2000) g;
		CREATE TABLE intact (id int PRIMARY KEY, s text);
		CREATE INDEX intact_s ON intact (s);
		INSERT INTO intact SELECT g, 'v' || g FROM generate_series(1, 2000) g;
		CHECKPOINT;`)
	// Clean before the damage.
	if code, out, errOut := run(t, ctx, "pg", "check", "-q", "--heap", c.DSN("app")); code != cli.ExitOK {
		t.Fatalf("before the damage: exit %d\n%s\n%s", code, out, errOut)
	}
	remove := []string{
		relationFile(t, c, "app", "gone_heap"),
		relationFile(t, c, "app", "parted_2"),
		relationFile(t, c, "app", "mv"),
		relationFile(t, c, "app", toastOf(t, c, "app", "toasty")),
		relationFile(t, c, "app", "idx_gone_s"),
	}
	meta := relationFile(t, c, "app", "idx_meta_s")
	c.Stop()
	for _, f := range remove {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(meta, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xa5", 8192)), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c.Start(pgtest.Current)

	code, stdout, stderr := run(t, ctx, "pg", "check", "-q", "--heap", "--json", "-j", "2", c.DSN("app"))
	if code != cli.ExitFindings {
		t.Fatalf("damaged database: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	rep := parseCheck(t, stdout)
	found := map[string]string{}
	for _, f := range rep.Findings {
		found[f.Kind+" "+f.Object] = f.Detail
	}
	toast := toastOf(t, c, "app", "toasty")
	toastName := toast[strings.LastIndex(toast, ".")+1:]
	for _, want := range []struct{ key, detail string }{
		{"heap_corrupt gone_heap", "could not open file"},
		{"heap_corrupt parted_2", "could not open file"},
		{"heap_corrupt mv", "could not open file"},
		{"heap_corrupt " + toastName, "could not open file"},
		{"heap_corrupt toasty", "could not open file"},
		{"index_corrupt idx_gone_s", "lacks a main relation fork"},
		{"index_corrupt idx_meta_s", ""},
	} {
		d, ok := found[want.key]
		if !ok {
			t.Errorf("no %s finding; findings:\n%s", want.key, stdout)
			continue
		}
		if !strings.Contains(d, want.detail) {
			t.Errorf("%s: detail %q lacks %q", want.key, d, want.detail)
		}
	}
	for k := range found {
		if strings.Contains(k, "intact") {
			t.Errorf("intact relation reported: %s: %s", k, found[k])
		}
	}
	if strings.Contains(stdout, `"error": true`) {
		t.Errorf("damage reported as not checked instead of as findings:\n%s", stdout)
	}

	// The readable report says the same, and still exits 1.
	code, stdout, _ = run(t, ctx, "pg", "check", "-q", "--heap", c.DSN("app"))
	if code != cli.ExitFindings || !strings.Contains(stdout, "could not open file") || strings.Contains(stdout, "NOT CHECKED") {
		t.Fatalf("readable report: exit %d\n%s", code, stdout)
	}
}
