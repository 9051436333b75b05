package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// testCheckInBatch checks what one batch of check-ins records, on both
// stores: which installations it created, the version each event and
// failing health report was seen on (an earlier record of the batch before
// the stored version), events in arrival order, and, on PostgreSQL, whose
// batch goes to the server as one pipelined implicit transaction, that a
// batch one of whose statements fails leaves nothing behind.
func testCheckInBatch(t *testing.T, _ string, s *sqlstore.Store) {
	ctx := context.Background()
	v1, v2 := release.MustParseVersion("1.0.0"), release.MustParseVersion("2.0.0")
	now := time.Now().UTC()
	rec := func(customer, id string, v release.Version, at time.Duration, events ...release.Event) sqlstore.CheckInRecord {
		return sqlstore.CheckInRecord{Product: "acme", Customer: customer, InstanceID: id, Version: v, Events: events, ReceivedAt: now.Add(at)}
	}
	moved := func(kind release.EventKind, detail string) release.Event {
		return release.Event{Kind: kind, From: v1, To: v2, At: now, Detail: detail}
	}
	// "known" is stored on 1.0.0 before the batch.
	check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{rec("a", "known", v1, 0)}))(t)

	known := rec("a", "known", v2, time.Millisecond, moved(release.EventUpgradeFailed, "known 1"))
	known.Health = &release.Health{Status: release.HealthCorrupt, Detail: "index x"}
	created := check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{
		rec("a", "twice", v1, 0),
		rec("a", "twice", v2, time.Millisecond, moved(release.EventUpgradeSucceeded, "twice 1")),
		known,
		rec("a", "new", v2, time.Millisecond, moved(release.EventUpgradeFailed, "new 1"), moved(release.EventIntegrityFailed, "new 2")),
		rec("b", "known", v2, time.Millisecond, moved(release.EventUpgradeFailed, "other customer's 1")),
	}))(t)
	wantCreated := []sqlstore.InstallationRef{{"acme", "a", "twice"}, {"acme", "a", "new"}, {"acme", "b", "known"}}
	if !sameRefs(created, wantCreated) {
		t.Errorf("created %v, want %v", created, wantCreated)
	}

	events, reports := check2(s.HaltEvidence(ctx, "acme", v2, now.Add(-time.Minute)))(t)
	type seen struct{ detail, seenOn string }
	var got []seen
	for _, e := range events {
		got = append(got, seen{e.Detail, e.SeenOn.String()})
	}
	want := []seen{
		{"twice 1", "1.0.0"}, // the batch's earlier record, though the store has none
		{"known 1", "1.0.0"}, // the stored version
		{"new 1", ""},        // unknown before
		{"new 2", ""},
		{"other customer's 1", ""}, // the same instance id of another customer is another installation
	}
	if !slices.Equal(got, want) {
		t.Errorf("events (detail, seen on) in id order = %v, want %v", got, want)
	}
	if len(reports) != 1 || reports[0].InstanceID != "known" || reports[0].SeenOn != v1 {
		t.Errorf("health reports = %+v, want one of known seen on 1.0.0", reports)
	}

	// Text comes back byte for byte (the SQLite batch is JSON text), and a
	// stored time equals the same time passed as a parameter.
	odd := "quote \" backslash \\ tab\t newline\n é 😀 <&>"
	at := now.Add(time.Hour).Truncate(time.Microsecond)
	check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{{Product: "acme", Customer: "a", InstanceID: odd, Version: v1, ReceivedAt: at,
		Events: []release.Event{{Kind: release.EventUpgradeStarted, To: v1, At: at, Detail: odd}}}}))(t)
	if evs := check(s.ListEvents(ctx, "acme", 1))(t); len(evs) != 1 || evs[0].Detail != odd || evs[0].InstanceID != odd || !evs[0].At.Equal(at) {
		t.Errorf("newest event = %+v, want instance and detail %q at %s", evs, odd, at)
	}
	if n := check(s.InstallationsLastSeen(ctx, at))(t); n != 1 {
		t.Errorf("%d installations last seen at %s passed as a parameter, want 1", n, at)
	}

	if s.Dialect() != sqlstore.Postgres {
		return
	}
	// PostgreSQL refuses a NUL in text: the event insert fails, and with it
	// the upsert of "lost" queued in the same round trip.
	_, err := s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{
		rec("a", "lost", v1, 0),
		rec("a", "bad", v2, 0, moved(release.EventUpgradeFailed, "nul \x00 byte")),
	})
	if err == nil {
		t.Fatal("a batch with a NUL byte in an event's detail was written")
	}
	for _, id := range []string{"lost", "bad"} {
		if ok := check(s.InstallationKnown(ctx, "acme", "a", id))(t); ok {
			t.Errorf("installation %s of the failed batch was written", id)
		}
	}
	// The connection is usable again: the next batch is written.
	check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{rec("a", "lost", v1, 0)}))(t)
	if ok := check(s.InstallationKnown(ctx, "acme", "a", "lost"))(t); !ok {
		t.Error("the batch after a failed one was not written")
	}
}

