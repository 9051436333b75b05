package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// fanOutCursor names the cursor of notify_cursor over status_notifications.
const fanOutCursor = "status"

const subscriberCols = `id, kind, target, secret, token, components, created_at, created_by, confirmed_at`

func scanSubscriber(row scanner) (incident.Subscriber, error) {
	var s incident.Subscriber
	var comps string
	var confirmed sql.NullTime
	if err := row.Scan(&s.ID, &s.Kind, &s.Target, &s.Secret, &s.Token, &comps, &s.CreatedAt, &s.CreatedBy, &confirmed); err != nil {
		return s, err
	}
	s.CreatedAt = s.CreatedAt.UTC()
	if confirmed.Valid {
		t := confirmed.Time.UTC()
		s.ConfirmedAt = &t
	}
	if err := json.Unmarshal([]byte(comps), &s.Components); err != nil {
		return s, fmt.Errorf("subscriber %s: components: %w", s.ID, err)
	}
	return s, nil
}

// CreateSubscriber adds a subscriber. A webhook gets a generated signing
// secret unless sub.Secret holds one, and is confirmed at once (an operator
// created it); an email subscriber is confirmed only when its owner follows
// the opt-in link, which is queued for delivery in the same transaction.
// The returned subscriber carries its secret: the only time it is shown.
// ECONFLICT if the same kind and target exists.
func (s *Store) CreateSubscriber(ctx context.Context, actor string, sub incident.Subscriber, site incident.SPPage) (incident.Subscriber, error) {
	sub, err := newSubscriber(sub, actor)
	if err != nil {
		return incident.Subscriber{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM subscribers WHERE kind = $1 AND target = $2`, string(sub.Kind), sub.Target); err != nil {
			return fmt.Errorf("create subscriber: %w", err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "a %s subscriber for that target exists", sub.Kind)
		}
		if err := insertSubscriber(ctx, tx, sub); err != nil {
			return err
		}
		if sub.Kind == incident.SubscriberEmail {
			if err := queueConfirm(ctx, tx, sub, site); err != nil {
				return err
			}
		}
		return audit(ctx, tx, actor, "subscriber.create", "subscriber/"+sub.ID, nil, sub.Redacted())
	})
	if err != nil {
		return incident.Subscriber{}, err
	}
	return sub, nil
}

// newSubscriber validates sub and fills in its id, secret or token, and
// creation.
func newSubscriber(sub incident.Subscriber, actor string) (incident.Subscriber, error) {
	var err error
	switch sub.Kind {
	case incident.SubscriberWebhook:
		if sub.Secret == "" {
			if sub.Secret, err = incident.NewWebhookSecret(); err != nil {
				return sub, err
			}
		}
		if err := incident.ValidateWebhook(sub.Target, sub.Secret); err != nil {
			return sub, err
		}
	case incident.SubscriberEmail:
		if sub.Target, err = incident.ValidateEmail(sub.Target); err != nil {
			return sub, err
		}
		if sub.Token, err = incident.NewSubscriptionToken(); err != nil {
			return sub, err
		}
		sub.Secret = ""
	default:
		return sub, release.Errorf(release.EINVALID, "subscriber kind %q: want webhook or email", sub.Kind)
	}
	if sub.Components == nil {
		sub.Components = []int64{}
	}
	sub.ID, sub.CreatedAt, sub.CreatedBy, sub.ConfirmedAt = uuid.Must(uuid.NewV7()).String(), now(), actor, nil
	if sub.Kind == incident.SubscriberWebhook {
		at := sub.CreatedAt
		sub.ConfirmedAt = &at
	}
	return sub, nil
}

func insertSubscriber(ctx context.Context, tx *sql.Tx, sub incident.Subscriber) error {
	comps, err := json.Marshal(sub.Components)
	if err != nil {
		return fmt.Errorf("create subscriber: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO subscribers (`+subscriberCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		sub.ID, string(sub.Kind), sub.Target, sub.Secret, sub.Token, string(comps), sub.CreatedAt, sub.CreatedBy, ptrOrNil(sub.ConfirmedAt)); err != nil {
		return fmt.Errorf("create subscriber: %w", err)
	}
	return nil
}

// queueConfirm queues the opt-in email of sub.
func queueConfirm(ctx context.Context, tx *sql.Tx, sub incident.Subscriber, site incident.SPPage) error {
	m := incident.ConfirmMessage(site, sub.ID, time.Now().UnixNano())
	m.At = now()
	id, err := insertMessage(ctx, tx, m)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (message_id, subscriber_id, next_attempt_at, created_at) VALUES ($1, $2, $3, $3)`,
		id, sub.ID, m.At); err != nil {
		return fmt.Errorf("queue opt-in email: %w", err)
	}
	return nil
}

// insertMessage stores m and returns its row id.
func insertMessage(ctx context.Context, tx *sql.Tx, m incident.Message) (int64, error) {
	comps, err := json.Marshal(m.Components)
	if err != nil {
		return 0, fmt.Errorf("store message %s: %w", m.EventID, err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO notify_messages (event_id, kind, subject, body, text, components, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		m.EventID, m.Kind, m.Subject, string(m.Body), m.Text, string(comps), now()).Scan(&id); err != nil {
		return 0, fmt.Errorf("store message %s: %w", m.EventID, err)
	}
	return id, nil
}

// Subscribe is the public, unauthenticated subscription of an email address
// (to components, or all when empty): it creates an unconfirmed subscriber
// and queues the opt-in email. For an address already subscribed it queues
// a fresh opt-in email if the subscription is still unconfirmed (at most
// one every 10 minutes) and otherwise does nothing; either way the caller
// learns nothing about who is subscribed.
func (s *Store) Subscribe(ctx context.Context, email string, components []int64, site incident.SPPage) error {
	sub, err := newSubscriber(incident.Subscriber{Kind: incident.SubscriberEmail, Target: email, Components: components}, "public")
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE kind = $1 AND target = $2`, string(incident.SubscriberEmail), sub.Target)
		old, err := scanSubscriber(row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := insertSubscriber(ctx, tx, sub); err != nil {
				return err
			}
			if err := queueConfirm(ctx, tx, sub, site); err != nil {
				return err
			}
			return audit(ctx, tx, "public", "subscriber.create", "subscriber/"+sub.ID, nil, sub.Redacted())
		case err != nil:
			return fmt.Errorf("subscribe: %w", err)
		case old.ConfirmedAt != nil:
			return nil
		}
		recent, err := exists(ctx, tx, `SELECT 1 FROM deliveries d JOIN notify_messages m ON m.id = d.message_id
			WHERE d.subscriber_id = $1 AND m.kind = $2 AND d.created_at > $3`, old.ID, incident.KindConfirm, now().Add(-10*time.Minute))
		if err != nil || recent {
			return err
		}
		return queueConfirm(ctx, tx, old, site)
	})
}

