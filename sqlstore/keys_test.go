package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

func newKEK(t *testing.T) *sign.KeyEncryptionKey {
	t.Helper()
	text, err := sign.GenerateKeyEncryptionKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := sign.ParseKeyEncryptionKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func newSigningKey(t *testing.T) sign.Key {
	t.Helper()
	k, err := sign.GenerateKey(rand.Reader, time.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testSealedSigningKeys: signing keys are stored only encrypted with the
// key-encryption key: a key an earlier version stored in plain text is
// sealed by UseKeyEncryptionKey, new keys are sealed from the start,
// nothing is stored without a key-encryption key, and neither the rows nor
// (SQLite) the raw files hold a private key.
func testSealedSigningKeys(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	db := servertest.RawDB(t, dsn)
	old := newSigningKey(t)
	if _, err := s.AddSigningKey(ctx, "test", old, true); err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("adding a key without a key-encryption key: %v, want a refusal", err)
	}
	// What an earlier version left: a plain key.
	if _, err := db.Exec(`INSERT INTO signing_keys (keyid, private_key, created_at) VALUES ($1, $2, $3)`, old.ID, []byte(old.Private), old.CreatedAt); err != nil {
		t.Fatal(err)
	}
	kek := newKEK(t)
	if n, err := s.UseKeyEncryptionKey(ctx, "test", kek); err != nil || n != 1 {
		t.Fatalf("UseKeyEncryptionKey = %d, %v; want 1 key sealed", n, err)
	}
	fresh := newSigningKey(t)
	if added, err := s.AddSigningKey(ctx, "test", fresh, false); err != nil || !added {
		t.Fatalf("add key: %v %v", added, err)
	}
	keys := check(s.SigningKeys(ctx))(t)
	if len(keys) != 2 || !keys[0].Private.Equal(old.Private) || !keys[1].Private.Equal(fresh.Private) {
		t.Fatalf("SigningKeys did not give back both keys")
	}
	rows, err := db.Query(`SELECT private_key FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		for _, k := range []sign.Key{old, fresh} {
			if bytes.Contains(b, k.Private.Seed()) || !sign.Sealed(b) {
				t.Errorf("a stored private key is readable in the row: %x", b)
			}
		}
	}
	if !strings.HasPrefix(dsn, "postgres") {
		for _, f := range []string{dsn, dsn + "-wal"} {
			raw, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, k := range []sign.Key{old, fresh} {
				if bytes.Contains(raw, k.Private.Seed()) {
					t.Errorf("%s holds the private key %s in plain text", filepath.Base(f), k.ID)
				}
			}
		}
	}
	// Another key-encryption key opens nothing and changes nothing; a
	// store opened without one cannot read the keys.
	other := mustOpen(t, dsn)
	if _, err := other.UseKeyEncryptionKey(ctx, "test", newKEK(t)); err == nil {
		t.Errorf("a wrong key-encryption key was accepted")
	}
	if _, err := other.SigningKeys(ctx); err == nil {
		t.Errorf("sealed keys read without a key-encryption key")
	}
	if sealed, err := other.HasSealedSigningKeys(ctx); err != nil || !sealed {
		t.Errorf("HasSealedSigningKeys = %v, %v", sealed, err)
	}
	// A sealed key does not open as another key.
	var blob []byte
	if err := db.QueryRow(`SELECT private_key FROM signing_keys WHERE keyid = $1`, old.ID).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	if _, err := kek.Open(fresh.ID, blob); err == nil {
		t.Errorf("a sealed key opened under another key's id")
	}
}

// TestStoreFilesArePrivate: the SQLite store, its WAL and shared-memory
// files are created readable by their owner only — another local user
// (nobody) cannot read them — and a store readable by others is refused.
func TestStoreFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Only the files' own modes may keep other users out.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(dir, "ringfence.db")
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseKeyEncryptionKey(ctx, "test", newKEK(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSigningKey(ctx, "test", newSigningKey(t), true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dsn, dsn + "-wal", dsn + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(f), perm)
		}
		if os.Geteuid() == 0 {
			cat := exec.Command("cat", f)
			cat.SysProcAttr = &syscall.SysProcAttr{Credential: nobody(t)}
			if out, err := cat.CombinedOutput(); err == nil {
				t.Errorf("user nobody read %s (%d bytes)", filepath.Base(f), len(out))
			}
		}
	}
	s.Close()
	if err := os.Chmod(dsn, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(context.Context, string) (*sqlstore.Store, error){sqlstore.Open, sqlstore.OpenExisting} {
		if s, err := open(ctx, dsn); err == nil {
			s.Close()
			t.Errorf("a world-readable store was opened")
		} else if !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("refusal does not say what to do: %v", err)
		}
	}
}

// nobody is the credential of the unprivileged user nobody.
func nobody(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("look up user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// testQuotaCounts: WriteCheckIns reports exactly the installations it
// created, and StoredBytes estimates each customer's rows.
func testQuotaCounts(t *testing.T, dsn string, s *sqlstore.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	v := release.MustParseVersion("1.0.0")
	rec := func(customer, id string, at time.Time, detail string) sqlstore.CheckInRecord {
		r := sqlstore.CheckInRecord{Product: "acme", Customer: customer, InstanceID: id, Version: v, ReceivedAt: at}
		if detail != "" {
			r.Events = []release.Event{{Kind: release.EventIntegrityFailed, To: v, At: at, Detail: detail}}
		}
		return r
	}
	created := check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{rec("a", "i-1", now, ""), rec("a", "i-2", now, "boom"), rec("b", "i-1", now, "")}))(t)
	if len(created) != 3 {
		t.Fatalf("first batch created %v, want 3 installations", created)
	}
	later := now.Add(time.Second)
	created = check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{rec("a", "i-1", later, ""), rec("a", "i-3", later, ""), rec("a", "i-3", later.Add(time.Millisecond), "")}))(t)
	if len(created) != 1 || created[0] != (sqlstore.InstallationRef{Product: "acme", Customer: "a", InstanceID: "i-3"}) {
		t.Fatalf("second batch created %v, want a/i-3 only", created)
	}
	bytes := check(s.StoredBytes(ctx))(t)
	wantA := int64(3*sqlstore.InstallationRowBytes + sqlstore.EventRowBytes + len("boom"))
	if got := bytes[sqlstore.CustomerRef{Product: "acme", Customer: "a"}]; got != wantA {
		t.Errorf("stored bytes of a = %d, want %d", got, wantA)
	}
	if known := check(s.InstallationKnown(ctx, "acme", "b", "i-1"))(t); !known {
		t.Error("b/i-1 not known")
	}
	if known := check(s.InstallationKnown(ctx, "acme", "b", "i-2"))(t); known {
		t.Error("b/i-2 known")
	}
	// Installations that report events (whose stored version the writer
	// looks up for auto-halt) count as created exactly when new too: a/i-2
	// is known, a/i-4 new, a/i-5 new and first seen routinely in the batch.
	third := later.Add(time.Second)
	created = check(s.WriteCheckIns(ctx, []sqlstore.CheckInRecord{rec("a", "i-2", third, "again"), rec("a", "i-4", third, "new"),
		rec("a", "i-5", third, ""), rec("a", "i-5", third.Add(time.Millisecond), "fresh"), rec("b", "i-1", third, "")}))(t)
	got := map[sqlstore.InstallationRef]bool{}
	for _, r := range created {
		got[r] = true
	}
	if len(created) != 2 || !got[sqlstore.InstallationRef{Product: "acme", Customer: "a", InstanceID: "i-4"}] ||
		!got[sqlstore.InstallationRef{Product: "acme", Customer: "a", InstanceID: "i-5"}] {
		t.Fatalf("third batch created %v, want a/i-4 and a/i-5", created)
	}
}
