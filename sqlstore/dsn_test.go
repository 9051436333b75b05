package sqlstore

import (
	"strings"
	"testing"
)

func TestClassifyDSN(t *testing.T) {
	for _, tc := range []struct {
		in      string
		dialect Dialect
		target  string
	}{
		{"postgres://rf@db/rfstore", Postgres, "postgres://rf@db/rfstore"},
		{"postgresql://rf@db:5433/rfstore?sslmode=require", Postgres, "postgresql://rf@db:5433/rfstore?sslmode=require"},
		{"host=db.internal dbname=rfstore user=rf", Postgres, "host=db.internal dbname=rfstore user=rf"},
		{"dbname=rfstore", Postgres, "dbname=rfstore"},
		{"ringfence.db", SQLite, "ringfence.db"},
		{"/var/lib/ringfence/ringfence.db", SQLite, "/var/lib/ringfence/ringfence.db"},
		{"sqlite:ringfence.db", SQLite, "ringfence.db"},
		{"sqlite:///var/lib/rf.db", SQLite, "/var/lib/rf.db"},
		{"sqlite:odd=name.db", SQLite, "odd=name.db"},
	} {
		d, target, err := ClassifyDSN(tc.in)
		if err != nil || d != tc.dialect || target != tc.target {
			t.Errorf("ClassifyDSN(%q) = %s, %q, %v; want %s, %q", tc.in, d, target, err, tc.dialect, tc.target)
		}
	}
	for in, want := range map[string]string{
		"":                    "empty store",
		"mysql://x@y/z":       `unknown scheme "mysql"`,
		"odd=name.db":         "ambiguous",
		"db.internal:5432/rf": "looks like a server address",
		"sqlite:":             "needs a file path",
	} {
		if _, _, err := ClassifyDSN(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ClassifyDSN(%q): %v, want an error mentioning %q", in, err, want)
		}
	}
}
