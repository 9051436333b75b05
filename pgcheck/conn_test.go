package pgcheck

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPassfileHost is libpq's rule for the host field of the password file:
// "localhost" stands for TCP to localhost and for the default socket
// directory, and only for those.
func TestPassfileHost(t *testing.T) {
	for _, c := range []struct{ host, want string }{
		{"", "localhost"},
		{"localhost", "localhost"},
		{"db.example.com", "db.example.com"},
		{"/var/run/postgresql", "localhost"},
		{"/var/run/postgresql/", "/var/run/postgresql/"}, // libpq compares the path as written
		{"/tmp", "/tmp"},
		{"/srv/pg/sock", "/srv/pg/sock"},
	} {
		if got := passfileHost(c.host, "/var/run/postgresql"); got != c.want {
			t.Errorf("passfileHost(%q) = %q, want %q", c.host, got, c.want)
		}
	}
}

// TestOpenReadsPassfileLikeLibpq opens targets on Unix sockets with a
// password file holding a "localhost" line and a line per socket
// directory: each connection gets the password libpq would give it.
func TestOpenReadsPassfileLikeLibpq(t *testing.T) {
	def := defaultSocketDir()
	if def == "" {
		t.Fatal("none of the default socket directories exists here")
	}
	own := t.TempDir()
	pass := filepath.Join(t.TempDir(), "pgpass")
	lines := def + ":5432:*:app:default-dir-by-path\n" +
		"localhost:5432:*:app:local\n" +
		own + ":5432:*:app:own-dir\n"
	if err := os.WriteFile(pass, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", pass)
	t.Setenv("PGPASSWORD", "")
	for _, c := range []struct{ dsn, want string }{
		// The default directory is "localhost", never its path.
		{"host=" + def + " port=5432 user=app dbname=x", "local"},
		{"port=5432 user=app dbname=x", "local"},
		// Any other directory is its path, never "localhost".
		{"host=" + own + " port=5432 user=app dbname=x", "own-dir"},
		{"postgres://app@/x?host=" + own + "&port=5432", "own-dir"},
		{"host=" + own + "/ port=5432 user=app dbname=x", ""},
		{"host=" + t.TempDir() + " port=5432 user=app dbname=x", ""},
		// A password given explicitly wins.
		{"host=" + own + " port=5432 user=app dbname=x password=given", "given"},
		{"postgres://app:given@/x?host=" + own + "&port=5432", "given"},
		// TCP to localhost.
		{"host=localhost port=5432 user=app dbname=x", "local"},
	} {
		tg, err := Open(c.dsn, ConnOptions{})
		if err != nil {
			t.Fatalf("Open(%q): %v", c.dsn, err)
		}
		if got := tg.config.Password; got != c.want {
			t.Errorf("Open(%q): password %q, want %q", c.dsn, got, c.want)
		}
	}
	t.Setenv("PGPASSWORD", "from-env")
	if tg, err := Open("host="+own+" port=5432 user=app dbname=x", ConnOptions{}); err != nil || tg.config.Password != "from-env" {
		t.Errorf("PGPASSWORD: %v, password %q", err, tg.config.Password)
	}
}
