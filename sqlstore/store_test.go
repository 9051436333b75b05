package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestStore runs every store test on SQLite and on PostgreSQL (one cluster,
// a database per test).
func TestStore(t *testing.T) {
	onBothDialects(t, "store", []storeTest{
		{"Catalog", testCatalog},
		{"RefusesNewerSchema", testRefusesNewerSchema},
		{"ConcurrentReleaseChanges", testConcurrentReleaseChanges},
		{"HaltCounts", testHaltCounts},
		{"FirstSeen", testFirstSeen},
		{"CheckInBatch", testCheckInBatch},
		{"Adoption", testAdoption},
		{"SealedSigningKeys", testSealedSigningKeys},
		{"Bundles", testBundles},
		{"QuotaCounts", testQuotaCounts},
		{"UpdateSeesConcurrentChange", withStore(testUpdateSeesConcurrentChange)},
	})
}

// testUpdateSeesConcurrentChange: of two read-modify-writes of one row,
// the second reads what the first wrote (on PostgreSQL its SELECT waits for
// the first's row lock), so a check of the old value (If-Match) refuses it
// instead of both succeeding and the first change being lost.
func testUpdateSeesConcurrentChange(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "early", Position: 0, RolloutPercent: 100}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "late", Position: 1, RolloutPercent: 100}))(t)
	check(s.CreateCustomer(ctx, "alice", release.Customer{Product: "acme", Name: "bank", Ring: "early"}))(t)
	entered, proceed, first := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := s.UpdateCustomer(ctx, "alice", "acme", "bank", func(c *release.Customer) error {
			close(entered)
			<-proceed
			c.Ring = "late"
			return nil
		})
		first <- err
	}()
	<-entered
	var seen string
	second := make(chan error, 1)
	go func() {
		_, err := s.UpdateCustomer(ctx, "bob", "acme", "bank", func(c *release.Customer) error {
			seen = c.Ring
			if c.Ring != "early" { // what bob read before: his If-Match
				return release.Errorf(release.ECONFLICT, "changed meanwhile")
			}
			c.Ring = "early"
			return nil
		})
		second <- err
	}()
	time.Sleep(300 * time.Millisecond) // room for bob's read to go first, were it not held back
	close(proceed)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; release.ErrorCode(err) != release.ECONFLICT || seen != "late" {
		t.Fatalf("the second update read %q and returned %v; want it to see the first's change and refuse", seen, err)
	}
	if c := check(s.GetCustomer(ctx, "acme", "bank"))(t); c.Ring != "late" {
		t.Fatalf("customer in %s, want the first change kept", c.Ring)
	}
}

// storeTest is one store test: fn gets the store and the DSN it was opened
// with.
type storeTest struct {
	name string
	fn   func(t *testing.T, dsn string, s *sqlstore.Store)
}

// withStore adapts a test that needs only the store.
func withStore(fn func(*testing.T, *sqlstore.Store)) func(*testing.T, string, *sqlstore.Store) {
	return func(t *testing.T, _ string, s *sqlstore.Store) { fn(t, s) }
}

// onBothDialects runs each test as subtests sqlite/NAME, on a fresh SQLite
// file, and postgres/NAME, on a fresh database (prefix and the test's
// index) of one PostgreSQL cluster.
func onBothDialects(t *testing.T, prefix string, tests []storeTest) {
	t.Run("sqlite", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				dsn := filepath.Join(t.TempDir(), "ringfence.db")
				tc.fn(t, dsn, mustOpen(t, dsn))
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		c := pgtest.New(t)
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("%s%d", prefix, i)
				c.CreateDatabase(name)
				dsn := c.DSN(name)
				tc.fn(t, dsn, mustOpen(t, dsn))
			})
		}
	})
}

