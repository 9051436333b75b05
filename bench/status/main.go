// Command status measures the public status page during an active
// incident: requests per second and latency of the page (/) and of
// /api/v2/summary.json, against the same server's /healthz in the same
// run, from C concurrent keep-alive connections that accept gzip (as
// browsers and CDNs do); then the time to deliver one incident update to N
// webhook subscribers on a local receiver that verifies every signature.
//
// The server runs in-process on a SQLite file, sharing the machine's cores
// with the load generator.
//
//	go run ./bench/status -duration 10s -concurrency 50 -subscribers 10000
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/notifytest"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

type options struct {
	duration    time.Duration
	concurrency int
	components  int
	subscribers int
	delivery    int
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration per endpoint")
	flag.IntVar(&o.concurrency, "concurrency", 50, "concurrent connections")
	flag.IntVar(&o.components, "components", 12, "components on the page (in groups of 4)")
	flag.IntVar(&o.subscribers, "subscribers", 10000, "webhook subscribers the update is delivered to (0: skip)")
	flag.IntVar(&o.delivery, "delivery-concurrency", 64, "deliveries in flight at once")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "status bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.concurrency < 1 || o.components < 1 || o.subscribers < 0 {
		return errors.New("concurrency and components must be positive, subscribers not negative")
	}
	dir, err := os.MkdirTemp("", "status-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "ringfence.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	kek, err := sign.RandomKeyEncryptionKey(rand.Reader)
	if err != nil {
		return err
	}
	cfg := server.Config{Store: store, PageTitle: "Bench Status", WebhookAllowPrivate: true, KeyEncryptionKey: kek}
	cfg.Notify.Concurrency = o.delivery
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go srv.Run(runCtx)
	base := "http://" + ln.Addr().String()

	if err := scene(ctx, store, o.components); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, func() bool {
		b, err := fetch(base + "/api/v2/incidents/unresolved.json")
		return err == nil && strings.Contains(b, "Check-ins failing")
	}); err != nil {
		return fmt.Errorf("page did not show the incident: %w", err)
	}
	page, _ := fetch(base + "/")
	sum, _ := fetch(base + "/api/v2/summary.json")
	fmt.Fprintf(out, "page %d bytes, summary.json %d bytes (plain); %d components, 1 active incident, 1 maintenance\n", len(page), len(sum), o.components)
	fmt.Fprintf(out, "%-24s %10s %9s %9s %9s %9s\n", "endpoint", "req/s", "p50", "p90", "p99", "max")
	for _, path := range []string{"/healthz", "/", "/api/v2/summary.json", "/healthz"} {
		r, err := load(base+path, o.concurrency, o.duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-24s %10.0f %9s %9s %9s %9s\n", path, r.rate, r.p(50), r.p(90), r.p(99), r.p(100))
	}
	if o.subscribers == 0 {
		return nil
	}
	return fanOut(ctx, store, o.subscribers, out)
}

// scene puts an incident day in the store: components in groups of four,
// an incident with two updates on one of them, a maintenance tomorrow.
func scene(ctx context.Context, store *sqlstore.Store, n int) error {
	for i := range n {
		c := incident.Component{Name: fmt.Sprintf("Component %d", i), Group: fmt.Sprintf("Group %d", i/4), Status: incident.Operational}
		if i == 1 {
			c.Name = "Check-in"
		}
		if _, err := store.CreateComponent(ctx, "bench", c); err != nil {
			return err
		}
	}
	d, err := store.DeclareIncident(ctx, "bench", incident.Declaration{Title: "Check-ins failing", Impact: incident.ImpactMajor, Severity: "SEV2",
		Status: incident.StatusInvestigating, Message: "We see errors on check-in.", Notify: true,
		Components: []incident.ComponentChange{{Name: "Check-in", NewStatus: incident.PartialOutage}}})
	if err != nil {
		return err
	}
	if _, err := store.UpdateIncident(ctx, "bench", d.ID, incident.Change{Status: incident.StatusIdentified, Message: "A bad index; rebuilding it.", Notify: true}); err != nil {
		return err
	}
	start := time.Now().Add(24 * time.Hour)
	_, err = store.ScheduleMaintenance(ctx, "bench", "Database upgrade", "Check-ins may be slow for a minute.", start, start.Add(2*time.Hour), []string{"Check-in"})
	return err
}

func fetch(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

type result struct {
	rate float64
	lat  []time.Duration
}

func (r result) p(q int) string {
	if len(r.lat) == 0 {
		return "-"
	}
	i := min(len(r.lat)-1, len(r.lat)*q/100)
	return fmt.Sprintf("%.2fms", float64(r.lat[i].Microseconds())/1000)
}

// load requests url from c keep-alive connections for d, accepting gzip
// (bodies are read, not decompressed).
func load(url string, c int, d time.Duration) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			for time.Now().Before(end) {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %s", url, resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return result{rate: float64(len(all)) / elapsed.Seconds(), lat: all}, firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fanOut creates n webhook subscribers on a local receiver, then times one
// incident update from its commit to the last verified delivery.
func fanOut(ctx context.Context, store *sqlstore.Store, n int, out io.Writer) error {
	rcv, stop := notifytest.StartReceiver()
	defer stop()
	rcv.CountOnly()
	secret, err := incident.NewWebhookSecret()
	if err != nil {
		return err
	}
	rcv.Secret("*", secret)
	site := incident.SPPage{ID: "bench", Name: "Bench Status", URL: "http://localhost:8080"}
	t0 := time.Now()
	for i := range n {
		if _, err := store.CreateSubscriber(ctx, "bench", incident.Subscriber{Kind: incident.SubscriberWebhook, Target: fmt.Sprintf("%s/s%d", rcv.URL, i), Secret: secret}, site); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "created %d webhook subscribers in %s\n", n, time.Since(t0).Round(time.Millisecond))
	incs, err := store.ListIncidents(ctx, true, 1)
	if err != nil || len(incs) == 0 {
		return fmt.Errorf("find the incident: %v", err)
	}
	t0 = time.Now()
	if _, err := store.UpdateIncident(ctx, "bench", incs[0].ID, incident.Change{Status: incident.StatusMonitoring, Message: "A fix is deployed; watching.", Notify: true}); err != nil {
		return err
	}
	if err := waitFor(10*time.Minute, func() bool { return rcv.Count() >= int64(n) }); err != nil {
		return err
	}
	received := time.Since(t0)
	if err := waitFor(time.Minute, func() bool {
		ds, err := store.ListDeliveries(ctx, incident.DeliveryDelivered, n+1)
		return err == nil && len(ds) >= n
	}); err != nil {
		return err
	}
	recorded := time.Since(t0)
	fmt.Fprintf(out, "one update to %d webhook subscribers: all received and verified in %s (%.0f/s), all recorded delivered in %s\n",
		n, received.Round(time.Millisecond), float64(n)/received.Seconds(), recorded.Round(time.Millisecond))
	return nil
}
