package sqlstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestAPIFilters: the audit and installation filters of the API select in
// SQL, the same way on both dialects, and the limit counts matching rows.
func TestAPIFilters(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testAPIFilters(t, mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		c := pgtest.New(t)
		c.CreateDatabase("filters")
		testAPIFilters(t, mustOpen(t, c.DSN("filters")))
	})
}

func testAPIFilters(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	const alice, bob = "alice (tok-1)", "bob (tok-2)"
	for _, p := range []string{"acme", "acme-two"} {
		check(s.CreateProduct(ctx, alice, release.Product{Name: p, RequiredGates: []string{"upgrade-test"}, Policy: release.DefaultPolicy()}))(t)
		check(s.CreateRing(ctx, alice, release.Ring{Product: p, Name: "early", Position: 0, RolloutPercent: 100}))(t)
		check(s.CreateRing(ctx, alice, release.Ring{Product: p, Name: "stable", Position: 1, RolloutPercent: 100}))(t)
		check(s.CreateCustomer(ctx, alice, release.Customer{Product: p, Name: "bigbank", Ring: "stable"}))(t)
		check(s.CreateCustomer(ctx, alice, release.Customer{Product: p, Name: "smallco", Ring: "early"}))(t)
		for _, v := range []string{"1.0.0", "1.1.0"} {
			check(s.CreateRelease(ctx, bob, release.Release{Product: p, Version: release.MustParseVersion(v)}))(t)
		}
	}
	check(s.PostGateResult(ctx, release.GateResult{Product: "acme", Version: release.MustParseVersion("1.1.0"), Name: "upgrade-test",
		Status: release.GatePass, PostedBy: "ci (tok-3)"}))(t)
	all := check(s.QueryAudit(ctx, release.AuditFilter{Limit: 1000}))(t)
	if len(all) != 15 { // 2 × (product, 2 rings, 2 customers, 2 releases) + a gate
		t.Fatalf("audit log has %d entries", len(all))
	}

	targets := func(f release.AuditFilter) []string {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 1000
		}
		var out []string
		for _, e := range check(s.QueryAudit(ctx, f))(t) {
			out = append(out, e.Action+" "+e.Target)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    release.AuditFilter
		want []string
	}{
		{"release of a product", release.AuditFilter{Product: "acme", Release: "1.1.0"},
			[]string{"gate.post release/acme@1.1.0/gate/upgrade-test", "release.create release/acme@1.1.0"}},
		{"release of any product", release.AuditFilter{Release: "1.0.0"},
			[]string{"release.create release/acme-two@1.0.0", "release.create release/acme@1.0.0"}},
		{"action and the actions below it", release.AuditFilter{Action: "gate"}, []string{"gate.post release/acme@1.1.0/gate/upgrade-test"}},
		{"no partial action", release.AuditFilter{Action: "gat"}, nil},
		{"actor contains", release.AuditFilter{Actor: "tok-3"}, []string{"gate.post release/acme@1.1.0/gate/upgrade-test"}},
		{"actor is case-sensitive", release.AuditFilter{Actor: "ALICE", Product: "acme"}, nil},
		{"limit counts matches", release.AuditFilter{Product: "acme", Action: "ring", Limit: 1}, []string{"ring.create product/acme/ring/stable"}},
		{"no product by prefix", release.AuditFilter{Product: "acm"}, nil},
		{"since the future", release.AuditFilter{Since: time.Now().Add(time.Hour)}, nil},
	} {
		if got := targets(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	acme := targets(release.AuditFilter{Product: "acme"})
	if len(acme) != 8 || slices.ContainsFunc(acme, func(e string) bool { return strings.Contains(e, "acme-two") }) {
		t.Errorf("product acme: %q", acme)
	}
	if got := targets(release.AuditFilter{Since: all[len(all)-1].At}); len(got) != len(all) {
		t.Errorf("since the first entry: %d of %d", len(got), len(all))
	}
	// Paging with Before walks the filtered entries without gaps.
	first := check(s.QueryAudit(ctx, release.AuditFilter{Actor: "alice", Limit: 5}))(t)
	rest := check(s.QueryAudit(ctx, release.AuditFilter{Actor: "alice", Limit: 1000, Before: first[len(first)-1].ID}))(t)
	if len(first)+len(rest) != 10 || rest[0].ID >= first[4].ID {
		t.Errorf("alice's entries in two pages: %d + %d", len(first), len(rest))
	}

	// Installations: bigbank (stable) on 1.0.0 and 1.1.0, smallco (early) on 1.1.0, one corrupt.
	now := time.Now().UTC().Truncate(time.Microsecond)
	var recs []sqlstore.CheckInRecord
	for i, in := range []struct {
		customer, id, version string
		health                release.HealthStatus
	}{
		{"bigbank", "b1", "1.0.0", release.HealthOK},
		{"bigbank", "b2", "1.1.0", release.HealthOK},
		{"bigbank", "b3", "1.1.0", release.HealthCorrupt},
		{"smallco", "s1", "1.1.0", release.HealthOK},
		{"smallco", "b1", "1.1.0", release.HealthOK}, // the same instance id, another customer
	} {
		recs = append(recs, sqlstore.CheckInRecord{Product: "acme", Customer: in.customer, InstanceID: in.id,
			Version: release.MustParseVersion(in.version), Health: &release.Health{Status: in.health}, ReceivedAt: now.Add(time.Duration(i) * time.Second)})
	}
	recs = append(recs, sqlstore.CheckInRecord{Product: "acme-two", Customer: "bigbank", InstanceID: "x1",
		Version: release.MustParseVersion("1.0.0"), ReceivedAt: now})
	if err := s.RecordCheckIns(ctx, recs); err != nil {
		t.Fatal(err)
	}
	ids := func(f release.InstallationFilter) []string {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 100
		}
		var out []string
		for _, in := range check(s.QueryInstallations(ctx, "acme", f))(t) {
			out = append(out, in.Customer+"/"+in.InstanceID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    release.InstallationFilter
		want []string
	}{
		{"all, most recently seen first", release.InstallationFilter{}, []string{"smallco/b1", "smallco/s1", "bigbank/b3", "bigbank/b2", "bigbank/b1"}},
		{"version", release.InstallationFilter{Version: "1.0.0"}, []string{"bigbank/b1"}},
		{"customer", release.InstallationFilter{Customer: "smallco"}, []string{"smallco/b1", "smallco/s1"}},
		{"ring", release.InstallationFilter{Ring: "stable", Version: "1.1.0"}, []string{"bigbank/b3", "bigbank/b2"}},
		{"health", release.InstallationFilter{Health: release.HealthCorrupt}, []string{"bigbank/b3"}},
		{"limit counts matches", release.InstallationFilter{Ring: "stable", Limit: 1}, []string{"bigbank/b3"}},
		{"next page", release.InstallationFilter{Ring: "stable", Limit: 2, Offset: 1}, []string{"bigbank/b2", "bigbank/b1"}},
		{"nothing", release.InstallationFilter{Customer: "nobody"}, nil},
	} {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("installations, %s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