func mustOpen(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// check fails the test on err and returns v.
func check[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// check2 is check for two values.
func check2[A, B any](a A, b B, err error) func(*testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// testCatalog exercises the catalog, releases, check-in records, auto-halt,
// promotions, tokens, the audit log and pruning.
func testCatalog(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	p := check(s.CreateProduct(ctx, "alice", release.Product{Name: "acme", RequiredGates: []string{"upgrade-test"}}))(t)
	if p.Policy != release.DefaultPolicy() {
		t.Errorf("new product policy = %+v, want the default", p.Policy)
	}
	if _, err := s.CreateProduct(ctx, "alice", release.Product{Name: "acme"}); release.ErrorCode(err) != release.ECONFLICT {
		t.Errorf("second create: %v, want conflict", err)
	}
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "insiders", Position: 0, SoakTime: time.Hour, RolloutPercent: 100, MinHealthy: 1}))(t)
	check(s.CreateRing(ctx, "alice", release.Ring{Product: "acme", Name: "stable", Position: 1, RolloutPercent: 50}))(t)
	check(s.CreateCustomer(ctx, "alice", release.Customer{Product: "acme", Name: "bigbank", Ring: "insiders"}))(t)
	if _, err := s.CreateCustomer(ctx, "alice", release.Customer{Product: "acme", Name: "x", Ring: "nope"}); release.ErrorCode(err) != release.ENOTFOUND {
		t.Errorf("customer in unknown ring: %v, want not_found", err)
	}
	key, secret := func() (release.EnrollmentKey, string) {
		k, sec, err := s.CreateEnrollmentKey(ctx, "alice", "acme", "bigbank")
		if err != nil {
			t.Fatal(err)
		}
		return k, sec
	}()
	live := check(s.LiveEnrollmentKeys(ctx))(t)
	if got := live[[32]byte(sqlstore.HashSecret(secret))]; got.ID != key.ID || got.Customer != "bigbank" || got.Product != "acme" {
		t.Errorf("live key for the secret = %+v, want %+v", got, key)
	}
	v := release.MustParseVersion("3.30.0")
	check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: release.MustParseVersion("3.29.0")}))(t)
	check(s.CreateRelease(ctx, "bob", release.Release{Product: "acme", Version: v, RollbackSafeTo: release.MustParseVersion("3.29.0")}))(t)
	check(s.PostGateResult(ctx, release.GateResult{Product: "acme", Version: v, Name: "upgrade-test", Status: release.GatePass, PostedBy: "ci"}))(t)
	paused := check(s.ChangeRelease(ctx, "bob", "release.pause", "looks wrong", "acme", v, func(r *release.Release, _ []release.Release) error {
		return r.Pause("bob", "looks wrong", "", time.Now())
	}))(t)
	if paused.Status != release.StatusPaused || paused.Paused == nil || paused.Paused.Reason != "looks wrong" {
		t.Errorf("paused release = %+v", paused)
	}
	got := check(s.GetRelease(ctx, "acme", v))(t)
	if got.Status != release.StatusPaused || got.Paused.Reason != "looks wrong" || got.RollbackSafeTo.String() != "3.29.0" {
		t.Errorf("stored paused release = %+v", got)
	}
	check(s.ChangeRelease(ctx, "bob", "release.resume", "false alarm", "acme", v, func(r *release.Release, _ []release.Release) error { return r.Resume() }))(t)

	if r := check(s.GetRelease(ctx, "acme", v))(t); r.ResumedAt == nil {
		t.Errorf("resumed release has no resumed_at: %+v", r)
	}
	// Evidence whose window began before the resume does not halt (the
	// caller read the release before it was resumed).
	if stale, _ := check2(s.AutoHalt(ctx, "acme", v, release.Evidence{Reason: "old", Since: time.Now().Add(-time.Hour)}, nil))(t); stale {
		t.Errorf("auto-halt on evidence from before the resume")
	}
	// Auto-halt acts once, even when asked twice (two servers).
	ev := release.Evidence{Reason: "3 of 3 failed", Since: time.Now()}
	halted, _ := check2(s.AutoHalt(ctx, "acme", v, ev, nil))(t)
	again, _ := check2(s.AutoHalt(ctx, "acme", v, ev, nil))(t)
	if !halted || again {
		t.Errorf("auto-halt twice: first %v, second %v; want true, false", halted, again)
	}

	now := time.Now().UTC()
	recs := []sqlstore.CheckInRecord{
		{Product: "acme", Customer: "bigbank", InstanceID: "i1", Version: v, Health: &release.Health{Status: release.HealthOK}, ReceivedAt: now},
		{Product: "acme", Customer: "bigbank", InstanceID: "i2", Version: v, Health: &release.Health{Status: release.HealthCorrupt, Detail: "index x"}, ReceivedAt: now,
			Events: []release.Event{{Kind: release.EventUpgradeFailed, From: release.MustParseVersion("3.29.0"), To: v, At: now, Detail: "boom"}}},
	}
	if err := s.RecordCheckIns(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A later check-in on another version without health resets it.
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{{Product: "acme", Customer: "bigbank", InstanceID: "i1", Version: release.MustParseVersion("3.29.0"), ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	// One batch with the same installation twice: the latest wins, an
	// earlier health report of the same version is kept.
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{
		{Product: "acme", Customer: "bigbank", InstanceID: "i3", Version: v, Health: &release.Health{Status: release.HealthCorrupt}, ReceivedAt: now},
		{Product: "acme", Customer: "bigbank", InstanceID: "i3", Version: v, ReceivedAt: now.Add(time.Millisecond)},
	}); err != nil {
		t.Fatalf("batch with one installation twice: %v", err)
	}
	// i2 reports again, now known on v; the same instance id under another
	// customer is another installation, new to the store.
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{
		{Product: "acme", Customer: "bigbank", InstanceID: "i2", Version: v, ReceivedAt: now,
			Events: []release.Event{{Kind: release.EventIntegrityFailed, To: v, At: now}}},
		{Product: "acme", Customer: "other", InstanceID: "i2", Version: v, ReceivedAt: now,
			Events: []release.Event{{Kind: release.EventIntegrityFailed, To: v, At: now}}},
	}); err != nil {
		t.Fatal(err)
	}
	events, reports := check2(s.HaltEvidence(ctx, "acme", v, now.Add(-time.Minute)))(t)
	type seen struct {
		id, customer string
		kind         release.EventKind
		seenOn       string
	}
	var gotEvents []seen
	for _, e := range events {
		gotEvents = append(gotEvents, seen{e.InstanceID, e.Customer, e.Kind, e.SeenOn.String()})
	}
	wantEvents := []seen{
		{"i2", "bigbank", release.EventUpgradeFailed, ""}, // first check-in: unknown before
		{"i2", "bigbank", release.EventIntegrityFailed, v.String()},
		{"i2", "other", release.EventIntegrityFailed, ""},
	}
	if !slices.Equal(gotEvents, wantEvents) {
		t.Errorf("halt events = %+v, want %+v", gotEvents, wantEvents)
	}
	if len(reports) != 2 || reports[0].Health.Status != release.HealthCorrupt || reports[1].InstanceID != "i3" ||
		reports[0].Customer != "bigbank" || !reports[0].SeenOn.IsZero() {
		t.Errorf("halt health reports = %+v", reports)
	}
	facts := check(s.LoadFacts(ctx))(t)
	facts.Adoption, facts.RingSizes = check2(s.CountAdoption(ctx, false))(t)
	if len(facts.Products) != 1 || len(facts.Rings) != 2 || len(facts.Customers) != 1 || len(facts.Releases) != 2 || len(facts.GateResults) != 1 {
		t.Errorf("facts = %+v", facts)
	}
	var found bool
	for _, a := range facts.Adoption {
		if a.Version == v && a.Ring == "insiders" {
			found = true
			if a.Installations != 2 || a.Healthy != 0 || a.Failed != 2 {
				t.Errorf("adoption of 3.30.0 = %+v, want 2 installed, 2 failed", a)
			}
		}
	}
	if !found {
		t.Errorf("no adoption for 3.30.0 in %+v", facts.Adoption)
	}
	insts := check(s.ListInstallations(ctx, "acme", 10))(t)
	if len(insts) != 4 { // i1, i2, i3 of bigbank, i2 of other
		t.Errorf("installations = %+v", insts)
	}
	for _, in := range insts {
		if in.InstanceID == "i1" && (in.Health.Status != release.HealthUnknown || in.Version.String() != "3.29.0" || in.Ring != "insiders") {
			t.Errorf("i1 after moving to 3.29.0 without health = %+v", in)
		}
		if in.InstanceID == "i3" && (in.Health.Status != release.HealthCorrupt || !in.LastSeen.Truncate(time.Microsecond).Equal(now.Add(time.Millisecond).Truncate(time.Microsecond))) {
			t.Errorf("i3 after a batch with it twice = %+v", in)
		}
	}

	// Another customer's check-in with the same instance id touches only
	// its own row.
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{{Product: "acme", Customer: "intruder", InstanceID: "i2",
		Version: release.MustParseVersion("3.29.0"), Health: &release.Health{Status: release.HealthOK}, ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	for _, in := range check(s.ListInstallations(ctx, "acme", 10))(t) {
		if in.InstanceID == "i2" && in.Customer == "bigbank" && (in.Version != v || in.Health.Status != release.HealthCorrupt) {
			t.Errorf("bigbank's i2 changed by another customer's check-in: %+v", in)
		}
	}

	// Promotions are recorded once.
	due := []release.Due{{Product: "acme", Version: release.MustParseVersion("3.29.0"), Promotion: release.Promotion{Ring: "insiders", EnteredAt: now}}}
	if n := check(s.RecordPromotions(ctx, due))(t); n != 1 {
		t.Errorf("first RecordPromotions recorded %d, want 1", n)
	}
	if n := check(s.RecordPromotions(ctx, due))(t); n != 0 {
		t.Errorf("second RecordPromotions recorded %d, want 0", n)
	}

	tok, tsecret, err := s.CreateToken(ctx, "setup", "alice", release.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, tsecret); err != nil || got.ID != tok.ID || got.Role != release.RoleAdmin {
		t.Errorf("Authenticate = %+v, %v", got, err)
	}
	if err := s.RevokeToken(ctx, "alice", tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tsecret); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Errorf("revoked token authenticates: %v", err)
	}
	if err := s.RevokeToken(ctx, "alice", tok.ID); release.ErrorCode(err) != release.ECONFLICT {
		t.Errorf("second revoke of a token: %v, want conflict", err)
	}
	if err := s.RevokeEnrollmentKey(ctx, "alice", "acme", "bigbank", key.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := check(s.LiveEnrollmentKeys(ctx))(t)[[32]byte(sqlstore.HashSecret(secret))]; ok {
		t.Errorf("revoked enrollment key is still live")
	}
	if ks := check(s.ListEnrollmentKeys(ctx, "acme", "bigbank"))(t); len(ks) != 1 || ks[0].RevokedAt == nil {
		t.Errorf("enrollment keys after revoke = %+v, want one, revoked", ks)
	}
	if err := s.RevokeEnrollmentKey(ctx, "alice", "acme", "bigbank", key.ID); release.ErrorCode(err) != release.ECONFLICT {
		t.Errorf("second revoke of an enrollment key: %v, want conflict", err)
	}
	log := check(s.ListAudit(ctx, 0, 1000))(t)
	actions := map[string]int{}
	for _, e := range log {
		actions[e.Action]++
	}
	for _, a := range []string{"product.create", "ring.create", "customer.create", "enrollment_key.create", "release.create",
		"gate.post", "release.pause", "release.resume", "release.auto_halt", "release.promote", "token.create", "token.revoke", "enrollment_key.revoke"} {
		if actions[a] == 0 {
			t.Errorf("audit log lacks %s: %v", a, actions)
		}
	}
	if actions["release.auto_halt"] != 1 {
		t.Errorf("auto-halt audited %d times, want 1", actions["release.auto_halt"])
	}
	for _, e := range log {
		if e.Action == "release.resume" && e.Reason != "false alarm" {
			t.Errorf("resume audited with reason %q", e.Reason)
		}
		if e.Action == "release.pause" && (statusOf(t, e.Before) != "ok" || statusOf(t, e.After) != "paused") {
			t.Errorf("pause audit before/after = %s / %s", e.Before, e.After)
		}
	}
	if n, err := s.Prune(ctx, now.Add(time.Hour)); err != nil || n < 4 {
		t.Errorf("Prune = %d, %v; want at least 4 rows", n, err)
	}
}

// statusOf returns the "status" member of a JSON object.
func statusOf(t *testing.T, doc json.RawMessage) string {
	t.Helper()
	var v struct{ Status string }
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("audit document %s: %v", doc, err)
	}
	return v.Status
}

// testRefusesNewerSchema checks that a database migrated by a newer
// ringfence is not touched.
func testRefusesNewerSchema(t *testing.T, dsn string, s *sqlstore.Store) {
	s.Close()
	driver := "sqlite"
	if s.Dialect() == sqlstore.Postgres {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlstore.Open(context.Background(), dsn)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: %v, want a refusal", err)
	}
}

// testConcurrentReleaseChanges races a resume of a paused release against a
// pull of it: the pull starts while the resume's transaction has read the
// release but not written it. The pull must see the resume (or the other
// way round), never have its status overwritten: the release ends pulled.
func testConcurrentReleaseChanges(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	v := release.MustParseVersion("2.0.0")
	check(s.CreateProduct(ctx, "admin", release.Product{Name: "acme"}))(t)
	check(s.CreateRelease(ctx, "admin", release.Release{Product: "acme", Version: v}))(t)
	check(s.ChangeRelease(ctx, "admin", "release.pause", "stop", "acme", v, func(r *release.Release, _ []release.Release) error {
		return r.Pause("admin", "stop", "", time.Now())
	}))(t)

	resumeRead, resumeGo := make(chan struct{}), make(chan struct{})
	resumed := make(chan error, 1)
	go func() {
		_, err := s.ChangeRelease(ctx, "alice", "release.resume", "", "acme", v, func(r *release.Release, _ []release.Release) error {
			close(resumeRead)
			<-resumeGo
			return r.Resume()
		})
		resumed <- err
	}()
	<-resumeRead
	pulled := make(chan error, 1)
	go func() {
		_, err := s.ChangeRelease(ctx, "bob", "release.pull", "corrupts", "acme", v, func(r *release.Release, others []release.Release) error {
			return r.Pull(release.Pull{Reason: "corrupts", Action: release.ActionHold, By: "bob"}, others, time.Now())
		})
		pulled <- err
	}()
	time.Sleep(200 * time.Millisecond) // the pull runs as far as it can
	close(resumeGo)
	if err := <-resumed; err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := <-pulled; err != nil {
		t.Fatalf("pull after resume: %v", err)
	}
	r := check(s.GetRelease(ctx, "acme", v))(t)
	if r.Status != release.StatusPulled || r.Pulled == nil || r.Pulled.By != "bob" {
		t.Fatalf("after resume and pull: status %s, pull %+v; want pulled by bob", r.Status, r.Pulled)
	}
}

// TestOpenExistingAndForeignDatabases: OpenExisting creates nothing and
// wants the current schema; neither Open nor OpenExisting uses a database
// that holds tables but no ringfence schema version.
func TestOpenExistingAndForeignDatabases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	if _, err := sqlstore.OpenExisting(ctx, missing); err == nil {
		t.Fatal("OpenExisting of a missing file succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("OpenExisting created %s: %v", missing, err)
	}

	empty := filepath.Join(dir, "empty.db")
	db, err := sql.Open("sqlite", empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(empty, 0o600); err != nil { // a store must be private
		t.Fatal(err)
	}
	if _, err := sqlstore.OpenExisting(ctx, empty); err == nil || !strings.Contains(err.Error(), "no ringfence schema") {
		t.Fatalf("OpenExisting of an empty database: %v, want a refusal", err)
	}

	good := filepath.Join(dir, "ringfence.db")
	mustOpen(t, good).Close()
	s, err := sqlstore.OpenExisting(ctx, good)
	if err != nil {
		t.Fatalf("OpenExisting of a migrated store: %v", err)
	}
	s.Close()

	foreign := filepath.Join(dir, "foreign.db")
	db, err = sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(context.Context, string) (*sqlstore.Store, error){"Open": sqlstore.Open, "OpenExisting": sqlstore.OpenExisting} {
		if _, err := open(ctx, foreign); err == nil || !strings.Contains(err.Error(), "not a ringfence store") {
			t.Errorf("%s of a foreign database: %v, want a refusal", name, err)
		}
	}
	db, err = sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("foreign database has %d tables after the refusals (%v), want its 1", n, err)
	}
}

// testHaltCounts checks that the store's SQL counts of auto-halt evidence
// agree with release.CountHalt over the same rows, on a mix of known and
// unknown installations, customers sharing instance ids, repeated
// failures, health reports and rows of other versions.
func testHaltCounts(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	v, from, other := release.MustParseVersion("2.0.0"), release.MustParseVersion("1.9.0"), release.MustParseVersion("1.0.0")
	start := time.Now().UTC().Add(-time.Minute)
	rec := func(customer, id string, on release.Version, health release.HealthStatus, events ...release.Event) sqlstore.CheckInRecord {
		r := sqlstore.CheckInRecord{Product: "acme", Customer: customer, InstanceID: id, Version: on, Events: events, ReceivedAt: time.Now().UTC()}
		if health != "" {
			r.Health = &release.Health{Status: health, Detail: "d-" + id}
		}
		return r
	}
	failed := release.Event{Kind: release.EventUpgradeFailed, From: from, To: v, At: start, Detail: "boom"}
	succeeded := release.Event{Kind: release.EventUpgradeSucceeded, From: from, To: v, At: start}
	integrity := release.Event{Kind: release.EventIntegrityFailed, To: v, At: start}
	batches := [][]sqlstore.CheckInRecord{
		// Known installations first check in on the from version.
		{rec("a", "i1", from, ""), rec("a", "i2", from, ""), rec("b", "i1", from, ""), rec("b", "i3", from, ""), rec("c", "i4", other, ""), rec("c", "i5", v, "")},
		{
			rec("a", "i1", from, "", failed, failed), // counts once
			rec("a", "i2", v, "", succeeded),         // moved, not failed
			rec("b", "i1", from, "", failed),         // same id, other customer
			rec("b", "i3", v, release.HealthCorrupt), // failing health, known
			rec("c", "i4", from, "", failed),         // known on neither from nor v: ignored
			rec("c", "i5", v, "", integrity),         // known on v
			rec("d", "new", from, "", failed),        // first check-in: ignored
			rec("d", "new2", v, release.HealthCollationChanged),
			rec("a", "x", from, "", release.Event{Kind: release.EventUpgradeFailed, From: other, To: from, At: start}), // another version
		},
	}
	for _, b := range batches {
		if err := s.RecordCheckIns(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Add(time.Second)
	got := check(s.HaltCounts(ctx, "acme", v, start, now))(t)
	events, reports := check2(s.HaltEvidence(ctx, "acme", v, start))(t)
	want := release.CountHalt(v, events, reports, start, now)
	if !slices.Equal(got.ByCustomer, want.ByCustomer) {
		t.Errorf("SQL counts per customer %+v; CountHalt: %+v", got.ByCustomer, want.ByCustomer)
	}
	if got.Moved != want.Moved || got.Failed != want.Failed || got.Customers != want.Customers || got.Ignored != want.Ignored {
		t.Errorf("SQL counts moved %d failed %d customers %d ignored %d; CountHalt: %d %d %d %d",
			got.Moved, got.Failed, got.Customers, got.Ignored, want.Moved, want.Failed, want.Customers, want.Ignored)
	}
	if want.Moved != 5 || want.Failed != 4 || want.Customers != 3 || want.Ignored != 3 {
		t.Errorf("CountHalt = %+v, want 5 moved, 4 failed of 3 customers, 3 ignored", want)
	}
	key := func(fs []release.Failure) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Customer+"/"+f.InstanceID+"/"+f.Kind)
		}
		slices.Sort(out)
		return out
	}
	if g, w := key(got.Failures), key(want.Failures); !slices.Equal(g, w) {
		t.Errorf("SQL failures %v, CountHalt %v", g, w)
	}
	// Nothing in a window that ends before the evidence.
	if c := check(s.HaltCounts(ctx, "acme", v, start.Add(-time.Hour), start)); c(t).Failed != 0 {
		t.Errorf("failures counted outside the window")
	}
}

