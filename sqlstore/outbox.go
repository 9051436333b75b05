package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OutboxItem is one notification waiting for delivery.
type OutboxItem struct {
	ID   int64
	Kind string
	Body []byte
	// Attempts counts the attempts made, including the one just claimed.
	Attempts int
}

// enqueueOutbox adds a notification to the outbox in tx, so it is stored
// exactly when the change it announces commits.
func enqueueOutbox(ctx context.Context, tx *sql.Tx, kind string, body []byte) error {
	at := now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4)`,
		kind, string(body), at, at); err != nil {
		return fmt.Errorf("queue %s notification: %w", kind, err)
	}
	return nil
}

// ClaimOutbox claims up to limit pending notifications that are due and
// counts the attempt: their next attempt moves lease ahead, so another
// server (or a later call) does not deliver them while this attempt runs.
// On PostgreSQL rows another server is claiming are skipped (FOR UPDATE
// SKIP LOCKED); on SQLite write transactions exclude each other.
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboxItem, error) {
	var items []OutboxItem
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		q := `SELECT id, kind, body, attempts FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2`
		if s.dialect == Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		n := now()
		var err error
		items, err = queryAll(ctx, tx, func(row scanner) (OutboxItem, error) {
			var it OutboxItem
			var body string
			err := row.Scan(&it.ID, &it.Kind, &body, &it.Attempts)
			it.Body, it.Attempts = []byte(body), it.Attempts+1
			return it, err
		}, "claim notifications", q, n, limit)
		if err != nil || len(items) == 0 {
			return err
		}
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = strconv.FormatInt(it.ID, 10)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1
			WHERE id IN (`+strings.Join(ids, ", ")+`)`, n.Add(lease)); err != nil {
			return fmt.Errorf("claim notifications: %w", err)
		}
		return nil
	})
	return items, err
}

// FinishOutbox records the outcome of an attempt to deliver item id: nil
// marks it delivered; otherwise the error is kept and the next attempt
// starts at retryAt, or, with giveUp, the item is marked failed for good.
func (s *Store) FinishOutbox(ctx context.Context, id int64, deliveryErr error, retryAt time.Time, giveUp bool) error {
	var q string
	var args []any
	switch {
	case deliveryErr == nil:
		q, args = `UPDATE outbox SET state = 'delivered', last_error = '', done_at = $1 WHERE id = $2`, []any{now(), id}
	case giveUp:
		q, args = `UPDATE outbox SET state = 'failed', last_error = $1, done_at = $2 WHERE id = $3`, []any{deliveryErr.Error(), now(), id}
	default:
		q, args = `UPDATE outbox SET last_error = $1, next_attempt_at = $2 WHERE id = $3`, []any{deliveryErr.Error(), retryAt.UTC(), id}
	}
	return s.writeSilent(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("record delivery of notification %d: %w", id, err)
		}
		return nil
	})
}
