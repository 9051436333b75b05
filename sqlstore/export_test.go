package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/release"
)

// What only the tests use: kept out of the exported API (issue 10).

// HaltEvidence returns the events about release v of product and its failing
// health reports received after since, each dated by the server's receipt
// time, for inspection with release.CountHalt. It loads every row, so
// auto-halt itself uses HaltCounts; only tests use it.
func (s *Store) HaltEvidence(ctx context.Context, product string, v release.Version, since time.Time) ([]release.InstanceEvent, []release.HealthReport, error) {
	events, err := queryAll(ctx, s.rdb, func(row scanner) (release.InstanceEvent, error) {
		var e release.InstanceEvent
		var kind, from, seenOn string
		if err := row.Scan(&e.InstanceID, &e.Customer, &kind, &from, &e.At, &e.Detail, &seenOn); err != nil {
			return e, err
		}
		e.Kind, e.To, e.At = release.EventKind(kind), v, e.At.UTC()
		e.SeenOn, _ = release.ParseVersion(seenOn) // '' (unknown before) stays zero
		if from != "" {
			f, err := release.ParseVersion(from)
			if err != nil {
				return e, fmt.Errorf("stored event of %s: %w", e.InstanceID, err)
			}
			e.From = f
		}
		return e, nil
	}, "load auto-halt events", `SELECT instance_id, customer, kind, from_version, received_at, detail, seen_on FROM events
		WHERE product = $1 AND to_version = $2 AND received_at > $3 ORDER BY id`, product, v.String(), since.UTC())
	if err != nil {
		return nil, nil, err
	}
	reports, err := queryAll(ctx, s.rdb, func(row scanner) (release.HealthReport, error) {
		var h release.HealthReport
		var status, seenOn string
		err := row.Scan(&h.InstanceID, &h.Customer, &status, &h.Health.Detail, &h.At, &seenOn)
		h.Version, h.Health.Status, h.At = v, release.HealthStatus(status), h.At.UTC()
		h.SeenOn, _ = release.ParseVersion(seenOn) // '' (unknown before) stays zero
		return h, err
	}, "load auto-halt health reports", `SELECT instance_id, customer, status, detail, at, seen_on FROM health_reports
		WHERE product = $1 AND version = $2 AND at > $3 ORDER BY id`, product, v.String(), since.UTC())
	if err != nil {
		return nil, nil, err
	}
	return events, reports, nil
}

// InstallationsLastSeen counts the installations whose last_seen equals t
// passed as a parameter: a time the check-in writer stored from its batch
// parameter must compare equal to the same time as a parameter.
func (s *Store) InstallationsLastSeen(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM installations WHERE last_seen = $1`, t.UTC()).Scan(&n)
	return n, err
}
