package cli_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/servertest"
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

// TestServeLogsAsAsked: --log-format text and --log-level from flags or
// RINGFENCE_* variables, and one access-log line per request.
func TestServeLogsAsAsked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "rf.db")
	code, _, stderr := run(t, context.Background(), "serve", "--db", db, "--log-level", "loud")
	if code != cli.ExitError || !strings.Contains(stderr, "--log-level") {
		t.Fatalf("--log-level loud: exit %d, %q", code, stderr)
	}
	t.Setenv("RINGFENCE_LOG_FORMAT", "text")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &servertest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"ringfence", "serve", "--db", db, "--listen", "127.0.0.1:0"}, io.Discard, logs)
	}()
	addr := regexp.MustCompile(`msg=serving addr=(\S+)`)
	var m []string
	servertest.Eventually(t, 20*time.Second, "serve logs its address as text", func() bool {
		m = addr.FindStringSubmatch(logs.String())
		return m != nil
	})
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	servertest.Eventually(t, 10*time.Second, "an access-log line", func() bool {
		return strings.Contains(logs.String(), "msg=request method=GET path=/healthz status=200")
	})
	cancel()
	if code := <-done; code != cli.ExitOK {
		t.Fatalf("serve exited %d: %s", code, logs.String())
	}
}
