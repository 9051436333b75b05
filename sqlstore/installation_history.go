package sqlstore

import (
	"context"

	"github.com/ringfence/ringfence/release"
)

// InstallationHistory returns what the store keeps of product's
// installation instanceID (under every customer that has one by that id):
// its records, and up to limit of its events and damage reports, newest
// first. ENOTFOUND when no installation has that id.
func (s *Store) InstallationHistory(ctx context.Context, product, instanceID string, limit int) (release.InstallationHistory, error) {
	var h release.InstallationHistory
	var err error
	h.Installations, err = queryAll(ctx, s.rdb, func(row scanner) (release.Installation, error) {
		var in release.Installation
		var version, health string
		if err := row.Scan(&in.Product, &in.InstanceID, &in.Customer, &in.Ring, &version, &health, &in.Health.Detail, &in.FirstSeen, &in.LastSeen); err != nil {
			return in, err
		}
		in.Version, _ = release.ParseVersion(version)
		in.Health.Status, in.FirstSeen, in.LastSeen = release.HealthStatus(health), in.FirstSeen.UTC(), in.LastSeen.UTC()
		return in, nil
	}, "installation history", `SELECT i.product, i.instance_id, i.customer, COALESCE(c.ring, ''), i.version, i.health, i.health_detail, i.first_seen, i.last_seen
		FROM installations i LEFT JOIN customers c ON c.product = i.product AND c.name = i.customer
		WHERE i.product = $1 AND i.instance_id = $2 ORDER BY i.customer`, product, instanceID)
	if err != nil {
		return h, err
	}
	if len(h.Installations) == 0 {
		return h, release.Errorf(release.ENOTFOUND, "no installation %s of %s (it may have been pruned after the retention period)", instanceID, product)
	}
	h.Events, err = queryAll(ctx, s.rdb, func(row scanner) (release.InstanceEvent, error) {
		var e release.InstanceEvent
		var kind, from, to string
		if err := row.Scan(&e.InstanceID, &e.Customer, &kind, &from, &to, &e.At, &e.Detail); err != nil {
			return e, err
		}
		e.Kind, e.At = release.EventKind(kind), e.At.UTC()
		e.From, _ = release.ParseVersion(from)
		e.To, _ = release.ParseVersion(to)
		return e, nil
	}, "installation history", `SELECT instance_id, customer, kind, from_version, to_version, at, detail FROM events
		WHERE product = $1 AND instance_id = $2 ORDER BY id DESC LIMIT $3`, product, instanceID, limit)
	if err != nil {
		return h, err
	}
	h.Reports, err = queryAll(ctx, s.rdb, func(row scanner) (release.HealthReportRow, error) {
		var r release.HealthReportRow
		var version, status string
		if err := row.Scan(&version, &status, &r.Detail, &r.At); err != nil {
			return r, err
		}
		r.Version, _ = release.ParseVersion(version)
		r.Status, r.At = release.HealthStatus(status), r.At.UTC()
		return r, nil
	}, "installation history", `SELECT version, status, detail, at FROM health_reports
		WHERE product = $1 AND instance_id = $2 ORDER BY id DESC LIMIT $3`, product, instanceID, limit)
	return h, err
}
