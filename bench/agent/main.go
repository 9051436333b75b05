// Command agent measures what `ringfence agent run` costs an installation:
// its resident memory and CPU while idle between check-ins, and the cost of
// one check-in — alone, and with the collation fingerprint of a database
// with 1,000 collation-dependent indexes.
//
// It runs a ringfence server in-process on a SQLite file, builds the
// ringfence binary, and starts `agent run` as a separate process whose
// /proc/PID/stat and /proc/PID/status it samples. With -pg (a superuser
// DSN) it creates database agentbench with the indexes and measures the
// check-ins that fingerprint it.
//
//	go run ./bench/agent -idle 2m -checkins 60 -pg 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat times.
const clockTicks = 100

type options struct {
	idle     time.Duration
	checkins int
	busy     time.Duration
	pg       string
	indexes  int
}

func main() {
	var o options
	flag.DurationVar(&o.idle, "idle", 2*time.Minute, "how long to sample an idle agent between check-ins (interval 5m)")
	flag.IntVar(&o.checkins, "checkins", 60, "in-process check-ins to time with the fingerprint")
	flag.DurationVar(&o.busy, "busy", 30*time.Second, "how long to run an agent checking in every 100-200 ms per configuration")
	flag.StringVar(&o.pg, "pg", "", "superuser DSN of a PostgreSQL server to create database agentbench on (omit to skip the database part)")
	flag.IntVar(&o.indexes, "indexes", 1000, "collation-dependent indexes in agentbench")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "ringfence-agent-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "ringfence")
	if b, err := exec.Command("go", "build", "-o", bin, "./cmd/ringfence").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	url, admin, stop, err := startServer(ctx, filepath.Join(tmp, "ringfence.db"))
	if err != nil {
		return err
	}
	defer stop()
	c, err := client.New(url, admin)
	if err != nil {
		return err
	}
	if _, err := c.CreateProduct(ctx, client.NewProduct{Name: "acme"}); err != nil {
		return err
	}
	if _, err := c.CreateRing(ctx, "acme", release.Ring{Name: "all", RolloutPercent: 100}); err != nil {
		return err
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := c.CreateRelease(ctx, "acme", client.NewRelease{Version: release.MustParseVersion(v)}); err != nil {
			return err
		}
	}
	if _, err := c.CreateCustomer(ctx, "acme", "bench", "all"); err != nil {
		return err
	}
	key, err := c.CreateEnrollmentKey(ctx, "acme", "bench")
	if err != nil {
		return err
	}
	keys, err := c.PublicKeys(ctx)
	if err != nil {
		return err
	}
	trust := filepath.Join(tmp, "trust.json")
	data, _ := json.Marshal(map[string]any{"keys": keys})
	if err := os.WriteFile(trust, data, 0o600); err != nil {
		return err
	}
	keyFile := filepath.Join(tmp, "key")
	if err := os.WriteFile(keyFile, []byte(key.Key), 0o600); err != nil {
		return err
	}
	base := []string{"agent", "run", "--server", url, "--key-file", keyFile, "--product", "acme", "--version", "1.0.0",
		"--trust", trust, "--deep-check", "off"}

	fmt.Fprintf(out, "GOMAXPROCS default, %d cores; load average %s\n", numCPU(), loadavg())

	// Idle: interval 5m, so after the first check-in nothing happens for
	// at least 2.5 minutes.
	idle, err := measure(ctx, bin, append(slices.Clone(base), "--state", filepath.Join(tmp, "idle"), "--interval", "5m"), filepath.Join(tmp, "idle"), o.idle)
	if err != nil {
		return err
	}
	if idle.checkins != 0 {
		return fmt.Errorf("the idle agent checked in %d times while measured", idle.checkins)
	}
	fmt.Fprintf(out, "idle agent (interval 5m) over %s: RSS %.1f MiB (max %.1f MiB), CPU %.4f%% of one core (%d ticks)\n",
		o.idle, idle.rssMiB, idle.maxRSSMiB, idle.cpuPercent, idle.ticks)

	configs := []struct {
		name string
		args []string
	}{{"no database", nil}}
	if o.pg != "" {
		dsn, err := prepareDatabase(ctx, o.pg, o.indexes)
		if err != nil {
			return err
		}
		configs = append(configs, struct {
			name string
			args []string
		}{fmt.Sprintf("fingerprint of a database with %d collation-dependent indexes", o.indexes), []string{"--pg", dsn}})
		// The in-process wall time of one check-in with the fingerprint.
		wall, err := timeCheckIns(ctx, url, key.Key, trust, filepath.Join(tmp, "inproc"), dsn, o.checkins)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "one check-in with the fingerprint (in-process, %d runs): median %s, p90 %s, max %s\n",
			len(wall), wall[len(wall)/2].Round(100*time.Microsecond), wall[len(wall)*9/10].Round(100*time.Microsecond), wall[len(wall)-1].Round(100*time.Microsecond))
	}
	for i, cfg := range configs {
		state := filepath.Join(tmp, "busy"+strconv.Itoa(i))
		args := append(append(slices.Clone(base), "--state", state, "--interval", "200ms"), cfg.args...)
		busy, err := measure(ctx, bin, args, state, o.busy)
		if err != nil {
			return err
		}
		perCheckIn := (busy.cpuSeconds - idle.cpuPercent/100*busy.elapsed.Seconds()) / float64(busy.checkins)
		at5m := idle.cpuPercent + perCheckIn/300*100
		fmt.Fprintf(out, "%s: %d check-ins in %s, CPU %.1f ms per check-in, RSS %.1f MiB (max %.1f MiB); at a 5-minute interval: %.4f%% of one core\n",
			cfg.name, busy.checkins, busy.elapsed.Round(time.Millisecond), perCheckIn*1000, busy.rssMiB, busy.maxRSSMiB, at5m)
	}
	fmt.Fprintf(out, "load average after: %s\n", loadavg())
	return nil
}

