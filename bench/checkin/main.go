// Command checkin measures ringfence's check-in throughput and latency: it
// runs a ringfence server in-process on a SQLite file or a PostgreSQL
// database (or targets a running one with -url), enrolls customers, warms up
// N distinct installations with one check-in each, then drives check-ins
// from C concurrent keep-alive connections for a fixed duration and reports
// check-ins per second and the latency distribution.
//
// With -limit it also runs a minimal server doing only the irreducible work
// of a check-in (limit.go) and drives both with the same generator,
// alternating between them in -rounds slices, so that both see the same
// machine and load; it prints both and the ratio. The minimal server always
// runs on SQLite, the store the limit is defined on.
//
// With -store postgres the server runs on a throwaway PostgreSQL cluster it
// starts (default durability: fsync and synchronous_commit on) and removes.
// -cpuprofile profiles the measured phase only (after every warm-up), with
// goroutines labelled server=ringfence, server=minimal or server=generator,
// so one server's share is `go tool pprof -tagfocus server=ringfence`.
//
//	go run ./bench/checkin -installations 100000 -duration 30s -concurrency 50
//	go run ./bench/checkin -db postgres://postgres@127.0.0.1:5432/bench?sslmode=disable
//	go run ./bench/checkin -limit -duration 20s -rounds 4 [-event-share 1] [-store postgres]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/internal/gcfloor"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

