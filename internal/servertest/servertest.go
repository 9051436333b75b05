// Package servertest runs the real ringfence server for tests of the
// packages around it (client, CLI, server): over real HTTP on :0, on a store
// the test chooses, stopped when the test ends.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// Server is one running server and what a test needs to talk to it.
type Server struct {
	// URL is the base URL of the HTTP server.
	URL string
	// Store is the server's store, open until the test ends.
	Store *sqlstore.Store
	// Srv is the server itself.
	Srv *server.Server
	// Admin is the secret of an admin API token named root (root-2, ...
	// for further servers on the same store).
	Admin string
}

// SQLite returns the path of a fresh SQLite file in the test's temporary
// directory, to pass to Start.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "ringfence.db")
}

// Start opens the store at dsn (a SQLite path or a PostgreSQL URL), runs a
// server with cfg on it (cfg.Store is filled in) over HTTP on :0, creates an
// admin token and waits until /readyz answers 200. Everything is stopped
// and closed when the test ends.
func Start(t testing.TB, dsn string, cfg server.Config) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		cancel()
		t.Fatalf("open store: %v", err)
	}
	cfg.Store = store
	if cfg.KeyEncryptionKey == nil {
		cfg.KeyEncryptionKey = KeyEncryptionKey(t)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		store.Close()
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		store.Close()
	})
	// Live token names are unique: servers sharing a store get root, root-2, ...
	_, admin, err := store.CreateToken(ctx, "test", "root", release.RoleAdmin)
	for n := 2; release.ErrorCode(err) == release.ECONFLICT && n < 100; n++ {
		_, admin, err = store.CreateToken(ctx, "test", fmt.Sprintf("root-%d", n), release.RoleAdmin)
	}
	if err != nil {
		t.Fatalf("create admin token: %v", err)
	}
	// Run is up once /readyz says so.
	Eventually(t, 5*time.Second, "server ready", func() bool {
		resp, err := http.Get(hs.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return &Server{URL: hs.URL, Store: store, Srv: srv, Admin: admin}
}

// KeyEncryptionKey returns the key-encryption key Start gives servers
// unless the test chooses one: the same for every test, so servers started
// one after the other on a store open its signing keys. It is a test
// constant, not a secret.
func KeyEncryptionKey(t testing.TB) *sign.KeyEncryptionKey {
	t.Helper()
	raw := sha256.Sum256([]byte("ringfence servertest key-encryption key"))
	kek, err := sign.NewKeyEncryptionKey(raw[:])
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// EventuallyFloor is the least time Eventually waits before it fails: on a
// loaded machine (CI runs packages side by side on two cores) a background
// loop can be descheduled for seconds, and a test that fails then says
// nothing about the code.
const EventuallyFloor = 30 * time.Second

// Eventually polls cond every 10ms and fails the test unless it holds in
// time; what names the condition in the failure. within is the time the
// condition is expected to hold in: the test waits for at least
// EventuallyFloor, and logs when the condition took longer than within.
// Timing targets are measured by benchmarks, never enforced here.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(max(within, EventuallyFloor))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took > within {
		t.Logf("%s: took %s, expected within %s (a loaded machine?)", what, took.Round(time.Millisecond), within)
	}
}

// RingStatus returns the standing of release version in ring among the
// releases of a product's status, failing the test if it is not there.
func RingStatus(t testing.TB, releases []release.ReleaseStatus, version, ring string) release.RingStatus {
	t.Helper()
	for _, r := range releases {
		if r.Version.String() != version {
			continue
		}
		for _, rs := range r.Rings {
			if rs.Ring == ring {
				return rs
			}
		}
	}
	t.Fatalf("no status of %s in ring %s among %+v", version, ring, releases)
	return release.RingStatus{}
}

// Buffer is a bytes.Buffer safe for concurrent use: a logger or a
// subprocess writes while the test reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitServing reads the JSON log lines of a `ringfence serve` process from
// stderr until the one that says it is serving and returns the server's
// base URL ("http://" and its address); the test fails when that line has
// not come within 30 seconds. It keeps draining stderr afterwards, so the
// process never blocks on a full pipe.
func WaitServing(t testing.TB, stderr io.Reader) string {
	t.Helper()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				select {
				case addr <- line.Addr:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("ringfence serve did not start")
	}
	return ""
}

// RawDB opens the store's database at dsn directly with database/sql, as
// another program would: the "pgx" driver for a postgres DSN, "sqlite" for
// a file, waiting for SQLite's lock as the store does (the server writes
// meanwhile). It is closed when the test ends.
func RawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	} else {
		dsn += "?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