// ConfirmSubscription confirms the email subscription whose opt-in token
// this is; ENOTFOUND for unknown tokens. Confirming twice is fine.
func (s *Store) ConfirmSubscription(ctx context.Context, token string) (incident.Subscriber, error) {
	var sub incident.Subscriber
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		sub, err = subscriberByToken(ctx, tx, token)
		if err != nil || sub.ConfirmedAt != nil {
			return err
		}
		before := sub.Redacted()
		at := now()
		sub.ConfirmedAt = &at
		if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET confirmed_at = $1 WHERE id = $2`, at, sub.ID); err != nil {
			return fmt.Errorf("confirm subscription: %w", err)
		}
		return audit(ctx, tx, "public", "subscriber.confirm", "subscriber/"+sub.ID, before, sub.Redacted())
	})
	return sub, err
}

// Unsubscribe deletes the email subscription whose token this is, with its
// pending deliveries; ENOTFOUND for unknown tokens (already unsubscribed).
func (s *Store) Unsubscribe(ctx context.Context, token string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		sub, err := subscriberByToken(ctx, tx, token)
		if err != nil {
			return err
		}
		return deleteSubscriber(ctx, tx, "public", sub)
	})
}

func subscriberByToken(ctx context.Context, tx *sql.Tx, token string) (incident.Subscriber, error) {
	if token == "" {
		return incident.Subscriber{}, release.Errorf(release.ENOTFOUND, "subscription not found")
	}
	sub, err := scanSubscriber(tx.QueryRowContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE token = $1`, token))
	if err != nil {
		return sub, notFound(err, "subscription")
	}
	return sub, nil
}

func deleteSubscriber(ctx context.Context, tx *sql.Tx, actor string, sub incident.Subscriber) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE subscriber_id = $1`, sub.ID); err != nil {
		return fmt.Errorf("delete subscriber %s: %w", sub.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscribers WHERE id = $1`, sub.ID); err != nil {
		return fmt.Errorf("delete subscriber %s: %w", sub.ID, err)
	}
	return audit(ctx, tx, actor, "subscriber.delete", "subscriber/"+sub.ID, sub.Redacted(), nil)
}

// ListSubscribers returns every subscriber, oldest first, without secrets
// and with webhook URLs cut to scheme and host.
func (s *Store) ListSubscribers(ctx context.Context) ([]incident.Subscriber, error) {
	subs, err := queryAll(ctx, s.rdb, scanSubscriber, "list subscribers", `SELECT `+subscriberCols+` FROM subscribers ORDER BY created_at, id`)
	for i := range subs {
		subs[i] = subs[i].Redacted()
	}
	return subs, err
}

