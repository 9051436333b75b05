package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/release"
)

// Actors the server itself acts as, in the audit log.
const (
	// ActorAutoHalt pauses releases whose failures crossed the policy.
	ActorAutoHalt = "auto-halt"
	// ActorSystem records promotions the rules made and first-start setup.
	ActorSystem = "system"
)

// audit writes an entry in tx, so the change and its record commit together.
func audit(ctx context.Context, tx *sql.Tx, actor, action, target string, before, after any) error {
	return auditWhy(ctx, tx, actor, action, target, "", before, after)
}

// auditWhy is audit with the reason the actor gave.
func auditWhy(ctx context.Context, tx *sql.Tx, actor, action, target, reason string, before, after any) error {
	b, err := jsonOrNull(before)
	if err != nil {
		return fmt.Errorf("audit %s %s: encode before: %w", action, target, err)
	}
	a, err := jsonOrNull(after)
	if err != nil {
		return fmt.Errorf("audit %s %s: encode after: %w", action, target, err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO audit_log (at, actor, action, target, reason, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		now(), actor, action, target, reason, b, a)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", action, target, err)
	}
	return nil
}

// jsonOrNull encodes v, or returns a nil value (SQL NULL) for nil.
func jsonOrNull(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// ListAudit returns up to limit entries with id below before (all when
// before <= 0), newest first.
func (s *Store) ListAudit(ctx context.Context, before int64, limit int) ([]release.AuditEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT id, at, actor, action, target, reason, before, after FROM audit_log
		 WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	defer rows.Close()
	out := []release.AuditEntry{}
	for rows.Next() {
		var e release.AuditEntry
		var b, a sql.NullString
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Reason, &b, &a); err != nil {
			return nil, fmt.Errorf("list audit log: %w", err)
		}
		e.At = e.At.UTC()
		e.Before, e.After = rawOrNull(b), rawOrNull(a)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return out, nil
}

func rawOrNull(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return json.RawMessage("null")
	}
	return json.RawMessage(s.String)
}

// now is the store's clock: UTC, microsecond precision (what PostgreSQL
// keeps), so values read back compare equal to values written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
