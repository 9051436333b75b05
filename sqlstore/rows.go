package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/release"
)

// The helpers every file of the store shares to read and write rows: the
// scanner and queryer types, whole-result queries, existence checks, and
// the conversions between Go values and nullable or JSON columns.

// scanner is what a scan function reads one row from: a *sql.Row or the
// current row of *sql.Rows. It is an alias, so a scan function written
// with the interface spelled out is the same type.
type scanner = interface{ Scan(...any) error }

// queryer is what reads need: a *sql.DB, or a *sql.Tx for a consistent read.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// Now is the store's clock: the current time in UTC at microsecond
// precision (what PostgreSQL keeps), so a value the store stamps, read
// back, equals the value written. Callers that show a time the store will
// also record use it so both agree.
func Now() time.Time { return now() }

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, db queryer, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// exists reports whether query (SELECT 1 ...) returns a row.
func exists(ctx context.Context, q queryer, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// notFound maps sql.ErrNoRows to an ENOTFOUND domain error naming what (one
// type for release and incident: fault.Error).
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return release.Errorf(release.ENOTFOUND, format+" not found", args...)
	}
	return err
}

// insertID runs an INSERT ... RETURNING id and returns the id.
func insertID(ctx context.Context, tx *sql.Tx, what, query string, args ...any) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, query+` RETURNING id`, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// jsonText encodes v for a JSON column.
func jsonText(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

// ptrOrNil turns a typed nil pointer into an untyped nil.
func ptrOrNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// timePtr turns a nullable timestamp into a UTC time, or nil.
func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}
