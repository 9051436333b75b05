package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/ringfence/ringfence/release"
)

// Enrollment keys are 256-bit random secrets (EnrollmentKeyPrefix) that an
// installation presents on every check-in; the store keeps only their
// SHA-256 (HashSecret) and a short prefix to recognise them by.

const keyCols = `id, product, customer, prefix, created_at, created_by, revoked_at`

func scanKey(row scanner) (release.EnrollmentKey, error) {
	var k release.EnrollmentKey
	var revoked sql.NullTime
	if err := row.Scan(&k.ID, &k.Product, &k.Customer, &k.Prefix, &k.CreatedAt, &k.CreatedBy, &revoked); err != nil {
		return release.EnrollmentKey{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.RevokedAt = timePtr(revoked)
	return k, nil
}

// CreateEnrollmentKey creates a key for a customer of product and returns it
// with the secret, which is shown once and not stored.
func (s *Store) CreateEnrollmentKey(ctx context.Context, actor, product, customer string) (release.EnrollmentKey, string, error) {
	secret, hash, err := newSecret(EnrollmentKeyPrefix)
	if err != nil {
		return release.EnrollmentKey{}, "", err
	}
	k := release.EnrollmentKey{ID: uuid.Must(uuid.NewV7()).String(), Product: product, Customer: customer,
		Prefix: secret[:len(EnrollmentKeyPrefix)+6], CreatedAt: now(), CreatedBy: actor}
	target := "product/" + product + "/customer/" + customer + "/key/" + k.ID
	err = s.write(ctx, func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM customers WHERE product = $1 AND name = $2`, product, customer); err != nil {
			return fmt.Errorf("create enrollment key for %s/%s: %w", product, customer, err)
		} else if !ok {
			return release.Errorf(release.ENOTFOUND, "customer %s of %s not found", customer, product)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO enrollment_keys (id, product, customer, hash, prefix, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Product, k.Customer, hash, k.Prefix, k.CreatedAt, k.CreatedBy)
		if err != nil {
			return fmt.Errorf("create enrollment key for %s/%s: %w", product, customer, err)
		}
		return audit(ctx, tx, actor, "enrollment_key.create", target, nil, k)
	})
	if err != nil {
		return release.EnrollmentKey{}, "", err
	}
	return k, secret, nil
}

// ListEnrollmentKeys returns a customer's keys, oldest first.
func (s *Store) ListEnrollmentKeys(ctx context.Context, product, customer string) ([]release.EnrollmentKey, error) {
	return queryAll(ctx, s.rdb, scanKey, "list enrollment keys",
		`SELECT `+keyCols+` FROM enrollment_keys WHERE product = $1 AND customer = $2 ORDER BY created_at, id`, product, customer)
}

// RevokeEnrollmentKey revokes a customer's key; check-ins with it are
// refused from the next snapshot on.
func (s *Store) RevokeEnrollmentKey(ctx context.Context, actor, product, customer, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyCols+` FROM enrollment_keys WHERE id = $1 AND product = $2 AND customer = $3`, id, product, customer))
		if err != nil {
			return notFound(err, "enrollment key %s of customer %s/%s", id, product, customer)
		}
		before := k
		if err := revokeNow(ctx, tx, "enrollment_keys", id, "enrollment key "+id, &k.RevokedAt); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "enrollment_key.revoke", "product/"+product+"/customer/"+customer+"/key/"+id, before, k)
	})
}

// LiveEnrollmentKeys maps the SHA-256 of every unrevoked enrollment key to
// its key, for the check-in path's in-memory lookup.
func (s *Store) LiveEnrollmentKeys(ctx context.Context) (map[[32]byte]release.EnrollmentKey, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT hash, `+keyCols+` FROM enrollment_keys WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("load enrollment keys: %w", err)
	}
	defer rows.Close()
	out := map[[32]byte]release.EnrollmentKey{}
	for rows.Next() {
		var hash []byte
		var k release.EnrollmentKey
		var revoked sql.NullTime
		if err := rows.Scan(&hash, &k.ID, &k.Product, &k.Customer, &k.Prefix, &k.CreatedAt, &k.CreatedBy, &revoked); err != nil {
			return nil, fmt.Errorf("load enrollment keys: %w", err)
		}
		if len(hash) != 32 {
			return nil, fmt.Errorf("load enrollment keys: key %s has a %d-byte hash", k.ID, len(hash))
		}
		out[[32]byte(hash)] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load enrollment keys: %w", err)
	}
	return out, nil
}
