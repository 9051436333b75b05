package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestConsoleStore runs the tests of the console's accounts, sessions and
// reads on SQLite and on PostgreSQL.
func TestConsoleStore(t *testing.T) {
	onBothDialects(t, "console", []storeTest{{"Accounts", withStore(testConsoleAccounts)}, {"Queries", withStore(testConsoleQueries)}})
}

// testConsoleQueries checks the console's installation search and paging,
// an installation's history, health counts and the audit filters.
func testConsoleQueries(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	check(s.CreateProduct(ctx, "test", release.Product{Name: "acme", Policy: release.DefaultPolicy()}))(t)
	check(s.CreateRing(ctx, "test", release.Ring{Product: "acme", Name: "insiders", Position: 0, RolloutPercent: 100}))(t)
	check(s.CreateRing(ctx, "test", release.Ring{Product: "acme", Name: "stable", Position: 1, RolloutPercent: 100}))(t)
	check(s.CreateCustomer(ctx, "test", release.Customer{Product: "acme", Name: "globex", Ring: "insiders"}))(t)
	check(s.CreateCustomer(ctx, "test", release.Customer{Product: "acme", Name: "big_bank", Ring: "stable"}))(t)
	v1, v2 := release.MustParseVersion("1.0.0"), release.MustParseVersion("1.1.0")
	now := time.Now().UTC()
	var recs []sqlstore.CheckInRecord
	for i := range 30 {
		c, v, h := "globex", v2, release.HealthCollationChanged
		if i%3 != 0 {
			c, v, h = "big_bank", v1, release.HealthOK
		}
		recs = append(recs, sqlstore.CheckInRecord{Product: "acme", Customer: c, InstanceID: fmt.Sprintf("i-%02d", i), Version: v,
			Health: &release.Health{Status: h}, ReceivedAt: now.Add(time.Duration(i) * time.Millisecond)})
	}
	recs = append(recs, sqlstore.CheckInRecord{Product: "acme", Customer: "globex", InstanceID: "i-00", Version: v2,
		Events:     []release.Event{{Kind: release.EventUpgradeFailed, From: v1, To: v2, At: now, Detail: "migration 12 failed"}},
		ReceivedAt: now.Add(time.Second)})
	if err := s.RecordCheckIns(ctx, recs); err != nil {
		t.Fatal(err)
	}

	page, total := check2(s.SearchInstallations(ctx, "acme", "", 0, 25))(t)
	if total != 30 || len(page) != 25 || page[0].InstanceID != "i-00" {
		t.Fatalf("first page: %d of %d, first %+v", len(page), total, page[0])
	}
	page, _ = check2(s.SearchInstallations(ctx, "acme", "", 25, 25))(t)
	if len(page) != 5 {
		t.Fatalf("second page: %d, want 5", len(page))
	}
	// Case-insensitive, on customer, ring, version or health; _ is no wildcard.
	for q, want := range map[string]int{"GLOBEX": 10, "insiders": 10, "1.1.0": 10, "collation": 10, "big_bank": 20, "big%": 0, "g_obex": 0, "i-1": 10} {
		if _, n := check2(s.SearchInstallations(ctx, "acme", q, 0, 100))(t); n != want {
			t.Errorf("search %q: %d matches, want %d", q, n, want)
		}
	}
	if _, n := check2(s.SearchInstallations(ctx, "other", "", 0, 100))(t); n != 0 {
		t.Errorf("another product's installations: %d", n)
	}

	h := check(s.GetInstallationHistory(ctx, "acme", "globex", "i-00", 10))(t)
	if h.Installation.Ring != "insiders" || len(h.Events) != 1 || h.Events[0].Kind != release.EventUpgradeFailed || len(h.Reports) != 1 {
		t.Fatalf("history of i-00: %+v", h)
	}
	if _, err := s.GetInstallationHistory(ctx, "acme", "big_bank", "i-00", 10); release.ErrorCode(err) != release.ENOTFOUND {
		t.Fatalf("history under another customer: %v, want ENOTFOUND", err)
	}

	counts := check(s.HealthCounts(ctx, now.Add(-time.Hour)))(t)
	byKey := map[string]sqlstore.HealthCount{}
	for _, c := range counts {
		byKey[c.Version+"/"+c.Ring] = c
	}
	if c := byKey["1.1.0/insiders"]; c.CollationChanged != 10 || c.Unknown != 0 || c.UpgradeFailed != 1 {
		t.Errorf("1.1.0 in insiders: %+v", c)
	}
	if c := byKey["1.0.0/stable"]; c.OK != 20 || c.Corrupt != 0 {
		t.Errorf("1.0.0 in stable: %+v", c)
	}

	if _, _, err := s.CreateToken(ctx, "alice (user:1)", "ci", release.RoleViewer); err != nil {
		t.Fatal(err)
	}
	es := check(s.SearchAudit(ctx, sqlstore.AuditFilter{Action: "TOKEN.", Limit: 10}))(t)
	if len(es) != 1 || es[0].Actor != "alice (user:1)" {
		t.Fatalf("audit filtered by action: %+v", es)
	}
	if es := check(s.SearchAudit(ctx, sqlstore.AuditFilter{Actor: "alice", Target: "product/", Limit: 10}))(t); len(es) != 0 {
		t.Fatalf("audit filtered by actor and target: %+v", es)
	}
	all := check(s.SearchAudit(ctx, sqlstore.AuditFilter{Limit: 2}))(t)
	older := check(s.SearchAudit(ctx, sqlstore.AuditFilter{Before: all[1].ID, Limit: 100}))(t)
	if len(all) != 2 || len(older) == 0 || older[0].ID >= all[1].ID {
		t.Fatalf("audit paging: %d then %d", len(all), len(older))
	}
}

