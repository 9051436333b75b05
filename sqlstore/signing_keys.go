package sqlstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ringfence/ringfence/sign"
)

// Signing keys are stored sealed: the private half encrypted with a
// key-encryption key that is not in the store (sign.KeyEncryptionKey), so
// that reading the database — a copy of the SQLite file, a backup, a
// PostgreSQL role with SELECT on it — is not enough to sign answers.
// Stores written by earlier versions hold plain keys; UseKeyEncryptionKey
// seals them.

// errNoKEK is returned when signing keys must be read or
// written and the store was given no key-encryption key.
var errNoKEK = errors.New("no key-encryption key: signing keys are stored encrypted (give serve --key-encryption-key-file or RINGFENCE_KEY_ENCRYPTION_KEY)")

// UseKeyEncryptionKey makes the store seal signing keys with kek and opens
// them with it; it seals, in one audited transaction, the keys stores of
// earlier versions kept in plain text, and returns how many. It fails,
// changing nothing, if a stored key was sealed with another key-encryption
// key.
func (s *Store) UseKeyEncryptionKey(ctx context.Context, actor string, kek *sign.KeyEncryptionKey) (int, error) {
	if kek == nil {
		return 0, errNoKEK
	}
	var sealed int
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "signing_keys"); err != nil {
			return err
		}
		rows, err := storedKeys(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if sign.Sealed(r.blob) {
				if _, err := kek.Open(r.id, r.blob); err != nil {
					return fmt.Errorf("the store's signing keys were encrypted with another key-encryption key: %w", err)
				}
				continue
			}
			k, err := plainKey(r)
			if err != nil {
				return err
			}
			blob, err := kek.Seal(rand.Reader, k)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = $1 WHERE keyid = $2`, blob, r.id); err != nil {
				return fmt.Errorf("encrypt signing key %s: %w", r.id, err)
			}
			if err := audit(ctx, tx, actor, "signing_key.encrypt", "signing_key/"+r.id, nil, map[string]any{"keyid": r.id}); err != nil {
				return err
			}
			sealed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if sealed > 0 {
		if err := s.scrub(ctx); err != nil {
			return 0, err
		}
	}
	s.kek.Store(kek)
	return sealed, nil
}

// scrub removes what the database may still hold of rows it no longer
// has — the plain keys just sealed: SQLite keeps old page images in the
// WAL and freed pages in the file, PostgreSQL dead row versions until
// vacuumed.
func (s *Store) scrub(ctx context.Context) error {
	stmts := []string{`VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`}
	if s.dialect == Postgres {
		stmts = []string{`VACUUM (FULL) signing_keys`}
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("remove the plain signing keys' old copies (%s): %w", q, err)
		}
	}
	return nil
}

// HasSealedSigningKeys reports whether the store holds signing keys sealed
// with a key-encryption key (which must then be given to use them).
func (s *Store) HasSealedSigningKeys(ctx context.Context) (bool, error) {
	rows, err := storedKeys(ctx, s.rdb)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if sign.Sealed(r.blob) {
			return true, nil
		}
	}
	return false, nil
}

// storedKey is one row of signing_keys as stored.
type storedKey struct {
	id   string
	blob []byte
	key  sign.Key
}

func storedKeys(ctx context.Context, q queryer) ([]storedKey, error) {
	return queryAll(ctx, q, func(row scanner) (storedKey, error) {
		var r storedKey
		err := row.Scan(&r.id, &r.blob, &r.key.CreatedAt)
		r.key.ID, r.key.CreatedAt = r.id, r.key.CreatedAt.UTC()
		return r, err
	}, "load signing keys", `SELECT keyid, private_key, created_at FROM signing_keys ORDER BY created_at, keyid`)
}

// plainKey reads a signing key stored in plain text by an earlier version.
func plainKey(r storedKey) (sign.Key, error) {
	if len(r.blob) != ed25519.PrivateKeySize {
		return sign.Key{}, fmt.Errorf("signing key %s: %d bytes, neither a plain nor a sealed key", r.id, len(r.blob))
	}
	k := r.key
	k.Private = ed25519.PrivateKey(r.blob)
	if sign.KeyID(k.Private.Public().(ed25519.PublicKey)) != r.id {
		return sign.Key{}, fmt.Errorf("signing key %s: the key does not match its id", r.id)
	}
	return k, nil
}

// SigningKeys returns every stored signing key, oldest first, opened with
// the key-encryption key (UseKeyEncryptionKey).
func (s *Store) SigningKeys(ctx context.Context) ([]sign.Key, error) {
	rows, err := storedKeys(ctx, s.rdb)
	if err != nil {
		return nil, err
	}
	kek := s.kek.Load()
	keys := make([]sign.Key, 0, len(rows))
	for _, r := range rows {
		if !sign.Sealed(r.blob) {
			// A plain key of an earlier version, until UseKeyEncryptionKey
			// seals it.
			k, err := plainKey(r)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
			continue
		}
		if kek == nil {
			return nil, errNoKEK
		}
		k := r.key
		if k.Private, err = kek.Open(r.id, r.blob); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// AddSigningKey stores a new signing key, sealed with the key-encryption
// key, which signs from the next snapshot on. With onlyIfNone it adds the
// key only when no key exists yet (first start) and reports whether it did.
// Without a key-encryption key it refuses: private keys are never stored in
// plain text.
func (s *Store) AddSigningKey(ctx context.Context, actor string, k sign.Key, onlyIfNone bool) (bool, error) {
	kek := s.kek.Load()
	if kek == nil {
		return false, errNoKEK
	}
	blob, err := kek.Seal(rand.Reader, k)
	if err != nil {
		return false, err
	}
	var added bool
	err = s.write(ctx, func(tx *sql.Tx) error {
		// Servers starting together on an empty database create one key.
		if err := s.serialize(ctx, tx, "signing_keys"); err != nil {
			return err
		}
		if onlyIfNone {
			if ok, err := exists(ctx, tx, `SELECT 1 FROM signing_keys`); err != nil {
				return fmt.Errorf("look for signing keys: %w", err)
			} else if ok {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (keyid, private_key, created_at) VALUES ($1, $2, $3)`,
			k.ID, blob, k.CreatedAt.UTC()); err != nil {
			return fmt.Errorf("store signing key %s: %w", k.ID, err)
		}
		added = true
		action := "signing_key.rotate"
		if onlyIfNone {
			action = "signing_key.create"
		}
		pub := k.Private.Public().(ed25519.PublicKey)
		return audit(ctx, tx, actor, action, "signing_key/"+k.ID, nil, map[string]any{
			"keyid": k.ID, "public_key": pub, "created_at": k.CreatedAt.UTC()})
	})
	return added, err
}
