package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// testBundles: bundle sequences grow per customer; an import records its new
// reports once, under the check-in rules, and acknowledges them in the next
// bundle; a second key for the same installation is refused.
func testBundles(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "stable", Position: 0, RolloutPercent: 100}))(t)
	for _, c := range []string{"bank", "gov"} {
		check(s.CreateCustomer(ctx, "alice", release.Customer{Product: "acme", Name: c, Ring: "stable"}))(t)
	}
	now := time.Now().UTC()
	rec := func(c string) sqlstore.BundleRecord {
		return sqlstore.BundleRecord{Product: "acme", Customer: c, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for i, want := range []int64{1, 2, 3} {
		seq, _, err := s.NextBundle(ctx, "alice", rec("bank"))
		if err != nil || seq != want {
			t.Fatalf("bundle %d of bank: sequence %d, %v; want %d", i, seq, err, want)
		}
	}
	if seq, _, err := s.NextBundle(ctx, "alice", rec("gov")); err != nil || seq != 1 {
		t.Fatalf("first bundle of gov: %d, %v; want 1", seq, err)
	}
	if _, _, err := s.NextBundle(ctx, "alice", rec("nobody")); release.ErrorCode(err) != release.ENOTFOUND {
		t.Fatalf("bundle of an unknown customer: %v", err)
	}

	from, to := release.MustParseVersion("1.0.0"), release.MustParseVersion("2.0.0")
	key := bytes.Repeat([]byte{7}, 32)
	imp := sqlstore.ExportImport{ID: "export-1", Product: "acme", Customer: "bank", InstanceID: "site-1", PublicKey: key, ReceivedAt: now,
		Reports: []release.Report{
			{Seq: 1, At: now, Version: from},
			{Seq: 2, At: now, Version: from, Events: []release.Event{{Kind: release.EventUpgradeFailed, From: from, To: to, At: now}}},
		}}
	res := check(s.ImportExport(ctx, "alice", imp))(t)
	if res.Duplicate || res.Recorded != 2 || res.Events != 1 || res.Through != 2 || len(res.Failing) != 1 || res.Failing[0] != to {
		t.Fatalf("first import: %+v", res)
	}
	// The same file again records nothing.
	if res := check(s.ImportExport(ctx, "alice", imp))(t); !res.Duplicate || res.Recorded != 0 || res.Through != 2 {
		t.Fatalf("second import of the same file: %+v", res)
	}
	// A later file repeating report 2 records only report 3.
	imp2 := imp
	imp2.ID = "export-2"
	imp2.Reports = append(imp.Reports[1:], release.Report{Seq: 3, At: now, Version: from})
	if res := check(s.ImportExport(ctx, "alice", imp2))(t); res.Recorded != 1 || res.Events != 0 || res.Through != 3 {
		t.Fatalf("overlapping import: %+v", res)
	}
	// The failure counts for auto-halt: the installation was known on 1.0.0.
	c := check(s.HaltCounts(ctx, "acme", to, now.Add(-time.Minute), now.Add(time.Minute)))(t)
	if c.Failed != 1 || c.Customers != 1 || c.Ignored != 0 {
		t.Fatalf("halt counts after import: %+v", c)
	}
	// The next bundle acknowledges the reports.
	_, acks, err := s.NextBundle(ctx, "alice", rec("bank"))
	if err != nil || len(acks) != 1 || acks[0] != (release.ExportAck{InstanceID: "site-1", Through: 3}) {
		t.Fatalf("acknowledgements: %+v, %v", acks, err)
	}
	if _, acks, _ := s.NextBundle(ctx, "alice", rec("gov")); len(acks) != 0 {
		t.Fatalf("another customer's bundle acknowledges %+v", acks)
	}
	// Another key, or another customer, for the same installation: refused.
	forged := imp
	forged.ID, forged.PublicKey = "export-3", bytes.Repeat([]byte{8}, 32)
	if _, err := s.ImportExport(ctx, "alice", forged); release.ErrorCode(err) != release.EFORBIDDEN {
		t.Fatalf("import signed by another key: %v", err)
	}
	forged.PublicKey, forged.Customer = key, "gov"
	if _, err := s.ImportExport(ctx, "alice", forged); release.ErrorCode(err) != release.EFORBIDDEN {
		t.Fatalf("import for another customer: %v", err)
	}

	// Exactly as check-ins: the same reports imported (release 4.0.0) and
	// checked in (release 5.0.0) give the same auto-halt counts, including
	// an installation whose first report already fails (not counted).
	later := now.Add(time.Second)
	for i, twin := range []struct {
		to        release.Version
		viaExport bool
	}{{release.MustParseVersion("4.0.0"), true}, {release.MustParseVersion("5.0.0"), false}} {
		failed := release.Event{Kind: release.EventUpgradeFailed, From: from, To: twin.to, At: later}
		shapes := map[string][]release.Report{
			"known":  {{Seq: 1, At: later, Version: from}, {Seq: 2, At: later, Version: from, Events: []release.Event{failed}}},
			"first":  {{Seq: 1, At: later, Version: from, Events: []release.Event{failed}}},
			"health": {{Seq: 1, At: later, Version: twin.to}, {Seq: 2, At: later, Version: twin.to, Health: &release.Health{Status: release.HealthCorrupt}}},
		}
		for name, reports := range shapes {
			id := fmt.Sprintf("%s-%d", name, i)
			if twin.viaExport {
				check(s.ImportExport(ctx, "alice", sqlstore.ExportImport{ID: "twin-" + id, Product: "acme", Customer: "gov", InstanceID: id,
					PublicKey: bytes.Repeat([]byte{byte(i)}, 32), Reports: reports, ReceivedAt: later}))(t)
				continue
			}
			for _, r := range reports {
				must(t, s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{{Product: "acme", Customer: "gov", InstanceID: id,
					Version: r.Version, Health: r.Health, Events: r.Events, ReceivedAt: later}}))
			}
		}
	}
	imported := check(s.HaltCounts(ctx, "acme", release.MustParseVersion("4.0.0"), now, later.Add(time.Minute)))(t)
	checkedIn := check(s.HaltCounts(ctx, "acme", release.MustParseVersion("5.0.0"), now, later.Add(time.Minute)))(t)
	if imported.Moved != checkedIn.Moved || imported.Failed != checkedIn.Failed || imported.Customers != checkedIn.Customers ||
		imported.Ignored != checkedIn.Ignored || imported.Failed != 2 || imported.Ignored != 1 {
		t.Fatalf("imported counts %+v, checked-in counts %+v; want equal, 2 failed, 1 ignored", imported, checkedIn)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