type options struct {
	db            string
	storeKind     string
	url           string
	token         string
	installations int
	customers     int
	duration      time.Duration
	concurrency   int
	eventShare    float64
	verify        bool
	cpuProfile    string
	memProfile    string
	trace         string
	limit         bool
	seed          bool
	rounds        int
	rate          float64
	gcFloor       int
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "store for the in-process server: SQLite file or postgres:// URL (default: a SQLite file in a temporary directory)")
	flag.StringVar(&o.storeKind, "store", "sqlite", "with no -db: sqlite (a file in a temporary directory) or postgres (a throwaway cluster this command starts and removes)")
	flag.StringVar(&o.url, "url", "", "target a running server instead (needs -token, an admin token; its check-in rate limit must allow the load)")
	flag.StringVar(&o.token, "token", "", "admin API token for -url")
	flag.IntVar(&o.installations, "installations", 100_000, "distinct simulated installations")
	flag.IntVar(&o.customers, "customers", 200, "customers (one enrollment key each) the installations are spread over")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "measured duration")
	flag.IntVar(&o.concurrency, "concurrency", 50, "concurrent connections")
	flag.Float64Var(&o.eventShare, "event-share", 0, "share of check-ins carrying an event, which must be committed before the answer (0..1)")
	flag.BoolVar(&o.verify, "verify", false, "decode every answer (costs client CPU)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	flag.StringVar(&o.trace, "trace", "", "write an execution trace of the measured phase to this file (go tool trace)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write allocation profiles to this file (end of the measured phase) and FILE.base (its start): go tool pprof -sample_index=alloc_space -diff_base FILE.base FILE")
	flag.BoolVar(&o.limit, "limit", false, "also run the minimal server and compare, interleaved (in-process server only)")
	flag.BoolVar(&o.seed, "seed", false, "warm up by writing the installations into the stores directly instead of one check-in each (minutes saved with millions; in-process server only)")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: offer this many check-ins per second in all (spread evenly over the connections) and measure each from when it was due, not when it was sent; 0 is a closed loop, each connection sending as soon as it has its answer")
	flag.IntVar(&o.gcFloor, "gc-floor", 64, "MiB, as `ringfence serve --gc-floor`: the process (both servers and the generator) runs with the GC floor serve runs with; 0 for Go's default (ignored when GOGC is set)")
	flag.IntVar(&o.rounds, "rounds", 4, "with -limit: slices per server, alternating which goes first; -duration is each server's total")
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.gcFloor > 0 && !gcfloor.EnvSet() {
		go gcfloor.Run(ctx, uint64(o.gcFloor)<<20, time.Second)
	}
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "checkin bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.installations < 1 || o.customers < 1 || o.concurrency < 1 || o.eventShare < 0 || o.eventShare > 1 || o.rounds < 1 || o.rate < 0 {
		return errors.New("installations, customers, concurrency and rounds must be positive; event-share within [0, 1]; rate not negative")
	}
	if (o.limit || o.seed) && o.url != "" {
		return errors.New("-limit and -seed need the in-process server; leave out -url")
	}
	if o.storeKind != "sqlite" && o.storeKind != "postgres" {
		return fmt.Errorf("-store %q: want sqlite or postgres", o.storeKind)
	}
	url, token := o.url, o.token
	dialect := "external"
	var seed func(product string, ids []string) error
	if url == "" {
		db := o.db
		if db == "" && o.storeKind == "postgres" {
			pg, err := startPostgres()
			if err != nil {
				return err
			}
			defer pg.stop()
			db = pg.dsn()
		} else if db == "" {
			dir, err := os.MkdirTemp("", "ringfence-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			db = filepath.Join(dir, "ringfence.db")
		}
		store, err := sqlstore.Open(ctx, db)
		if err != nil {
			return err
		}
		defer store.Close()
		dialect = string(store.Dialect())
		kek, err := sign.RandomKeyEncryptionKey(rand.Reader)
		if err != nil {
			return err
		}
		srv, err := server.New(ctx, server.Config{Store: store, CheckInRate: rate.Inf, CheckInBurst: 1, KeyEncryptionKey: kek})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		labelled("ringfence", func() {
			go hs.Serve(ln)
			go func() { srv.Run(runCtx); close(done) }()
		})
		defer func() { hs.Close(); stop(); <-done }()
		if _, token, err = store.CreateToken(ctx, "bench", "bench", release.RoleAdmin); err != nil {
			return err
		}
		url = "http://" + ln.Addr().String()
		seed = func(product string, ids []string) error {
			return seedStore(ctx, store, product, ids, o.customers)
		}
	}

	// No client-wide timeout (a timer per request): drive gives each run
	// one deadline instead.
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, IdleConnTimeout: time.Minute}}
	product := "bench-" + randomString(4)
	keys, err := setup(client, url, token, product, o.customers)
	if err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	ids := make([]string, o.installations)
	for i := range ids {
		ids[i] = fmt.Sprintf("inst-%07d", i)
	}

	gc := fmt.Sprintf("GC floor %d MiB", o.gcFloor)
	if v, ok := os.LookupEnv("GOGC"); ok {
		gc = "GOGC=" + v
	} else if o.gcFloor == 0 {
		gc = "Go's default GC"
	}
	fmt.Fprintf(out, "store %s, %d installations over %d customers, %d connections, event share %.2f, GOMAXPROCS %d, %s\n",
		dialect, o.installations, o.customers, o.concurrency, o.eventShare, runtime.GOMAXPROCS(0), gc)
	start := time.Now()
	if o.seed {
		if err := seed(product, ids); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		fmt.Fprintf(out, "seeded: %d installations written into the store in %s\n", o.installations, time.Since(start).Round(time.Millisecond))
	} else {
		if _, err := drive(client, url, product, keys, ids, o, 0, true); err != nil {
			return fmt.Errorf("warm up: %w", err)
		}
		fmt.Fprintf(out, "warm-up: %d check-ins (one per installation) in %s\n", o.installations, time.Since(start).Round(time.Millisecond))
	}
	if o.limit {
		return compareWithLimit(client, url, product, keys, ids, o, out)
	}
	stop, err := startProfile(o.cpuProfile, o.memProfile, o.trace)
	if err != nil {
		return err
	}
	defer stop()
	res, err := drive(client, url, product, keys, ids, o, o.duration, false)
	if err != nil {
		return err
	}
	res.print(out)
	return res.healthy("ringfence")
}