func testConsoleAccounts(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	const pw = "correct horse battery"
	if _, err := s.CreateUser(ctx, "test", "alice", release.RoleReleaser, "short"); release.ErrorCode(err) != release.EINVALID {
		t.Fatalf("short password: %v, want EINVALID", err)
	}
	if _, err := s.CreateUser(ctx, "test", "alice", "boss", pw); release.ErrorCode(err) != release.EINVALID {
		t.Fatalf("unknown role: %v, want EINVALID", err)
	}
	alice := check(s.CreateUser(ctx, "test", "alice", release.RoleReleaser, pw))(t)
	if _, err := s.CreateUser(ctx, "test", "alice", release.RoleViewer, pw); release.ErrorCode(err) != release.ECONFLICT {
		t.Fatalf("second alice: %v, want ECONFLICT", err)
	}
	for _, c := range []struct{ name, pw string }{{"alice", pw + "!"}, {"bob", pw}, {"alice", ""}} {
		if _, err := s.VerifyPassword(ctx, c.name, c.pw); release.ErrorCode(err) != release.EUNAUTHORIZED {
			t.Fatalf("login %s/%q: %v, want EUNAUTHORIZED", c.name, c.pw, err)
		}
	}
	got := check(s.VerifyPassword(ctx, "alice", pw))(t)
	if got.ID != alice.ID || got.Role != release.RoleReleaser {
		t.Fatalf("verified %+v, want %+v", got, alice)
	}

	// A user's session carries the user's identity; the actor says "user".
	secret, sess := check2(s.CreateSession(ctx, got.Identity(), time.Hour))(t)
	if !strings.HasPrefix(secret, sqlstore.SessionPrefix) || !sess.ExpiresAt.After(time.Now()) {
		t.Fatalf("session %q %+v", secret, sess)
	}
	live := check(s.LookupSession(ctx, secret))(t)
	if live.Who.Name != "alice" || live.Who.Role != release.RoleReleaser || !strings.Contains(live.Who.Actor(), "user:"+alice.ID) {
		t.Fatalf("session identity %+v (actor %s)", live.Who, live.Who.Actor())
	}
	if _, err := s.LookupSession(ctx, secret+"x"); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("unknown session: %v", err)
	}
	if sqlstore.SessionCSRF(secret) == sqlstore.SessionCSRF(secret+"x") || sqlstore.SessionCSRF(secret) == "" {
		t.Fatal("CSRF tokens must differ per session")
	}

	// Logout ends it.
	if err := s.EndSession(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, secret); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("ended session: %v", err)
	}

	// Deleting the user ends its sessions.
	secret2, _ := check2(s.CreateSession(ctx, got.Identity(), time.Hour))(t)
	if err := s.DeleteUser(ctx, "test", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, secret2); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("session of a deleted user: %v", err)
	}
	if err := s.DeleteUser(ctx, "test", "alice"); release.ErrorCode(err) != release.ENOTFOUND {
		t.Fatalf("delete twice: %v", err)
	}

	// A token's session lasts as long as the token.
	tok, tsecret, err := s.CreateToken(ctx, "test", "ci", release.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	authed := check(s.Authenticate(ctx, tsecret))(t)
	secret3, _ := check2(s.CreateSession(ctx, authed, time.Hour))(t)
	if w := check(s.LookupSession(ctx, secret3))(t).Who; w.ID != tok.ID || w.Role != release.RoleViewer {
		t.Fatalf("token session identity %+v", w)
	}
	if err := s.RevokeToken(ctx, "test", tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, secret3); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("session of a revoked token: %v", err)
	}

	// Expired sessions are refused.
	secret4, _ := check2(s.CreateSession(ctx, check(s.CreateUser(ctx, "test", "carol", release.RoleViewer, pw))(t).Identity(), time.Microsecond))(t)
	time.Sleep(2 * time.Millisecond)
	if _, err := s.LookupSession(ctx, secret4); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("expired session: %v", err)
	}

	// Every account change and login is in the audit log.
	entries := check(s.ListAudit(ctx, 0, 100))(t)
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Action]++
	}
	if seen["user.create"] != 2 || seen["user.delete"] != 1 || seen["console.login"] != 4 {
		t.Fatalf("audit actions %v", seen)
	}
	users := check(s.ListUsers(ctx))(t)
	if len(users) != 1 || users[0].Name != "carol" {
		t.Fatalf("users %+v", users)
	}
}
