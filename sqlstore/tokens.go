package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ringfence/ringfence/release"
)

// Secret prefixes make leaked secrets recognisable (and greppable).
const (
	// TokenPrefix starts every API token.
	TokenPrefix = "rft_"
	// EnrollmentKeyPrefix starts every enrollment key.
	EnrollmentKeyPrefix = "rfe_"
)

// newSecret returns prefix + 32 random bytes in URL-safe base64, and the
// SHA-256 of the whole string.
func newSecret(prefix string) (string, []byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("generate secret: %w", err)
	}
	secret := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret), nil
}

// HashSecret is how tokens and enrollment keys are stored and looked up.
// The secrets carry 256 random bits, so a plain SHA-256 is enough: there is
// nothing to brute-force.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken creates an API token for name with role and returns it with
// its secret, which is shown once and not stored. ECONFLICT if a live
// (unrevoked) token has that name.
func (s *Store) CreateToken(ctx context.Context, actor, name string, role release.Role) (release.Token, string, error) {
	if err := release.ValidateName("token", name); err != nil {
		return release.Token{}, "", err
	}
	if !role.Valid() {
		return release.Token{}, "", release.Errorf(release.EINVALID, "role %q: want viewer, releaser, incident or admin", role)
	}
	secret, hash, err := newSecret(TokenPrefix)
	if err != nil {
		return release.Token{}, "", err
	}
	t := release.Token{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Role: role, CreatedAt: now(), CreatedBy: actor}
	err = s.write(ctx, func(tx *sql.Tx) error {
		// Live tokens have distinct names, so a name in a listing or a
		// message means one token.
		if err := s.serialize(ctx, tx, "tokens"); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM tokens WHERE name = $1 AND revoked_at IS NULL`, name); err != nil {
			return fmt.Errorf("create token %s: %w", name, err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "a live token named %s exists; revoke it or choose another name", name)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tokens (id, name, role, hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, t.Name, string(t.Role), hash, t.CreatedAt, t.CreatedBy); err != nil {
			return fmt.Errorf("create token %s: %w", name, err)
		}
		return audit(ctx, tx, actor, "token.create", "token/"+t.ID, nil, t)
	})
	if err != nil {
		return release.Token{}, "", err
	}
	return t, secret, nil
}

// Authenticate returns the live token whose secret this is; EUNAUTHORIZED
// for unknown or revoked ones. It records when the token was last used (at
// most once a minute, to keep reads cheap), best-effort: that write gets at
// most lastUsedTimeout, and when it fails (store busy, read-only replica)
// the request is still served and LastUsedAt stays as stored.
func (s *Store) Authenticate(ctx context.Context, secret string) (release.Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return release.Token{}, release.Errorf(release.EUNAUTHORIZED, "not a ringfence API token")
	}
	row := s.rdb.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, HashSecret(secret))
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return release.Token{}, release.Errorf(release.EUNAUTHORIZED, "unknown API token")
	}
	if err != nil {
		return release.Token{}, fmt.Errorf("look up API token: %w", err)
	}
	if t.RevokedAt != nil {
		return release.Token{}, release.Errorf(release.EUNAUTHORIZED, "API token %s was revoked", t.Name)
	}
	n := now()
	if t.LastUsedAt == nil || n.Sub(*t.LastUsedAt) > time.Minute {
		wctx, cancel := context.WithTimeout(ctx, lastUsedTimeout)
		err := s.writeSilent(wctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(wctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2`, n, t.ID)
			return err
		})
		cancel()
		if err == nil {
			t.LastUsedAt = &n
		}
	}
	return t, nil
}

// lastUsedTimeout bounds the best-effort write of a token's last use.
const lastUsedTimeout = 500 * time.Millisecond

const tokenCols = `id, name, role, created_at, created_by, last_used_at, revoked_at`

func scanToken(row scanner) (release.Token, error) {
	var t release.Token
	var role string
	var used, revoked sql.NullTime
	if err := row.Scan(&t.ID, &t.Name, &role, &t.CreatedAt, &t.CreatedBy, &used, &revoked); err != nil {
		return release.Token{}, err
	}
	t.Role = release.Role(role)
	t.CreatedAt = t.CreatedAt.UTC()
	t.LastUsedAt, t.RevokedAt = timePtr(used), timePtr(revoked)
	return t, nil
}

// ListTokens returns every token, oldest first, without secrets.
func (s *Store) ListTokens(ctx context.Context) ([]release.Token, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []release.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes token id; ENOTFOUND if there is none, ECONFLICT if it
// is already revoked.
func (s *Store) RevokeToken(ctx context.Context, actor, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
		if err != nil {
			return lookupErr(err, "revoke token "+id, "token "+id)
		}
		before := t
		if err := revokeNow(ctx, tx, "tokens", id, "token "+id, &t.RevokedAt); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "token.revoke", "token/"+id, before, t)
	})
}

// revokeNow revokes row id of table (tokens or enrollment_keys), whose
// revocation time *revokedAt holds as loaded, and sets *revokedAt to now;
// what names the row in messages. ECONFLICT if it is already revoked.
func revokeNow(ctx context.Context, tx *sql.Tx, table, id, what string, revokedAt **time.Time) error {
	if *revokedAt != nil {
		return release.Errorf(release.ECONFLICT, "%s is already revoked", what)
	}
	n := now()
	if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET revoked_at = $1 WHERE id = $2`, n, id); err != nil {
		return fmt.Errorf("revoke %s: %w", what, err)
	}
	*revokedAt = &n
	return nil
}
