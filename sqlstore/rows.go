package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ringfence/ringfence/release"
)

// What every file of the store shares to read rows: the scanner and
// queryer types, whole-result queries, existence checks, the errors of
// reading one row, and rows that carry a timeline. Conversions of column
// values are in columns.go.

// scanner is what a scan function reads one row from: a *sql.Row or the
// current row of *sql.Rows. It is an alias, so a scan function written
// with the interface spelled out is the same type.
type scanner = interface{ Scan(...any) error }

// queryer is what reads need: a *sql.DB, or a *sql.Tx for a consistent read.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

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

// lookupErr is the error of reading the one row of what: ENOTFOUND ("what
// not found") when there is none, err wrapped with doing otherwise, nil for
// nil.
func lookupErr(err error, doing, what string) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return release.Errorf(release.ENOTFOUND, "%s not found", what)
	case err != nil:
		return fmt.Errorf("%s: %w", doing, err)
	}
	return nil
}

// timelined reads rows that carry a timeline kept in another table
// (incidents and their updates, maintenances and theirs): scan reads one
// row, load adds the timelines of a batch of rows.
type timelined[T any] struct {
	scan func(scanner) (T, error)
	load func(context.Context, queryer, []T) error
}

// one reads the row query selects (its $1 is id) with its timeline;
// ENOTFOUND naming what if there is none. lock takes the row's lock on
// PostgreSQL (in a write transaction), so two changes of it run one after
// the other; the lock is FOR NO KEY UPDATE, so rows that only reference it
// do not wait.
func (t timelined[T]) one(ctx context.Context, d Dialect, q queryer, query string, id int64, lock bool, what string) (T, error) {
	if lock && d == Postgres {
		query += ` FOR NO KEY UPDATE`
	}
	var zero T
	x, err := t.scan(q.QueryRowContext(ctx, query, id))
	if err != nil {
		return zero, notFound(err, "%s %d", what, id)
	}
	xs := []T{x}
	if err := t.load(ctx, q, xs); err != nil {
		return zero, err
	}
	return xs[0], nil
}

// all reads the rows query selects (its $1 is limit) with their timelines.
func (t timelined[T]) all(ctx context.Context, q queryer, what, query string, limit int) ([]T, error) {
	xs, err := queryAll(ctx, q, t.scan, what, query, limit)
	if err != nil {
		return nil, err
	}
	return xs, t.load(ctx, q, xs)
}

// insertID runs an INSERT ... RETURNING id and returns the id.
func insertID(ctx context.Context, tx *sql.Tx, what, query string, args ...any) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, query+` RETURNING id`, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// forUpdate makes a read-modify-write's SELECT lock its row on PostgreSQL,
// so that a concurrent change waits and then reads what the first wrote:
// an If-Match check (or any check of the old value) then holds at the
// write. The lock is FOR NO KEY UPDATE: rows that only reference it
// (enrollment keys of a customer, say) are not held up. SQLite's one
// writer at a time needs no lock.
func (s *Store) forUpdate(query string) string {
	if s.dialect == Postgres {
		return query + ` FOR NO KEY UPDATE`
	}
	return query
}
