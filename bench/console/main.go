// Command console measures how fast the operators' console serves a
// product's releases board: it builds a store (a SQLite file in a temporary
// directory, or -db) with one product, 3 rings, 40 customers, 8 releases
// and N installations spread over them with varied health, starts the
// server in-process, logs in, and serves GET /admin/products/{product}
// through the server's handler repeatedly (session lookup, snapshot, rings,
// health counts and template: everything but the network), reporting the
// latency distribution. It also times the health recount the board caches
// for 5 seconds, the board's live-refresh request (304 when unchanged), and
// the first board request after a change (a pause or resume through the
// API), which builds and renders the board again.
//
//	go run ./bench/console -installations 10000 -requests 500
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

func main() {
	db := flag.String("db", "", "store: SQLite file or postgres:// URL (default: a SQLite file in a temporary directory)")
	installations := flag.Int("installations", 10_000, "installations")
	requests := flag.Int("requests", 500, "measured board requests")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured board requests to this file")
	flag.Parse()
	if err := run(*db, *installations, *requests, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		os.Exit(1)
	}
}

const product = "acme"

func run(dsn string, n, requests int, cpuprofile string) error {
	ctx := context.Background()
	if dsn == "" {
		dir, err := os.MkdirTemp("", "ringfence-bench-console-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = filepath.Join(dir, "bench.db")
	}
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	versions, err := seed(ctx, store, n)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	kek, err := sign.RandomKeyEncryptionKey(rand.Reader)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{Store: store, KeyEncryptionKey: kek})
	if err != nil {
		return err
	}
	h := srv.Handler()
	u, err := store.CreateUser(ctx, "bench", "bench", release.RoleAdmin, "bench password 1234")
	if err != nil {
		return err
	}
	secret, _, err := store.CreateSession(ctx, u.Identity(), time.Hour)
	if err != nil {
		return err
	}
	get := func(path, etag string) (int, int, time.Duration) {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: "ringfence_session", Value: secret})
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Len(), time.Since(start)
	}
	board := "/admin/products/" + product

	start := time.Now()
	if _, err := store.HealthCounts(ctx, time.Now().Add(-24*time.Hour)); err != nil {
		return err
	}
	recount := time.Since(start)
	code, size, cold := get(board, "")
	if code != http.StatusOK {
		return fmt.Errorf("board: status %d", code)
	}
	lat := make([]time.Duration, 0, requests)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start the CPU profile: %w", err)
		}
	}
	cpu0, err := cpuTime()
	if err != nil {
		return err
	}
	for range requests {
		code, _, d := get(board, "")
		if code != http.StatusOK {
			return fmt.Errorf("board: status %d", code)
		}
		lat = append(lat, d)
	}
	cpu1, err := cpuTime()
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	// The live refresh: the table alone, unchanged (304).
	req := httptest.NewRequest("GET", board+"?part=table", nil)
	req.AddCookie(&http.Cookie{Name: "ringfence_session", Value: secret})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	etag := rec.Header().Get("ETag")
	var poll []time.Duration
	for range requests {
		code, _, d := get(board+"?part=table", etag)
		if code != http.StatusNotModified && code != http.StatusOK {
			return fmt.Errorf("table: status %d", code)
		}
		poll = append(poll, d)
	}
	// After a change (a pause or resume through the API, which rebuilds
	// the snapshot) the board is built and rendered again: the cost every
	// request paid before the board was cached per snapshot.
	_, token, err := store.CreateToken(ctx, "bench", "bench-releaser", release.RoleReleaser)
	if err != nil {
		return err
	}
	changed := make([]time.Duration, 0, requests/10)
	for i := range cap(changed) {
		action := "/pause"
		if i%2 == 1 {
			action = "/resume"
		}
		req := httptest.NewRequest("POST", "/api/v1/products/"+product+"/releases/"+versions[0].String()+action, strings.NewReader(`{"reason":"bench"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%s: status %d: %s", action, rec.Code, rec.Body)
		}
		code, _, d := get(board, "")
		if code != http.StatusOK {
			return fmt.Errorf("board after a change: status %d", code)
		}
		changed = append(changed, d)
	}
	fmt.Printf("store %s, %d installations, %d releases x 3 rings, board %d bytes\n", store.Dialect(), n, len(versions), size)
	fmt.Printf("health recount (cached 5 s): %s; first board request (includes it): %s\n", recount.Round(10*time.Microsecond), cold.Round(10*time.Microsecond))
	report("board GET", lat)
	fmt.Printf("board GET CPU time (user+system, all goroutines, incl. background work): %s per request\n", ((cpu1 - cpu0) / time.Duration(requests)).Round(time.Microsecond))
	report("live refresh GET (304)", poll)
	report("board GET after a change", changed)
	return nil
}

// cpuTime is the process's user and system CPU time so far: unlike wall
// time, it does not grow when other processes compete for the cores.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// report prints the median, 95th and 99th percentile and maximum.
func report(what string, d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) time.Duration {
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(10 * time.Microsecond)
	}
	fmt.Printf("%-24s n=%d  p50 %s  p95 %s  p99 %s  max %s\n", what, len(d), q(0.5), q(0.95), q(0.99), d[len(d)-1].Round(10*time.Microsecond))
}

// seed creates the product, rings, customers and releases, and n
// installations spread over them (written as check-in records, as the
// server's writer writes them).
func seed(ctx context.Context, s *sqlstore.Store, n int) ([]release.Version, error) {
	if _, err := s.CreateProduct(ctx, "bench", release.Product{Name: product, Policy: release.DefaultPolicy()}); err != nil {
		return nil, err
	}
	rings := []string{"insiders", "early", "stable"}
	for i, r := range rings {
		if _, err := s.CreateRing(ctx, "bench", release.Ring{Product: product, Name: r, Position: i, SoakTime: time.Hour, RolloutPercent: 100, MinHealthy: 5}); err != nil {
			return nil, err
		}
	}
	var customers []string
	for i := range 40 {
		c := fmt.Sprintf("customer-%02d", i)
		if _, err := s.CreateCustomer(ctx, "bench", release.Customer{Product: product, Name: c, Ring: rings[i%3]}); err != nil {
			return nil, err
		}
		customers = append(customers, c)
	}
	var versions []release.Version
	for i := range 8 {
		v := release.MustParseVersion(fmt.Sprintf("3.%d.0", 20+i))
		if _, err := s.CreateRelease(ctx, "bench", release.Release{Product: product, Version: v}); err != nil {
			return nil, err
		}
		versions = append(versions, v)
	}
	healths := []release.HealthStatus{release.HealthOK, release.HealthOK, release.HealthOK, release.HealthOK, release.HealthOK,
		release.HealthOK, release.HealthOK, release.HealthCorrupt, release.HealthCollationChanged, release.HealthUnknown}
	now := time.Now().UTC()
	var batch []sqlstore.CheckInRecord
	for i := range n {
		batch = append(batch, sqlstore.CheckInRecord{Product: product, Customer: customers[i%len(customers)], InstanceID: fmt.Sprintf("inst-%06d", i),
			Version: versions[i%len(versions)], Health: &release.Health{Status: healths[i%len(healths)]}, ReceivedAt: now})
		if len(batch) == 1000 || i == n-1 {
			if err := s.RecordCheckIns(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	return versions, nil
}
