package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestConnectLikePsql: a missing password is reported as the server's
// authentication error (not the refused TLS attempt before it), -W never
// reads a password from a non-terminal, and the connection can be given
// the way psql takes it: a database name, --host, -p, -U, -d, PGPASSWORD
// and a password file.
func TestConnectLikePsql(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t)
	c.Exec("postgres", `CREATE ROLE bob LOGIN PASSWORD 'secret' IN ROLE pg_read_all_data`)
	hba := filepath.Join(c.Dir, "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("host all bob 127.0.0.1/32 scram-sha-256\nlocal all bob scram-sha-256\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Exec("postgres", `SELECT pg_reload_conf()`)
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	port := strconv.Itoa(c.Port)

	// sslmode=prefer (the default): TLS is refused, then the login fails.
	url := fmt.Sprintf("postgres://bob@127.0.0.1:%d/postgres", c.Port)
	for _, extra := range [][]string{nil, {"-w"}} {
		args := append(append([]string{"pg", "inventory"}, extra...), url)
		code, _, stderr := run(t, ctx, args...)
		if code != cli.ExitError || !strings.Contains(stderr, `as "bob": FATAL: password authentication failed`) ||
			!strings.Contains(stderr, "no password was given") || strings.Contains(stderr, "tls error") {
			t.Errorf("%v: exit %d, stderr %q; want the authentication error first", args, code, stderr)
		}
	}
	code, _, stderr := run(t, ctx, "pg", "inventory", "-W", url)
	if code != cli.ExitError || !strings.Contains(stderr, "stdin is not one") {
		t.Errorf("-W without a terminal: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, ctx, "pg", "inventory", "-w", "-W", url)
	if code != cli.ExitError || !strings.Contains(stderr, "exclude each other") {
		t.Errorf("-w -W: exit %d, %q", code, stderr)
	}

	// psql's habits: a database name and flags, the password from PGPASSWORD ...
	t.Setenv("PGPASSWORD", "secret")
	code, stdout, stderr := run(t, ctx, "pg", "inventory", "--host", "127.0.0.1", "-p", port, "-U", "bob", "postgres")
	if code != cli.ExitOK || !strings.Contains(stdout, "postgres") {
		t.Fatalf("--host -p -U DBNAME: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = run(t, ctx, "pg", "inventory", "--host", "127.0.0.1", "-p", port, "-U", "bob", "-d", "postgres")
	if code != cli.ExitOK {
		t.Fatalf("-d: exit %d\n%s", code, stderr)
	}
	// ... or from a password file.
	t.Setenv("PGPASSWORD", "")
	pass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pass, []byte("127.0.0.1:"+port+":*:bob:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", pass)
	code, _, stderr = run(t, ctx, "pg", "inventory", "-w", "--host", "127.0.0.1", "-p", port, "-U", "bob", "postgres")
	if code != cli.ExitOK {
		t.Fatalf("password file: exit %d\n%s", code, stderr)
	}
	// A socket in a directory of one's own is matched by its path, as libpq does.
	if err := os.WriteFile(pass, []byte(c.Dir+":"+port+":*:bob:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, ctx, "pg", "inventory", "-w", "--host", c.Dir, "-p", port, "-U", "bob", "postgres")
	if code != cli.ExitOK {
		t.Fatalf("password file line for the socket directory: exit %d\n%s", code, stderr)
	}
	// -W on a terminal: the real program under script(1)'s pseudo-terminal
	// asks for the password, reads it from the terminal and connects. (The
	// pseudo-terminal echoes the typed-ahead input before the program turns
	// echo off, so the transcript cannot show the absence of echo.)
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	bin := filepath.Join(t.TempDir(), "ringfence")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ringfence")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	tty := exec.Command("script", "-qec", bin+" pg inventory -W --host 127.0.0.1 -p "+port+" -U bob postgres", "/dev/null")
	tty.Stdin = strings.NewReader("secret\n")
	out, err := tty.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Password for user bob:") || !strings.Contains(string(out), "COLLATION") {
		t.Fatalf("-W on a terminal: %v\n%s", err, out)
	}
	code, _, stderr = run(t, ctx, "pg", "inventory", "-U", "bob", url)
	if code != cli.ExitError || !strings.Contains(stderr, "not both") {
		t.Errorf("URL and -U: exit %d, %q", code, stderr)
	}
}