// startServer runs the server in-process on a SQLite file.
func startServer(ctx context.Context, db string) (url, admin string, stop func(), err error) {
	store, err := sqlstore.Open(ctx, db)
	if err != nil {
		return "", "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	kek, err := sign.RandomKeyEncryptionKey(rand.Reader)
	if err != nil {
		cancel()
		return "", "", nil, err
	}
	srv, err := server.New(sctx, server.Config{Store: store, CheckInRate: 1e6, CheckInBurst: 1e6, KeyEncryptionKey: kek})
	if err != nil {
		cancel()
		store.Close()
		return "", "", nil, err
	}
	hs := httptest.NewServer(srv.Handler())
	done := make(chan struct{})
	go func() { _ = srv.Run(sctx); close(done) }()
	_, admin, err = store.CreateToken(ctx, "bench", "bench", release.RoleAdmin)
	stop = func() { hs.Close(); cancel(); <-done; store.Close() }
	if err != nil {
		stop()
		return "", "", nil, err
	}
	time.Sleep(200 * time.Millisecond)
	return hs.URL, admin, stop, nil
}

// sample is a measurement of a process.
type sample struct {
	rssMiB, maxRSSMiB float64
	ticks             int64
	cpuPercent        float64
	cpuSeconds        float64
	elapsed           time.Duration
	checkins          int
}

// measure starts the agent with a metrics listener, waits for its first
// check-in, then samples its RSS every second and its CPU over d; the
// check-ins in between are read from its own counter, scraped once before
// and once after.
func measure(ctx context.Context, bin string, args []string, state string, d time.Duration) (sample, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{}, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin, append(args, "--metrics-listen", addr)...)
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitFirstCheckIn(state, time.Minute); err != nil {
		return sample{}, err
	}
	time.Sleep(time.Second) // let the first check-in's work settle
	c0, err := checkIns(addr)
	if err != nil {
		return sample{}, err
	}
	t0, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	var s sample
	var rssSum float64
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		rss, hwm, err := rssOf(cmd.Process.Pid)
		if err != nil {
			return sample{}, err
		}
		rssSum += rss
		n++
		s.maxRSSMiB = max(s.maxRSSMiB, hwm)
		time.Sleep(min(time.Second, d-time.Since(start)))
	}
	t1, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	s.elapsed = time.Since(start)
	c1, err := checkIns(addr)
	if err != nil {
		return sample{}, err
	}
	s.checkins = c1 - c0
	s.rssMiB = rssSum / float64(n)
	s.ticks = t1 - t0
	s.cpuSeconds = float64(s.ticks) / clockTicks
	s.cpuPercent = s.cpuSeconds / s.elapsed.Seconds() * 100
	return s, nil
}