// TestAuthenticateWhileStoreBusy: recording a token's last use is
// best-effort; a store whose writer is busy does not fail (or long delay)
// the request.
func TestAuthenticateWhileStoreBusy(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "ringfence.db")
	s := mustOpen(t, dsn)
	tok, secret := check2(s.CreateToken(ctx, "test", "ci", release.RoleReleaser))(t)
	// Another process holds the write lock.
	other, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	start := time.Now()
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID {
		t.Fatalf("Authenticate with the store's writer busy: %+v, %v; want the token", got, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Authenticate took %s with the store busy, want the last-use write bounded", d)
	}
	if got.LastUsedAt != nil {
		t.Errorf("last use reported as recorded although the write could not happen: %v", got.LastUsedAt)
	}
}

// testFirstSeen: an installation's first_seen is its earliest check-in,
// also when the writer coalesced check-ins (FirstSeen) or one batch holds
// several of its records; later check-ins do not move it.
func testFirstSeen(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	v := release.MustParseVersion("1.0.0")
	t1 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	t2, t3 := t1.Add(time.Minute), t1.Add(2*time.Minute)
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{
		{Product: "acme", Customer: "a", InstanceID: "coalesced", Version: v, ReceivedAt: t2, FirstSeen: t1},
		{Product: "acme", Customer: "a", InstanceID: "twice", Version: v, ReceivedAt: t1},
		{Product: "acme", Customer: "a", InstanceID: "twice", Version: v, ReceivedAt: t2},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCheckIns(ctx, []sqlstore.CheckInRecord{{Product: "acme", Customer: "a", InstanceID: "twice", Version: v, ReceivedAt: t3}}); err != nil {
		t.Fatal(err)
	}
	for _, in := range check(s.ListInstallations(ctx, "acme", 10))(t) {
		if !in.FirstSeen.Equal(t1) {
			t.Errorf("%s: first seen %s, want %s", in.InstanceID, in.FirstSeen, t1)
		}
	}
}
