package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
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
	return s.QueryAudit(ctx, release.AuditFilter{Before: before, Limit: limit})
}

// QueryAudit returns the entries f selects, newest first (the console's
// free-text search is SearchAudit). Matching is exact and case-sensitive
// on both dialects: prefix and substring tests are written with substr and
// replace, not LIKE, whose case rules differ between SQLite and PostgreSQL.
func (s *Store) QueryAudit(ctx context.Context, f release.AuditFilter) ([]release.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	// prefix is true when col starts with p.
	prefix := func(col, p string) string {
		return "substr(" + col + ", 1, " + arg(len(p)) + ") = " + arg(p)
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	if f.Product != "" {
		var any []string
		for _, p := range []string{"product/" + f.Product + "/", "release/" + f.Product + "@", "customer/" + f.Product + "/", "installation/" + f.Product + "/"} {
			any = append(any, prefix("target", p))
		}
		where = append(where, "(target = "+arg("product/"+f.Product)+" OR "+strings.Join(any, " OR ")+")")
	}
	if f.Release != "" {
		// "@V/" inside the target with a "/" appended: ends with @V or
		// goes on below it (versions hold no "/").
		where = append(where, prefix("target", "release/"),
			"length(replace(target || '/', "+arg("@"+f.Release+"/")+", '')) < length(target) + 1")
	}
	if f.Action != "" {
		where = append(where, "(action = "+arg(f.Action)+" OR "+prefix("action", f.Action+".")+")")
	}
	if f.Actor != "" {
		where = append(where, "length(replace(actor, "+arg(f.Actor)+", '')) < length(actor)")
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since.UTC()))
	}
	q := `SELECT id, at, actor, action, target, reason, before, after FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit)
	return queryAll(ctx, s.rdb, scanAuditEntry, "list audit log", q, args...)
}

func scanAuditEntry(row interface{ Scan(...any) error }) (release.AuditEntry, error) {
	var e release.AuditEntry
	var b, a sql.NullString
	if err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Reason, &b, &a); err != nil {
		return e, err
	}
	e.At, e.Before, e.After = e.At.UTC(), rawOrNull(b), rawOrNull(a)
	return e, nil
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