// DeleteSubscriber deletes subscriber id and its deliveries.
func (s *Store) DeleteSubscriber(ctx context.Context, actor, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		sub, err := scanSubscriber(tx.QueryRowContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE id = $1`, id))
		if err != nil {
			return notFound(err, "subscriber %s", id)
		}
		return deleteSubscriber(ctx, tx, actor, sub)
	})
}

// FanOutCursor returns the id of the last status notification fanned out.
func (s *Store) FanOutCursor(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT last_id FROM notify_cursor WHERE name = $1`, fanOutCursor).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read fan-out cursor: %w", err)
	}
	return id, nil
}

// FanOut stores msgs, each with one delivery per subscriber that wants it
// (incident.Subscriber.Wants), and moves the fan-out cursor from after to
// through, in one transaction; it does nothing if the cursor is no longer
// at after (another server did it). It returns the deliveries queued.
func (s *Store) FanOut(ctx context.Context, after, through int64, msgs []incident.Message) (int, error) {
	queued := 0
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		queued = 0
		if err := s.serialize(ctx, tx, "notify.fanout"); err != nil {
			return err
		}
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT last_id FROM notify_cursor WHERE name = $1`, fanOutCursor).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("fan out: read cursor: %w", err)
		}
		if cur != after {
			return nil
		}
		subs, err := queryAll(ctx, tx, scanSubscriber, "fan out: list subscribers",
			`SELECT `+subscriberCols+` FROM subscribers WHERE confirmed_at IS NOT NULL`)
		if err != nil {
			return err
		}
		at := now()
		for _, m := range msgs {
			var wanted []string
			for _, sub := range subs {
				if sub.Wants(m.Components, m.At) {
					wanted = append(wanted, sub.ID)
				}
			}
			if len(wanted) == 0 {
				continue
			}
			id, err := insertMessage(ctx, tx, m)
			if err != nil {
				return err
			}
			full := make([][]any, len(wanted))
			for i, sid := range wanted {
				full[i] = []any{id, sid, at, at}
			}
			if err := insertRows(ctx, tx, s.statementParams(), `INSERT INTO deliveries (message_id, subscriber_id, next_attempt_at, created_at) VALUES `, "", full); err != nil {
				return fmt.Errorf("fan out %s: %w", m.EventID, err)
			}
			queued += len(full)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_cursor (name, last_id) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id`, fanOutCursor, through); err != nil {
			return fmt.Errorf("fan out: move cursor: %w", err)
		}
		return nil
	})
	return queued, err
}

