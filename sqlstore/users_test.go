package sqlstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestConsoleAccounts runs the users and sessions tests on SQLite and on
// PostgreSQL.
func TestConsoleAccounts(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testConsoleAccounts(t, mustOpen(t, filepath.Join(t.TempDir(), "ringfence.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		c := pgtest.New(t)
		c.CreateDatabase("accounts")
		testConsoleAccounts(t, mustOpen(t, c.DSN("accounts")))
	})
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
