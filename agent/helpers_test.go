package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
)

// fleet is a running server with a product "acme" (rings insiders, early,
// stable), customers and their enrollment keys, and an admin client.
type fleet struct {
	t     *testing.T
	srv   *servertest.Server
	admin *client.Client
	// keys maps customer name to its enrollment key.
	keys map[string]string
	// trust is a trust file with the server's keys.
	trust string
}

// fastServer is a server configuration that takes new facts into account
// within milliseconds.
func fastServer() server.Config {
	return server.Config{RefreshInterval: 50 * time.Millisecond, AdoptionInterval: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond}
}

// newFleet starts a server on a fresh SQLite file with product acme, three
// rings with no soak and full rollout, and customers ins-co (insiders),
// early-co (early) and big-co (stable). No release exists yet.
func newFleet(t *testing.T) *fleet {
	t.Helper()
	return newFleetOn(t, servertest.Start(t, servertest.SQLite(t), fastServer()))
}

// newFleetReleased is newFleet with releases of acme at versions, created
// in that order.
func newFleetReleased(t *testing.T, versions ...string) *fleet {
	t.Helper()
	f := newFleet(t)
	for _, v := range versions {
		f.release(v)
	}
	return f
}

func newFleetOn(t *testing.T, srv *servertest.Server) *fleet {
	t.Helper()
	ctx := context.Background()
	admin, err := client.New(srv.URL, srv.Admin)
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, srv: srv, admin: admin, keys: map[string]string{}}
	must(t, func() error { _, err := admin.CreateProduct(ctx, client.NewProduct{Name: "acme"}); return err }())
	for i, r := range []string{"insiders", "early", "stable"} {
		must(t, func() error {
			_, err := admin.CreateRing(ctx, "acme", release.Ring{Name: r, Position: i, RolloutPercent: 100})
			return err
		}())
	}
	for _, c := range [][2]string{{"ins-co", "insiders"}, {"early-co", "early"}, {"big-co", "stable"}} {
		f.customer(c[0], c[1])
	}
	f.trust = f.writeTrust(t.TempDir())
	return f
}

// customer creates a customer in ring and keeps its enrollment key.
func (f *fleet) customer(name, ring string) string {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.admin.CreateCustomer(ctx, "acme", name, ring); err != nil {
		f.t.Fatal(err)
	}
	k, err := f.admin.CreateEnrollmentKey(ctx, "acme", name)
	if err != nil {
		f.t.Fatal(err)
	}
	f.keys[name] = k.Key
	return k.Key
}

// writeTrust writes the server's current /v1/keys into dir/trust.json.
func (f *fleet) writeTrust(dir string) string {
	f.t.Helper()
	keys, err := f.admin.PublicKeys(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return writeKeys(f.t, dir, keys)
}

func writeKeys(t *testing.T, dir string, keys []sign.PublicKey) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "trust.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// release creates a release with the gate-free product and returns it.
func (f *fleet) release(v string, opts ...func(*client.NewRelease)) {
	f.t.Helper()
	nr := client.NewRelease{Version: release.MustParseVersion(v)}
	for _, o := range opts {
		o(&nr)
	}
	if _, err := f.admin.CreateRelease(context.Background(), "acme", nr); err != nil {
		f.t.Fatal(err)
	}
}

// config is an agent configuration for customer running version in a fresh
// state directory.
func (f *fleet) config(customer, version string) agent.Config {
	return agent.Config{Server: f.srv.URL, Key: f.keys[customer], Product: "acme", Version: version,
		StateDir: f.t.TempDir(), TrustFile: f.trust, Interval: time.Second, DeepCheck: -1}
}

func newAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// events returns the events the server stored for instance id.
func (f *fleet) events(id string) []release.InstanceEvent {
	f.t.Helper()
	all, err := f.srv.Store.ListEvents(context.Background(), "acme", 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []release.InstanceEvent
	for _, e := range all {
		if e.InstanceID == id {
			out = append(out, e)
		}
	}
	return out
}

func instanceID(t *testing.T, dir string) string {
	t.Helper()
	sd, err := agent.OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sd.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st.InstanceID
}

func status(t *testing.T, dir string) agent.Status {
	t.Helper()
	sd, err := agent.OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := agent.ReadStatus(sd, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// reasons returns the codes of d's reasons.
func reasons(d agent.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// slogTo returns a text logger writing to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func itoa(n int) string { return strconv.Itoa(n) }
