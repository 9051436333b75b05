package cli_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestStoreDSNIsNeverMistakenForAFile: a key=value PostgreSQL connection
// string is PostgreSQL for serve and admin token create (never a SQLite
// file named after it), and an ambiguous one is refused.
func TestStoreDSNIsNeverMistakenForAFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	const kv = "host=127.0.0.1 port=1 dbname=rfstore connect_timeout=2"
	for _, args := range [][]string{
		{"serve", "--db", kv, "--listen", "127.0.0.1:0"},
		{"admin", "token", "create", "--db", kv},
		{"admin", "token", "create", "--db", kv, "--init"},
	} {
		code, stdout, stderr := run(t, ctx, args...)
		if code != cli.ExitError || !strings.Contains(stderr, "postgres store") || strings.Contains(stderr, "sqlite") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 from the PostgreSQL store\n%s", strings.Join(args, " "), code, stderr, stdout)
		}
	}
	code, _, stderr := run(t, ctx, "serve", "--db", "rfstore=main", "--listen", "127.0.0.1:0")
	if code != cli.ExitError || !strings.Contains(stderr, "ambiguous") || !strings.Contains(stderr, "sqlite:PATH") {
		t.Errorf("ambiguous --db: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, ctx, "admin", "token", "create", "--db", "mysql://x@y/z", "--init")
	if code != cli.ExitError || !strings.Contains(stderr, `unknown scheme "mysql"`) {
		t.Errorf("mysql:// --db: exit %d, %q", code, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("files created from connection strings: %v", entries)
	}
	// sqlite:PATH is SQLite.
	code, stdout, stderr := run(t, ctx, "admin", "token", "create", "--db", "sqlite:"+filepath.Join(dir, "a=b.db"), "--init")
	if code != cli.ExitOK || !strings.HasPrefix(stdout, "rft_") {
		t.Fatalf("sqlite:PATH: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestServeListenMistakes: a bare port says to write :PORT, and a busy
// port fails before the store and signing key are created.
func TestServeListenMistakes(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "new.db")
	code, _, stderr := run(t, ctx, "serve", "--db", db, "--listen", "58111")
	if code != cli.ExitError || !strings.Contains(stderr, ":58111") {
		t.Errorf("--listen 58111: exit %d, %q", code, stderr)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, stderr = run(t, ctx, "serve", "--db", db, "--listen", busy.Addr().String())
	if code != cli.ExitError || !strings.Contains(stderr, "address already in use") {
		t.Errorf("busy port: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("a failed serve created the store %s: %v", db, err)
	}
	// Every serve flag has an environment variable.
	t.Setenv("RINGFENCE_LISTEN", "58112")
	code, _, stderr = run(t, ctx, "serve", "--db", db)
	if code != cli.ExitError || !strings.Contains(stderr, ":58112") {
		t.Errorf("RINGFENCE_LISTEN=58112: exit %d, %q", code, stderr)
	}
}