// compareWithLimit starts the minimal server with the same enrollment keys,
// warms it up with the same installations, then drives the two in turn for
// o.rounds slices each (the first server alternates), and prints both totals
// and the ratio ringfence / minimal server.
func compareWithLimit(client *http.Client, url, product string, keys, ids []string, o options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "ringfence-bench-limit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	customers := make(map[string]string, len(keys))
	for i, k := range keys {
		customers[k] = fmt.Sprintf("customer-%04d", i)
	}
	lim, err := startLimitServer(dir, customers, "1.1.0", func(start func()) { labelled("minimal", start) })
	if err != nil {
		return err
	}
	defer lim.close()
	if o.seed {
		if err := lim.seed(ids, o.customers); err != nil {
			return fmt.Errorf("seed the minimal server: %w", err)
		}
	} else if _, err := drive(client, lim.url, product, keys, ids, o, 0, true); err != nil {
		return fmt.Errorf("warm up the minimal server: %w", err)
	}
	stop, err := startProfile(o.cpuProfile, o.memProfile, o.trace)
	if err != nil {
		return err
	}
	defer stop()
	targets := []struct{ name, url string }{{"ringfence", url}, {"minimal", lim.url}}
	totals := make([]result, 2)
	slice := o.duration / time.Duration(o.rounds)
	for round := range o.rounds {
		for j := range 2 {
			i := (round + j) % 2
			res, err := drive(client, targets[i].url, product, keys, ids, o, slice, false)
			if err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
			fmt.Fprintf(out, "round %d %-9s %8.0f/s  p99 %s\n", round+1, targets[i].name,
				float64(res.ok)/res.elapsed.Seconds(), res.quantile(0.99).Round(10*time.Microsecond))
			totals[i].add(res)
		}
	}
	for i, t := range targets {
		fmt.Fprintf(out, "== %s\n", t.name)
		totals[i].print(out)
	}
	// The yardstick must have done the work it is credited with: every
	// installation has its row and, when every check-in carried an event,
	// every answered check-in's event is stored.
	insts, events, err := lim.stored()
	if err != nil {
		return fmt.Errorf("count the minimal server's rows: %w", err)
	}
	wantEvents := 0
	if o.eventShare == 1 {
		wantEvents = totals[1].ok
		if !o.seed {
			wantEvents += len(ids)
		}
	}
	if insts != len(ids) || events < wantEvents {
		return fmt.Errorf("the minimal server stored %d installations and %d events, want %d and at least %d", insts, events, len(ids), wantEvents)
	}
	rf, mn := totals[0], totals[1]
	fmt.Fprintf(out, "ratio ringfence / minimal: throughput %.2f, p99 %.2f\n",
		(float64(rf.ok)/rf.elapsed.Seconds())/(float64(mn.ok)/mn.elapsed.Seconds()),
		rf.quantile(0.99).Seconds()/mn.quantile(0.99).Seconds())
	return errors.Join(rf.healthy("ringfence"), mn.healthy("the minimal server"))
}