// sameRefs reports whether a and b hold the same installations, in any
// order.
func sameRefs(a, b []sqlstore.InstallationRef) bool {
	key := func(r sqlstore.InstallationRef) string { return r.Product + "/" + r.Customer + "/" + r.InstanceID }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, r := range a {
		ka[i] = key(r)
	}
	for i, r := range b {
		kb[i] = key(r)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// testAdoption: adoption sums a release's installations over the customers
// of a ring (SQLite counts one customer at a time), keeps rings apart,
// counts healthy and failed, and gives every ring its size; installations
// of customers the store does not know count nowhere.
func testAdoption(t *testing.T, _ string, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "insiders", Position: 0, RolloutPercent: 100}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "stable", Position: 1, RolloutPercent: 100}))(t)
	for _, c := range []release.Customer{{Product: "acme", Name: "a", Ring: "insiders"}, {Product: "acme", Name: "b", Ring: "insiders"},
		{Product: "acme", Name: "c", Ring: "stable"}} {
		check(s.CreateCustomer(ctx, "alice", c))(t)
	}
	v := release.MustParseVersion("1.0.0")
	check(s.CreateRelease(ctx, "alice", release.Release{Product: "acme", Version: v}))(t)
	now := time.Now().UTC()
	rec := func(customer, id, version string, h release.HealthStatus) sqlstore.CheckInRecord {
		r := sqlstore.CheckInRecord{Product: "acme", Customer: customer, InstanceID: id, ReceivedAt: now, Health: &release.Health{Status: h}}
		r.Version = release.MustParseVersion(version)
		return r
	}
	check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{
		rec("a", "a1", "1.0.0", release.HealthOK), rec("a", "a2", "1.0.0", release.HealthCorrupt),
		rec("b", "b1", "1.0.0", release.HealthOK), rec("b", "b2", "9.9.9", release.HealthOK), // no release
		rec("c", "c1", "1.0.0", release.HealthOK),
		rec("unknown", "u1", "1.0.0", release.HealthOK),
	}))(t)
	facts := check(s.LoadFacts(ctx))(t)
	facts.Adoption, facts.RingSizes = check2(s.CountAdoption(ctx, false))(t)
	got := map[string]release.Adoption{}
	for _, a := range facts.Adoption {
		got[a.Ring+" "+a.Version.String()] = a
	}
	if a := got["insiders 1.0.0"]; a.Installations != 3 || a.Failed != 1 || a.Healthy+a.HealthyUncounted != 2 {
		t.Errorf("insiders on 1.0.0 = %+v, want 3 installations (customers a and b), 1 failed, 2 healthy", a)
	}
	if a := got["stable 1.0.0"]; a.Installations != 1 {
		t.Errorf("stable on 1.0.0 = %+v, want 1", a)
	}
	if a := got["insiders 9.9.9"]; a.Installations != 1 || len(got) != 3 {
		t.Errorf("adoption = %+v, want insiders and stable on 1.0.0 and insiders on 9.9.9 (no release) only", facts.Adoption)
	}
	sizes := map[string]int{}
	for _, r := range facts.RingSizes {
		sizes[r.Ring] = r.Installations
	}
	if sizes["insiders"] != 4 || sizes["stable"] != 1 || len(sizes) != 2 {
		t.Errorf("ring sizes = %v, want insiders 4, stable 1", sizes)
	}
}
