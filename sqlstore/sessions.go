package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ringfence/ringfence/release"
)

// SessionPrefix starts every console session secret (the cookie's value).
const SessionPrefix = "rfs_"

// Session is a console login as the store keeps it: who (a user or an API
// token, as release.Token, with the role they have now) and until when.
type Session struct {
	Who       release.Token
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession starts a console session for who — a User's Identity or a
// live API token as Authenticate returned it — valid for ttl, and returns
// its secret (for the cookie; only its SHA-256 is stored). The login is
// recorded in the audit log. Sessions that expired more than a day ago are
// deleted on the way, so the table does not grow.
func (s *Store) CreateSession(ctx context.Context, who release.Token, ttl time.Duration) (string, Session, error) {
	if ttl <= 0 {
		return "", Session{}, release.Errorf(release.EINVALID, "session lifetime must be positive")
	}
	secret, hash, err := newSecret(SessionPrefix)
	if err != nil {
		return "", Session{}, err
	}
	var userID, tokenID any
	kind := "token"
	if id, ok := strings.CutPrefix(who.ID, userIDPrefix); ok {
		userID, kind = id, "user"
	} else {
		tokenID = who.ID
	}
	n := now()
	sess := Session{Who: who, CreatedAt: n, ExpiresAt: n.Add(ttl)}
	err = s.writeSilent(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, n.Add(-24*time.Hour)); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, user_id, token_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			hash, userID, tokenID, sess.CreatedAt, sess.ExpiresAt); err != nil {
			return fmt.Errorf("create session for %s: %w", who.Actor(), err)
		}
		return audit(ctx, tx, who.Actor(), "console.login", kind+"/"+strings.TrimPrefix(who.ID, userIDPrefix), nil,
			map[string]any{"expires_at": sess.ExpiresAt})
	})
	if err != nil {
		return "", Session{}, err
	}
	return secret, sess, nil
}

// LookupSession returns the live session whose secret this is, with its
// user's or token's current name and role; EUNAUTHORIZED when it is
// unknown, expired or logged out, or its token was revoked (a deleted user's
// sessions are deleted with it).
func (s *Store) LookupSession(ctx context.Context, secret string) (Session, error) {
	if !strings.HasPrefix(secret, SessionPrefix) {
		return Session{}, release.Errorf(release.EUNAUTHORIZED, "not a console session")
	}
	var sess Session
	var userID, tokenID, uName, uRole, tName, tRole sql.NullString
	var uCreated, tCreated, revoked, tRevoked sql.NullTime
	var uBy, tBy sql.NullString
	err := s.rdb.QueryRowContext(ctx, `SELECT s.user_id, s.token_id, s.created_at, s.expires_at, s.revoked_at,
			u.name, u.role, u.created_at, u.created_by, t.name, t.role, t.created_at, t.created_by, t.revoked_at
		FROM sessions s LEFT JOIN users u ON u.id = s.user_id LEFT JOIN tokens t ON t.id = s.token_id
		WHERE s.hash = $1`, HashSecret(secret)).Scan(&userID, &tokenID, &sess.CreatedAt, &sess.ExpiresAt, &revoked,
		&uName, &uRole, &uCreated, &uBy, &tName, &tRole, &tCreated, &tBy, &tRevoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, release.Errorf(release.EUNAUTHORIZED, "unknown or ended session")
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	switch {
	case revoked.Valid:
		return Session{}, release.Errorf(release.EUNAUTHORIZED, "session ended (logged out)")
	case !now().Before(sess.ExpiresAt):
		return Session{}, release.Errorf(release.EUNAUTHORIZED, "session expired")
	case userID.Valid && uName.Valid:
		sess.Who = User{ID: userID.String, Name: uName.String, Role: release.Role(uRole.String), CreatedAt: uCreated.Time.UTC(), CreatedBy: uBy.String}.Identity()
	case tokenID.Valid && tName.Valid && !tRevoked.Valid:
		sess.Who = release.Token{ID: tokenID.String, Name: tName.String, Role: release.Role(tRole.String), CreatedAt: tCreated.Time.UTC(), CreatedBy: tBy.String}
	default:
		return Session{}, release.Errorf(release.EUNAUTHORIZED, "the session's user or API token no longer exists")
	}
	return sess, nil
}

// EndSession logs the session whose secret this is out; unknown or ended
// sessions are no error (logging out twice is harmless).
func (s *Store) EndSession(ctx context.Context, secret string) error {
	return s.writeSilent(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL`,
			now(), HashSecret(secret)); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		return nil
	})
}

// SessionCSRF is the anti-CSRF token of the session whose secret this is:
// derived from the secret, so it is stored nowhere and someone who reads the
// store (which holds only the secret's SHA-256) cannot compute it.
func SessionCSRF(secret string) string {
	h := sha256.Sum256([]byte("ringfence console csrf\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