// ClaimDeliveries claims up to limit due deliveries, oldest due first, and
// counts the attempt: their next attempt moves lease ahead, so another
// server (or a later call) does not send them while this attempt runs. On
// PostgreSQL rows another server is claiming are skipped (FOR UPDATE SKIP
// LOCKED); on SQLite write transactions exclude each other.
func (s *Store) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]incident.DeliveryAttempt, error) {
	var items []incident.DeliveryAttempt
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		q := `SELECT d.id, d.attempts, s.id, s.kind, s.target, s.secret, s.token,
			m.event_id, m.kind, m.subject, m.body, m.text, m.components
			FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id JOIN notify_messages m ON m.id = d.message_id
			WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at, d.id LIMIT $2`
		if s.dialect == Postgres {
			q += ` FOR UPDATE OF d SKIP LOCKED`
		}
		n := now()
		var err error
		items, err = queryAll(ctx, tx, func(row scanner) (incident.DeliveryAttempt, error) {
			var a incident.DeliveryAttempt
			var body, comps string
			err := row.Scan(&a.DeliveryID, &a.Attempts, &a.Subscriber.ID, &a.Subscriber.Kind, &a.Subscriber.Target, &a.Subscriber.Secret,
				&a.Subscriber.Token, &a.Message.EventID, &a.Message.Kind, &a.Message.Subject, &body, &a.Message.Text, &comps)
			if err != nil {
				return a, err
			}
			a.Attempts++
			a.Message.Body = []byte(body)
			return a, json.Unmarshal([]byte(comps), &a.Message.Components)
		}, "claim deliveries", q, n, limit)
		if err != nil || len(items) == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1
			WHERE id IN (`+idList(ids(items, func(a incident.DeliveryAttempt) int64 { return a.DeliveryID }))+`)`, n.Add(lease)); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		return nil
	})
	return items, err
}

// ids maps items to their ids.
func ids[T any](items []T, id func(T) int64) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// FinishDeliveries records the outcomes of attempts in one transaction:
// delivered, retried at RetryAt, or dead.
func (s *Store) FinishDeliveries(ctx context.Context, outcomes []incident.DeliveryOutcome) error {
	var ok []incident.DeliveryOutcome
	for _, o := range outcomes {
		if o.Err == "" {
			ok = append(ok, o)
		}
	}
	return s.writeSilent(ctx, func(tx *sql.Tx) error {
		n := now()
		for start := 0; start < len(ok); start += 500 {
			chunk := ok[start:min(start+500, len(ok))]
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'delivered', last_error = '', done_at = $1
				WHERE state = 'pending' AND id IN (`+idList(ids(chunk, func(o incident.DeliveryOutcome) int64 { return o.DeliveryID }))+`)`, n); err != nil {
				return fmt.Errorf("record deliveries: %w", err)
			}
		}
		for _, o := range outcomes {
			var err error
			switch {
			case o.Err == "":
				continue
			case o.Dead:
				_, err = tx.ExecContext(ctx, `UPDATE deliveries SET state = 'dead', last_error = $1, done_at = $2 WHERE id = $3 AND state = 'pending'`,
					truncate(o.Err, 1000), n, o.DeliveryID)
			default:
				_, err = tx.ExecContext(ctx, `UPDATE deliveries SET last_error = $1, next_attempt_at = $2 WHERE id = $3 AND state = 'pending'`,
					truncate(o.Err, 1000), o.RetryAt.UTC(), o.DeliveryID)
			}
			if err != nil {
				return fmt.Errorf("record delivery %d: %w", o.DeliveryID, err)
			}
		}
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ListDeliveries returns up to limit deliveries, newest first: all, or
// only those in state.
func (s *Store) ListDeliveries(ctx context.Context, state incident.DeliveryState, limit int) ([]incident.Delivery, error) {
	q := `SELECT d.id, d.subscriber_id, s.kind, s.target, m.event_id, m.kind, m.subject, d.state, d.attempts, d.next_attempt_at,
		d.last_error, d.created_at, d.done_at
		FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id JOIN notify_messages m ON m.id = d.message_id`
	args := []any{limit}
	if state != "" {
		q += ` WHERE d.state = $2`
		args = append(args, string(state))
	}
	q += ` ORDER BY d.id DESC LIMIT $1`
	return queryAll(ctx, s.rdb, func(row scanner) (incident.Delivery, error) {
		var d incident.Delivery
		var done sql.NullTime
		err := row.Scan(&d.ID, &d.SubscriberID, &d.Kind, &d.Target, &d.EventID, &d.MessageKind, &d.Subject, &d.State, &d.Attempts,
			&d.NextAttemptAt, &d.LastError, &d.CreatedAt, &done)
		if d.Kind == incident.SubscriberWebhook {
			d.Target = incident.RedactURL(d.Target)
		}
		d.NextAttemptAt, d.CreatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC()
		if done.Valid {
			t := done.Time.UTC()
			d.DoneAt = &t
		}
		return d, err
	}, "list deliveries", q, args...)
}

// ReplayDelivery makes dead delivery id pending again, due now, with a
// fresh count of attempts. ENOTFOUND if there is none; ECONFLICT unless it
// is dead.
func (s *Store) ReplayDelivery(ctx context.Context, actor string, id int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var state incident.DeliveryState
		if err := tx.QueryRowContext(ctx, `SELECT state FROM deliveries WHERE id = $1`, id).Scan(&state); err != nil {
			return notFound(err, "delivery %d", id)
		}
		if state != incident.DeliveryDead {
			return release.Errorf(release.ECONFLICT, "delivery %d is %s: only dead deliveries are replayed", id, state)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, done_at = NULL
			WHERE id = $2`, now(), id); err != nil {
			return fmt.Errorf("replay delivery %d: %w", id, err)
		}
		return auditWhy(ctx, tx, actor, "delivery.replay", "delivery/"+strconv.FormatInt(id, 10), "", map[string]string{"state": string(state)},
			map[string]string{"state": string(incident.DeliveryPending)})
	})
}

// PruneDeliveries deletes deliveries done (delivered or dead) before cutoff,
// then messages created before cutoff that no delivery refers to any more.
func (s *Store) PruneDeliveries(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE state IN ('delivered', 'dead') AND done_at < $1`, cutoff.UTC())
		if err != nil {
			return fmt.Errorf("prune deliveries: %w", err)
		}
		d, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, `DELETE FROM notify_messages WHERE created_at < $1
			AND NOT EXISTS (SELECT 1 FROM deliveries WHERE deliveries.message_id = notify_messages.id)`, cutoff.UTC())
		if err != nil {
			return fmt.Errorf("prune notification messages: %w", err)
		}
		m, _ := res.RowsAffected()
		n = d + m
		return nil
	})
	return n, err
}
