// Package demo makes a living ringfence for someone seeing it for the first
// time (`ringfence serve --demo`): it seeds a realistic product through the
// admin API and keeps simulated installations checking in through the real
// protocol.
//
// Invariants: the demo only talks to the server over HTTP, as any vendor
// tool and agent would — admin changes through the client with an API token,
// check-ins through client.CheckIn with a customer's enrollment key, every
// answer verified against the keys pinned from /v1/keys before it is acted
// on. Every state on the board is reached the way it would be in
// production: the auto-halted release is paused by the server's own
// auto-halt, after installations reported a changed collation order, not by
// writing a status.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Product is the demo product's name.
const Product = "acme-erp"

// Versions of the demo's releases and the state each is brought to.
const (
	// Stable has gone through every ring.
	Stable = "3.28.0"
	// Pulled broke upgrades and was pulled: installations on it are told to
	// upgrade to Fixed.
	Pulled = "3.29.0"
	// Fixed replaced Pulled; it soaks in the early ring.
	Fixed = "3.29.1"
	// Halted moved the database image from glibc to musl: insiders report a
	// changed collation order and auto-halt pauses it.
	Halted = "3.30.0"
	// Held waits behind a flag someone raised.
	Held = "3.30.1"
	// before is what every installation runs when the demo starts.
	before = "3.27.2"
)

// v parses one of the versions above.
func v(s string) release.Version { return release.MustParseVersion(s) }

// Config configures the demo.
type Config struct {
	// Server is the ringfence server's base URL; Token an admin API token.
	Server string
	Token  string
	// Logger receives what the simulated installations do; default discards.
	Logger *slog.Logger
	// Interval is the time between one installation's check-ins (5s, with
	// ±20% jitter).
	Interval time.Duration
}

// Demo is a seeded product and its simulated fleet.
type Demo struct {
	cfg     Config
	admin   *client.Client
	trusted []sign.PublicKey
	fleet   []*installation
}

// customer is one of the demo's customers: its ring and how many
// installations it runs.
type customer struct {
	name, ring string
	n          int
}

// installation is one simulated installation: what its agent knows.
type installation struct {
	id, customer, ring string
	cl                 *client.Client
	mu                 sync.Mutex
	version            release.Version
	health             release.Health
	pending            []release.Event
}