// checkIns scrapes the agent's count of verified check-ins.
func checkIns(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, `ringfence_agent_checkins_total{result="ok"} `); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no ringfence_agent_checkins_total in the agent's metrics")
}

// waitFirstCheckIn waits until the state directory holds a verified answer.
func waitFirstCheckIn(state string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if sd, err := agent.OpenStateDir(state); err == nil {
			if st, err := sd.Load(); err == nil && st.Last != nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the agent did not check in")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// timeCheckIns times n in-process check-ins that fingerprint dsn.
func timeCheckIns(ctx context.Context, url, key, trust, state, dsn string, n int) ([]time.Duration, error) {
	a, err := agent.New(agent.Config{Server: url, Key: key, Product: "acme", Version: "1.0.0", StateDir: state,
		TrustFile: trust, DSNs: []string{dsn}, DeepCheck: -1})
	if err != nil {
		return nil, err
	}
	if _, err := a.CheckIn(ctx); err != nil { // records the baseline
		return nil, err
	}
	var out []time.Duration
	for range n {
		t := time.Now()
		res, err := a.CheckIn(ctx)
		if err != nil {
			return nil, err
		}
		if res.Health == nil || res.Health.Status != release.HealthOK {
			return nil, fmt.Errorf("health %+v", res.Health)
		}
		out = append(out, time.Since(t))
	}
	slices.Sort(out)
	return out, nil
}

// prepareDatabase creates agentbench with indexes text indexes under the
// database's default collation and returns its DSN.
func prepareDatabase(ctx context.Context, superDSN string, indexes int) (string, error) {
	conn, err := pgx.Connect(ctx, superDSN)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS agentbench`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE agentbench`); err != nil {
		return "", err
	}
	cfg, _ := pgx.ParseConfig(superDSN)
	cfg.Database = "agentbench"
	db, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer db.Close(ctx)
	var b strings.Builder
	const perTable = 10
	for tbl := 0; tbl*perTable < indexes; tbl++ {
		fmt.Fprintf(&b, "CREATE TABLE t%d (id int PRIMARY KEY", tbl)
		for c := range perTable {
			fmt.Fprintf(&b, ", c%d text", c)
		}
		b.WriteString(");\n")
		fmt.Fprintf(&b, "INSERT INTO t%d SELECT g", tbl)
		for c := range perTable {
			fmt.Fprintf(&b, ", md5((g * %d)::text)", c+1)
		}
		b.WriteString(" FROM generate_series(1, 100) g;\n")
		for c := 0; c < perTable && tbl*perTable+c < indexes; c++ {
			fmt.Fprintf(&b, "CREATE INDEX t%d_c%d ON t%d (c%d);\n", tbl, c, tbl, c)
		}
	}
	if _, err := db.Exec(ctx, b.String()); err != nil {
		return "", fmt.Errorf("create the bench schema: %w", err)
	}
	return cfg.ConnString(), nil
}

func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

// rssOf returns VmRSS and VmHWM in MiB.
func rssOf(pid int) (float64, float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var rss, hwm float64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rss = kb / 1024
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}
