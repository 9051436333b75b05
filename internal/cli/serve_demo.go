package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/internal/demo"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// demoStore makes the demo's store: a SQLite file in a fresh temporary
// directory, never the user's own store, removed when serve ends. It returns
// the directory and the store's path.
func demoStore(cmd *ucli.Command) (string, string, error) {
	if cmd.IsSet("db") {
		return "", "", fmt.Errorf("--demo uses a throwaway store of its own: leave out --db (and RINGFENCE_DB)")
	}
	dir, err := os.MkdirTemp("", "ringfence-demo-")
	if err != nil {
		return "", "", fmt.Errorf("create the demo's directory: %w", err)
	}
	return dir, filepath.Join(dir, "ringfence-demo.db"), nil
}

// demoAdoptionInterval recounts adoption every 2 seconds in the demo, whose
// fleet is small, so the board shows new adoption at once; otherwise the
// server's default.
func demoAdoptionInterval(cmd *ucli.Command) time.Duration {
	if cmd.Bool("demo") {
		return 2 * time.Second
	}
	return 0
}

// startDemo creates the demo's login and API token, prints where to open
// the console, and seeds the demo product and runs its simulated fleet in
// the background until ctx ends; wait waits for that to stop.
func startDemo(ctx context.Context, store *sqlstore.Store, addr net.Addr, dbPath string, stdout io.Writer, log *slog.Logger) (wait func(), err error) {
	_, token, err := store.CreateToken(ctx, "demo", "demo-seeder", release.RoleAdmin)
	if err != nil {
		return nil, fmt.Errorf("demo: create its API token: %w", err)
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("demo: make a password: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := store.CreateUser(ctx, "demo", "demo", release.RoleAdmin, password); err != nil {
		return nil, fmt.Errorf("demo: create its user: %w", err)
	}
	if _, err := store.CreateUser(ctx, "demo", "viewer", release.RoleViewer, password); err != nil {
		return nil, fmt.Errorf("demo: create its user: %w", err)
	}
	// The demo's own clients reach the server where it listens; on every
	// interface, through loopback.
	tcp := addr.(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	local := "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
	fmt.Fprintf(stdout, "ringfence demo: a throwaway store at %s (deleted when the server stops)\n", dbPath)
	fmt.Fprintf(stdout, "  open   %s/admin/\n", local)
	fmt.Fprintf(stdout, "  status %s/ (the public status page, with the demo's open incident)\n", local)
	fmt.Fprintf(stdout, "  log in as demo (admin) or viewer (viewer), password %s\n", password)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		d, err := demo.Seed(ctx, demo.Config{Server: local, Token: token, Logger: log})
		if err != nil {
			if ctx.Err() == nil {
				log.Error("demo: seeding failed", slog.Any("err", err))
				fmt.Fprintf(stdout, "ringfence demo: seeding failed: %v\n", err)
			}
			return
		}
		fmt.Fprintf(stdout, "ringfence demo: product %s seeded in %s; its installations check in every few seconds\n",
			demo.Product, time.Since(start).Round(100*time.Millisecond))
		d.Run(ctx)
	}()
	return wg.Wait, nil
}
