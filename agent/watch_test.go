package agent_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/pgcheck"
	"github.com/ringfence/ringfence/release"
)

// checkRole creates the non-superuser role docs/pg-check.md describes in db.
func checkRole(c *pgtest.Cluster, db string) {
	c.Exec("postgres", `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ringfence_check') THEN
			CREATE ROLE ringfence_check LOGIN;
			GRANT pg_read_all_data TO ringfence_check;
		END IF; END $$`)
	c.Exec(db, `GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO ringfence_check;
		GRANT EXECUTE ON FUNCTION bt_index_parent_check(regclass, boolean) TO ringfence_check;
		GRANT EXECUTE ON FUNCTION verify_heapam(regclass, boolean, boolean, text, bigint, bigint) TO ringfence_check`)
}

// TestDatabaseWatch: an agent watching a real database as the documented
// non-superuser role records the baseline at first contact, sees the
// collation change PostgreSQL does not report, reports it once, finds the
// corruption with the deep check, and says unknown (never ok) for a
// database it cannot reach. Preflight gives each as its reason.
func TestDatabaseWatch(t *testing.T) {
	c := pgtest.New(t)
	pgtest.CollationFixture(t, c, "app")
	checkRole(c, "app")
	// A second database whose baseline lives in its own ringfence schema.
	pgtest.CollationFixture(t, c, "rec")
	checkRole(c, "rec")
	rec := c.Connect("rec")
	must(t, pgcheck.RecordFingerprints(context.Background(), rec))
	c.Exec("rec", `GRANT USAGE ON SCHEMA ringfence TO ringfence_check; GRANT SELECT ON ringfence.collation_fingerprint TO ringfence_check`)

	f := newFleetReleased(t, "1.0.0", "1.1.0")
	ctx := context.Background()
	cfg := f.config("ins-co", "1.0.0")
	cfg.DSNs = []string{c.UserDSN("ringfence_check", "app"), c.UserDSN("ringfence_check", "rec")}
	a := newAgent(t, cfg)
	res, err := a.CheckIn(ctx)
	must(t, err)
	if res.Health == nil || res.Health.Status != release.HealthOK || len(res.Databases) != 2 {
		t.Fatalf("first contact: health %+v, databases %+v", res.Health, res.Databases)
	}
	byName := func(dbs []*agent.DatabaseHealth, db string) *agent.DatabaseHealth {
		for _, d := range dbs {
			if strings.HasSuffix(d.Name, "/"+db) {
				return d
			}
		}
		t.Fatalf("no database %s in %+v", db, dbs)
		return nil
	}
	if b := byName(res.Databases, "app").Baseline; b != agent.BaselineInState {
		t.Errorf("app baseline in %q, want the state directory (the role cannot create a schema)", b)
	}
	if b := byName(res.Databases, "rec").Baseline; b != agent.BaselineInDatabase {
		t.Errorf("rec baseline in %q, want the database's own", b)
	}
	if d := a.Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 0 {
		t.Fatalf("preflight on intact databases = %+v", d)
	}
	id := instanceID(t, cfg.StateDir)

	// A deep check that cannot get through (a lock held on a checked
	// table outlasts its lock wait) found nothing, but proved nothing
	// either: the database is unknown, preflight cannot decide, and the
	// deep check runs again within the hour.
	locker := c.Connect("app")
	_, err = locker.Exec(ctx, "BEGIN; LOCK TABLE words IN ACCESS EXCLUSIVE MODE")
	must(t, err)
	held := cfg
	held.DSNs = cfg.DSNs[:1]
	held.DeepCheck = time.Hour
	held.DeepCheckTimeout = 3 * time.Second // its lock wait too
	held.StateDir = t.TempDir()
	res, err = newAgent(t, held).CheckIn(ctx)
	must(t, err)
	if app := byName(res.Databases, "app"); app.Status != release.HealthUnknown || app.DeepStatus != release.HealthUnknown ||
		!strings.Contains(app.DeepDetail, "could not be") {
		t.Fatalf("deep check behind a lock: %+v", app)
	}
	if d := newAgent(t, held).Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 2 || !slices.Contains(reasons(d), agent.ReasonDatabaseUnknown) {
		t.Fatalf("preflight after an incomplete deep check = %+v, want undecided", d)
	}
	// A preflight whose deadline cuts the deep check short keeps the
	// verdict it had: never ok from a check that did not run.
	short, cancel := context.WithTimeout(ctx, time.Second)
	cut := held
	cut.Now = func() time.Time { return time.Now().Add(61 * time.Minute) } // due again
	cutDecision := newAgent(t, cut).Preflight(short, release.MustParseVersion("1.1.0"))
	cancel()
	if cutDecision.ExitCode != 2 {
		t.Fatalf("preflight cut short during the deep check = %+v, want undecided", cutDecision)
	}
	if st := status(t, held.StateDir); len(st.Databases) != 1 || st.Databases[0].DeepStatus != release.HealthUnknown {
		t.Fatalf("after a deep check cut short: %+v", st.Databases)
	}
	_, err = locker.Exec(ctx, "ROLLBACK")
	must(t, err)
	locker.Close(ctx)
	later := held
	later.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
	res, _ = newAgent(t, later).CheckIn(ctx) // the answer, an hour early, does not verify; the watch ran before
	if app := byName(res.Databases, "app"); app.Status != release.HealthOK || app.DeepStatus != release.HealthOK {
		t.Fatalf("deep check an hour later, the lock gone: %+v", app)
	}

	// The image changes the collation under the indexes.
	c.Restart(pgtest.CodePoint)
	res, err = a.CheckIn(ctx)
	must(t, err)
	if res.Health.Status != release.HealthCollationChanged || byName(res.Databases, "app").Status != release.HealthCollationChanged ||
		byName(res.Databases, "rec").Status != release.HealthCollationChanged {
		t.Fatalf("after the collation change: health %+v", res.Health)
	}
	if res.Delivered != 2 {
		t.Fatalf("delivered %d events, want an integrity_failed per database", res.Delivered)
	}
	d := a.Preflight(ctx, release.MustParseVersion("1.1.0"))
	if d.ExitCode != 1 || !slices.Equal(reasons(d), []string{agent.ReasonCollationChanged, agent.ReasonCollationChanged}) {
		t.Fatalf("preflight after the change = %v %+v", reasons(d), d.Reasons)
	}
	// A lasting failure is reported once, not at every check-in.
	if n := len(f.events(id)); n != 2 {
		t.Fatalf("%d events on the server after three check-ins, want 2", n)
	}
	insts, err := f.admin.Installations(ctx, "acme", 0)
	must(t, err)
	if i := slices.IndexFunc(insts, func(i release.Installation) bool { return i.InstanceID == id }); i < 0 || insts[i].Health.Status != release.HealthCollationChanged {
		t.Fatalf("server's view of the installation: %+v", insts)
	}

	// The deep check (amcheck) finds the indexes corrupt.
	deep := cfg
	deep.DeepCheck = time.Hour
	deep.DSNs = cfg.DSNs[:1]
	res, err = newAgent(t, deep).CheckIn(ctx)
	must(t, err)
	app := byName(res.Databases, "app")
	if app.Status != release.HealthCorrupt || app.DeepStatus != release.HealthCorrupt || !strings.Contains(app.DeepDetail, "index_corrupt") {
		t.Fatalf("deep check: %+v", app)
	}
	d = newAgent(t, deep).Preflight(ctx, release.MustParseVersion("1.1.0"))
	if d.ExitCode != 1 || !slices.Contains(reasons(d), agent.ReasonDatabaseCorrupt) {
		t.Fatalf("preflight with a corrupt database = %+v", d)
	}
	// While it finds something, the deep check runs again hourly, not
	// weekly (the clock moved on an hour; the answer no longer verifies, but
	// the watch is kept).
	deep.DeepCheck = 7 * 24 * time.Hour
	deep.Now = func() time.Time { return time.Now().Add(61 * time.Minute) }
	res, _ = newAgent(t, deep).CheckIn(ctx)
	if again := byName(res.Databases, "app"); !again.DeepCheckAt.After(app.DeepCheckAt) || again.Status != release.HealthCorrupt {
		t.Fatalf("deep check an hour after finding corruption: %+v (before %s)", again, app.DeepCheckAt)
	}

	// A database that cannot be reached is unknown, and preflight cannot
	// decide.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	gone := f.config("ins-co", "1.0.0")
	gone.DSNs = []string{"postgres://nobody@127.0.0.1:" + itoa(port) + "/app?sslmode=disable&connect_timeout=2"}
	ga := newAgent(t, gone)
	res, err = ga.CheckIn(ctx)
	must(t, err)
	if res.Health.Status != release.HealthUnknown {
		t.Fatalf("unreachable database: health %+v, want unknown", res.Health)
	}
	d = ga.Preflight(ctx, release.MustParseVersion("1.1.0"))
	if d.ExitCode != 2 || !slices.Equal(reasons(d), []string{agent.ReasonDatabaseUnknown}) {
		t.Fatalf("preflight with an unreachable database = %+v, want undecided", d)
	}

	// The vendor ships 1.2.0, whose upgrade rebuilds the indexes, and
	// says so: it waives both findings. The upgrade to it may go; the
	// findings are printed as warnings. To 1.1.0 they still stop it.
	f.release("1.2.0", func(r *client.NewRelease) { r.Waives = []string{"collation_changed", "database_corrupt"} })
	servertest.Eventually(t, 5*time.Second, "1.2.0 offered with its waiver", func() bool {
		return a.Preflight(ctx, release.MustParseVersion("1.2.0")).ExitCode == 0
	})
	d = a.Preflight(ctx, release.MustParseVersion("1.2.0"))
	var warned []string
	for _, w := range d.Warnings {
		warned = append(warned, w.Code)
	}
	slices.Sort(warned)
	if !slices.Equal(warned, []string{agent.ReasonCollationChanged, agent.ReasonDatabaseCorrupt}) || !strings.Contains(d.Warnings[0].Message, "waived by the vendor for 1.2.0") {
		t.Fatalf("preflight to the waiving release = %+v", d)
	}
	if d := a.Preflight(ctx, release.MustParseVersion("1.1.0")); d.ExitCode != 1 || !slices.Contains(reasons(d), agent.ReasonDatabaseCorrupt) {
		t.Fatalf("preflight to 1.1.0, which waives nothing = %+v", d)
	}

	// A release needing a newer PostgreSQL than the databases run is a
	// no-go there, naming the version each runs.
	f.release("1.3.0", func(r *client.NewRelease) {
		r.Waives, r.RequiresPostgres = []string{"collation_changed", "database_corrupt"}, 99
	})
	servertest.Eventually(t, 5*time.Second, "1.3.0 offered", func() bool {
		return slices.Contains(reasons(a.Preflight(ctx, release.MustParseVersion("1.3.0"))), agent.ReasonPostgresTooOld)
	})
	d = a.Preflight(ctx, release.MustParseVersion("1.3.0"))
	if d.ExitCode != 1 || !slices.Equal(reasons(d), []string{agent.ReasonPostgresTooOld, agent.ReasonPostgresTooOld}) ||
		!strings.Contains(d.Reasons[0].Message, "needs PostgreSQL 99 or later") {
		t.Fatalf("preflight to a release needing PostgreSQL 99 = %+v", d)
	}
	if st := status(t, cfg.StateDir); st.Databases[0].ServerVersionNum < 100000 {
		t.Fatalf("server version not recorded: %+v", st.Databases[0])
	}
}