// Seed creates the demo product — rings, customers, enrollment keys,
// releases, installations, status page components and incident templates —
// and plays its history until every release is in its state: Stable
// everywhere, Pulled pulled with guidance (its incident resolved, with a
// postmortem), Fixed soaking in the early ring, Halted paused by auto-halt
// (its incident public, with components affected), Held held.
func Seed(ctx context.Context, cfg Config) (*Demo, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	admin, err := client.New(cfg.Server, cfg.Token, client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	d := &Demo{cfg: cfg, admin: admin}
	if d.trusted, err = admin.PublicKeys(ctx); err != nil {
		return nil, fmt.Errorf("demo: pin the server's public keys: %w", err)
	}
	if err := d.catalog(ctx, hc); err != nil {
		return nil, fmt.Errorf("demo: create the product: %w", err)
	}
	if err := d.components(ctx); err != nil {
		return nil, fmt.Errorf("demo: create the status page: %w", err)
	}
	if err := d.history(ctx); err != nil {
		return nil, fmt.Errorf("demo: play the release history: %w", err)
	}
	return d, nil
}

// catalog creates the product, its rings and customers, and the fleet.
func (d *Demo) catalog(ctx context.Context, hc *http.Client) error {
	policy := release.Policy{Window: time.Hour, MinFailures: 3, MinFailureShare: 0.2, MinCustomers: 2}
	if _, err := d.admin.CreateProduct(ctx, client.NewProduct{Name: Product, RequiredGates: []string{"collation-compare"}, Halt: &policy}); err != nil {
		return err
	}
	for _, r := range []release.Ring{
		{Name: "insiders", Position: 0, SoakTime: 30 * time.Minute, RolloutPercent: 100, MinHealthy: 3},
		{Name: "early", Position: 1, SoakTime: 6 * time.Hour, RolloutPercent: 100, MinHealthy: 8},
		{Name: "stable", Position: 2, SoakTime: 24 * time.Hour, RolloutPercent: 50},
	} {
		if _, err := d.admin.CreateRing(ctx, Product, r); err != nil {
			return err
		}
	}
	for _, c := range []customer{
		{"globex", "insiders", 3}, {"initech", "insiders", 3},
		{"umbrella", "early", 5}, {"hooli", "early", 6},
		{"bigbank", "stable", 12}, {"northwind", "stable", 9}, {"contoso", "stable", 7},
	} {
		if _, err := d.admin.CreateCustomer(ctx, Product, c.name, c.ring); err != nil {
			return err
		}
		k, err := d.admin.CreateEnrollmentKey(ctx, Product, c.name)
		if err != nil {
			return err
		}
		cl, err := client.New(d.cfg.Server, k.Key, client.WithHTTPClient(hc))
		if err != nil {
			return err
		}
		for i := range c.n {
			d.fleet = append(d.fleet, &installation{id: fmt.Sprintf("%s-%02d", c.name, i+1), customer: c.name, ring: c.ring, cl: cl,
				version: v(before), health: release.Health{Status: release.HealthOK}})
		}
	}
	return nil
}

// history plays the releases' story through the API and check-in rounds.
func (d *Demo) history(ctx context.Context) error {
	a := d.admin
	ci := "https://ci.example.com/acme-erp/pipelines/"
	create := func(ver release.Version, run string) error {
		if _, err := a.CreateRelease(ctx, Product, client.NewRelease{Version: ver, NotesURL: "https://docs.example.com/acme-erp/releases/" + ver.String()}); err != nil {
			return err
		}
		_, err := a.PostGateResult(ctx, Product, ver, "collation-compare", release.GatePass, ci+run)
		return err
	}
	// Everyone checks in on the old version first: the installations that
	// later report on new releases are known to the server.
	if err := d.round(ctx); err != nil {
		return err
	}
	// 3.28.0 went everywhere, long ago.
	if err := create(v(Stable), "1804"); err != nil {
		return err
	}
	if _, err := a.PromoteRelease(ctx, Product, v(Stable), "stable", "shipped before the demo began: rolled out to every ring"); err != nil {
		return err
	}
	if err := d.rounds(ctx, 2); err != nil {
		return err
	}
	// 3.29.0 reached the insiders, then was pulled for 3.29.1.
	if err := create(v(Pulled), "1851"); err != nil {
		return err
	}
	if err := d.rounds(ctx, 2); err != nil {
		return err
	}
	if err := create(v(Fixed), "1866"); err != nil {
		return err
	}
	pulled, err := a.PullReleaseWithIncident(ctx, Product, v(Pulled), client.PullRequest{
		Reason:      "schema migration 0412 fails on databases with more than 2^31 audit rows",
		IncidentURL: "https://status.example.com/incidents/2026-11-29", Action: release.ActionUpgrade, Target: v(Fixed)})
	if err != nil {
		return err
	}
	if _, err := a.PromoteRelease(ctx, Product, v(Fixed), "early", "fix for the pulled 3.29.0: fast-tracked past the insiders' soak"); err != nil {
		return err
	}
	if err := d.rounds(ctx, 2); err != nil {
		return err
	}
	if err := d.resolvePulled(ctx, pulled.IncidentID); err != nil {
		return err
	}
	// 3.30.0 moves the database image to Alpine (musl): the insiders'
	// agents see the collation order change, and auto-halt pauses it.
	if err := create(v(Halted), "1902"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.round(ctx); err != nil {
			return err
		}
		r, err := a.Release(ctx, Product, v(Halted))
		if err != nil {
			return err
		}
		if r.Status == release.StatusPaused {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("auto-halt did not pause %s within 30s of the failure reports", Halted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// 3.30.1 waits behind a flag.
	if _, err := a.CreateRelease(ctx, Product, client.NewRelease{Version: v(Held)}); err != nil {
		return err
	}
	if _, err := a.RaiseHold(ctx, Product, v(Held), "same base image as 3.30.0: wait for the collation root cause"); err != nil {
		return err
	}
	// On-call takes the auto-halt's incident public, naming what it affects.
	return d.haltIncident(ctx)
}

// rounds runs n check-in rounds.
func (d *Demo) rounds(ctx context.Context, n int) error {
	for range n {
		if err := d.round(ctx); err != nil {
			return err
		}
	}
	return nil
}

// round has every installation check in once, a few at a time.
func (d *Demo) round(ctx context.Context) error {
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(d.fleet))
	var wg sync.WaitGroup
	for _, in := range d.fleet {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- d.checkIn(ctx, in)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Run keeps the fleet checking in, each installation every Interval with
// jitter, until ctx ends. Failed check-ins are logged and retried at the
// installation's next turn, as an agent would.
func (d *Demo) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, in := range d.fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d.cfg.Interval))
				select {
				case <-ctx.Done():
					return
				case <-time.After(d.cfg.Interval + jitter):
				}
				if err := d.checkIn(ctx, in); err != nil && ctx.Err() == nil {
					d.cfg.Logger.Warn("demo installation check-in failed", slog.String("instance", in.id), slog.Any("err", err))
				}
			}
		}()
	}
	wg.Wait()
}

// checkIn sends one check-in of in, verifies the answer and follows it.
func (d *Demo) checkIn(ctx context.Context, in *installation) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	health := in.health
	req := release.CheckIn{InstanceID: in.id, Product: Product, Version: in.version, Health: &health, Events: in.pending}
	ans, _, err := in.cl.CheckIn(ctx, req, d.trusted)
	if err != nil {
		return fmt.Errorf("check-in of %s: %w", in.id, err)
	}
	in.pending = nil
	switch {
	case (ans.Current.Action == release.ActionUpgrade || ans.Current.Action == release.ActionRollback) && !ans.Current.Target.IsZero():
		d.move(in, ans.Current.Target, "following the guidance for "+in.version.String())
	case ans.Offer != nil:
		d.move(in, ans.Offer.Version, "")
	}
	return nil
}

// move upgrades (or rolls back) in to v; its next check-in reports it. On
// Halted the insiders' databases find their collation order changed.
func (d *Demo) move(in *installation, to release.Version, detail string) {
	now := time.Now().UTC()
	in.pending = append(in.pending,
		release.Event{Kind: release.EventUpgradeStarted, From: in.version, To: to, At: now, Detail: detail},
		release.Event{Kind: release.EventUpgradeSucceeded, From: in.version, To: to, At: now})
	d.cfg.Logger.Debug("demo installation upgraded", slog.String("instance", in.id), slog.String("from", in.version.String()), slog.String("to", to.String()))
	in.version, in.health = to, release.Health{Status: release.HealthOK}
	if to == v(Halted) {
		msg := "collation en_US.utf8: sort order of 37 probe strings changed (glibc → musl); unique index customers_email_key at risk"
		in.health = release.Health{Status: release.HealthCollationChanged, Detail: msg}
		in.pending = append(in.pending, release.Event{Kind: release.EventIntegrityFailed, To: to, At: now, Detail: msg})
	}
}