// seedStore writes one routine check-in of every installation into store,
// as the warm-up's check-ins would (installation i belongs to the customer
// of key i mod customers).
func seedStore(ctx context.Context, store *sqlstore.Store, product string, ids []string, customers int) error {
	v := release.MustParseVersion("1.0.0")
	batch := make([]sqlstore.CheckInRecord, 0, 5000)
	for i, id := range ids {
		batch = append(batch, sqlstore.CheckInRecord{Product: product, Customer: fmt.Sprintf("customer-%04d", i%customers), InstanceID: id,
			Version: v, Health: &release.Health{Status: release.HealthOK}, ReceivedAt: time.Now()})
		if len(batch) == cap(batch) || i == len(ids)-1 {
			if err := store.RecordCheckIns(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// labelled runs start (which starts goroutines) with the profile label
// server=name, which every goroutine started from it inherits.
func labelled(name string, start func()) {
	pprof.Do(context.Background(), pprof.Labels("server", name), func(context.Context) { start() })
}

// startProfile starts a CPU profile into cpu and an execution trace into
// trc, writes the allocations so far into mem.base ("" for none of them),
// and returns what stops both and writes the allocations into mem.
func startProfile(cpu, mem, trc string) (func(), error) {
	writeAllocs := func(path string) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
	}
	if mem != "" {
		if err := writeAllocs(mem + ".base"); err != nil {
			return nil, fmt.Errorf("allocation profile: %w", err)
		}
	}
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
		if mem != "" {
			if err := writeAllocs(mem); err != nil {
				fmt.Fprintln(os.Stderr, "checkin bench: allocation profile:", err)
			}
		}
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if trc != "" {
		f, err := os.Create(trc)
		if err != nil {
			stop()
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return nil, err
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	return stop, nil
}

// setup creates the product, one ring, two releases (the newer offered to
// all) and customers with one enrollment key each.
func setup(c *http.Client, url, token, product string, customers int) ([]string, error) {
	call := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest("POST", url+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s: %s: %s", path, resp.Status, rb)
		}
		if out != nil {
			return json.Unmarshal(rb, out)
		}
		return nil
	}
	p := "/api/v1/products/" + product
	if err := call("/api/v1/products", map[string]any{"name": product, "halt": map[string]any{"disabled": true}}, nil); err != nil {
		return nil, err
	}
	if err := call(p+"/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, nil); err != nil {
		return nil, err
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := call(p+"/releases", map[string]any{"version": v}, nil); err != nil {
			return nil, err
		}
	}
	keys := make([]string, customers)
	for i := range keys {
		name := fmt.Sprintf("customer-%04d", i)
		if err := call(p+"/customers", map[string]any{"name": name, "ring": "all"}, nil); err != nil {
			return nil, err
		}
		var k struct {
			Key string `json:"key"`
		}
		if err := call(p+"/customers/"+name+"/keys", map[string]any{}, &k); err != nil {
			return nil, err
		}
		keys[i] = k.Key
	}
	return keys, nil
}

// result is what a measured run saw.
type result struct {
	elapsed   time.Duration
	ok        int
	failed    int
	offers    int
	latencies []time.Duration
}

// add sums another run's counts into r.
// healthy is an error if any check-in to server failed: figures of a server
// that refused or dropped check-ins do not measure what they claim.
func (r result) healthy(server string) error {
	if r.failed > 0 {
		return fmt.Errorf("%s: %d check-ins failed (the figures above count only the answered ones)", server, r.failed)
	}
	return nil
}

func (r *result) add(o result) {
	r.elapsed += o.elapsed
	r.ok += o.ok
	r.failed += o.failed
	r.offers += o.offers
	r.latencies = append(r.latencies, o.latencies...)
}

// quantile returns the latency below which a share p of check-ins finished.
func (r result) quantile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

func (r result) print(out io.Writer) {
	q := r.quantile
	fmt.Fprintf(out, "check-ins: %d ok, %d failed in %s = %.0f/s\n", r.ok, r.failed, r.elapsed.Round(time.Millisecond), float64(r.ok)/r.elapsed.Seconds())
	fmt.Fprintf(out, "latency: p50 %s, p90 %s, p99 %s, max %s\n", q(0.50).Round(10*time.Microsecond), q(0.90).Round(10*time.Microsecond),
		q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond))
	if r.offers >= 0 {
		fmt.Fprintf(out, "answers decoded with an offer: %d\n", r.offers)
	}
}

// drive sends check-ins from o.concurrency workers: with once, exactly one
// per installation; otherwise cycling over the installations for d.
func drive(c *http.Client, url, product string, keys, ids []string, o options, d time.Duration, once bool) (result, error) {
	var next atomic.Int64
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var total result
	total.offers = -1
	if o.verify {
		total.offers = 0
	}
	var firstErr error
	var wg sync.WaitGroup
	// The generator shares the cores with the servers it measures: it
	// allocates as little as net/http lets it (a header value per key, a
	// body and a response buffer per worker, one deadline per run instead
	// of a timer per request).
	// A warm-up gets a millisecond a check-in (it goes at a tenth of that).
	end := deadline.Add(time.Minute)
	if once {
		end = end.Add(time.Duration(len(ids)) * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	auth := make([][]string, len(keys))
	for i, k := range keys {
		auth[i] = []string{"Bearer " + k}
	}
	checkInURL := url + "/v1/checkin"
	start := time.Now()
	// With a rate, worker w's k-th check-in is due at start + (k*C + w) /
	// rate: the connections' check-ins interleave evenly, and a check-in
	// whose connection is still waiting for an earlier answer is late from
	// its due time on (no coordinated omission).
	every := time.Duration(0)
	if o.rate > 0 && !once {
		every = time.Duration(float64(o.concurrency) / o.rate * float64(time.Second))
	}
	worker := func(w int) {
		defer wg.Done()
		var r result
		var body []byte
		var resp bytes.Buffer
		due := start.Add(time.Duration(w) * every / time.Duration(o.concurrency))
		for {
			n := int(next.Add(1) - 1)
			if once && n >= len(ids) || !once && time.Now().After(deadline) {
				break
			}
			t0 := time.Now()
			if every > 0 {
				if !due.Before(deadline) {
					break
				}
				time.Sleep(time.Until(due))
				t0 = due
				due = due.Add(every)
			}
			i := n % len(ids)
			withEvent := o.eventShare > 0 && float64(n%1000) < o.eventShare*1000
			body = appendCheckIn(body[:0], ids[i], product, n, withEvent)
			if every == 0 {
				t0 = time.Now()
			}
			offered, err := post(ctx, c, checkInURL, auth[i%len(keys)], body, &resp, o.verify)
			if err != nil {
				r.failed++
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				continue
			}
			r.latencies = append(r.latencies, time.Since(t0))
			r.ok++
			if offered {
				r.offers++
			}
		}
		mu.Lock()
		total.ok += r.ok
		total.failed += r.failed
		if total.offers >= 0 {
			total.offers += r.offers
		}
		total.latencies = append(total.latencies, r.latencies...)
		mu.Unlock()
	}
	for w := range o.concurrency {
		wg.Add(1)
		labelled("generator", func() { go worker(w) })
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	if total.ok == 0 && firstErr != nil {
		return total, firstErr
	}
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "first error:", firstErr)
	}
	return total, nil
}

// appendCheckIn appends a check-in body for installation id to b.
func appendCheckIn(b []byte, id, product string, n int, withEvent bool) []byte {
	// Instance ids and products are plain ASCII: Go's quoting is JSON's.
	b = append(b, `{"instance_id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"product":`...)
	b = strconv.AppendQuote(b, product)
	b = append(b, `,"version":"1.0.0","nonce":"n`...)
	b = fmt.Appendf(b, "%015d", n)
	b = append(b, '-')
	b = append(b, id...)
	b = append(b, `","health":{"status":"ok"}`...)
	if withEvent {
		b = append(b, `,"events":[{"kind":"upgrade_started","from":"1.0.0","to":"1.1.0","at":"`...)
		b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}]`...)
	}
	return append(b, '}')
}

// post sends one check-in with the Authorization header auth, reading the
// answer into resp; with verify it decodes the answer's payload and
// reports whether it carries an offer.
func post(ctx context.Context, c *http.Client, url string, auth []string, body []byte, resp *bytes.Buffer, verify bool) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header["Authorization"] = auth
	req.Header["Content-Type"] = jsonContentType
	res, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	resp.Reset()
	if _, err := resp.ReadFrom(res.Body); err != nil {
		return false, err
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("check-in: %s: %s", res.Status, resp.Bytes())
	}
	if !verify {
		return false, nil
	}
	var env struct {
		Payload []byte `json:"payload"`
	}
	if err := json.Unmarshal(resp.Bytes(), &env); err != nil {
		return false, err
	}
	var ans release.Answer
	if err := json.Unmarshal(env.Payload, &ans); err != nil {
		return false, err
	}
	return ans.Offer != nil, nil
}

// jsonContentType is the Content-Type header value of a check-in.
var jsonContentType = []string{"application/json"}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "x"
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	out := make([]byte, 0, len(s))
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "x"
	}
	return string(out)
}
