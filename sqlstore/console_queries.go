package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ringfence/ringfence/release"
)

// This file holds the reads of the operators' console: searching and
// paging installations, one installation's history, health per release and
// ring, and the audit log with filters.

// likePattern turns free text into a case-insensitive LIKE pattern matching
// it anywhere, with LIKE's wildcards in it escaped (ESCAPE '\').
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(text)) + "%"
}

const installationCols = `i.product, i.instance_id, i.customer, COALESCE(c.ring, ''), i.version, i.health, i.health_detail, i.first_seen, i.last_seen`

func scanInstallation(row scanner) (release.Installation, error) {
	var in release.Installation
	var version, health string
	if err := row.Scan(&in.Product, &in.InstanceID, &in.Customer, &in.Ring, &version, &health, &in.Health.Detail, &in.FirstSeen, &in.LastSeen); err != nil {
		return in, err
	}
	in.Version, _ = release.ParseVersion(version) // installations may report versions that are no release
	in.Health.Status, in.FirstSeen, in.LastSeen = release.HealthStatus(health), in.FirstSeen.UTC(), in.LastSeen.UTC()
	return in, nil
}

// SearchInstallations returns the page of product's installations (offset,
// at most limit), most recently seen first, whose instance id, customer,
// ring, version or health contains text (case-insensitive; all when text is
// empty), and how many match in all.
func (s *Store) SearchInstallations(ctx context.Context, product, text string, offset, limit int) ([]release.Installation, int, error) {
	const from = ` FROM installations i LEFT JOIN customers c ON c.product = i.product AND c.name = i.customer
		WHERE i.product = $1 AND ($2 = '%%' OR LOWER(i.instance_id) LIKE $2 ESCAPE '\' OR LOWER(i.customer) LIKE $2 ESCAPE '\'
			OR LOWER(COALESCE(c.ring, '')) LIKE $2 ESCAPE '\' OR LOWER(i.version) LIKE $2 ESCAPE '\' OR LOWER(i.health) LIKE $2 ESCAPE '\')`
	pattern := likePattern(text)
	var total int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*)`+from, product, pattern).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count installations of %s: %w", product, err)
	}
	page, err := queryAll(ctx, s.rdb, scanInstallation, "search installations",
		`SELECT `+installationCols+from+` ORDER BY i.last_seen DESC, i.customer, i.instance_id LIMIT $3 OFFSET $4`,
		product, pattern, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return page, total, nil
}

// InstallationHistory is one installation and what it reported.
type InstallationHistory struct {
	Installation release.Installation
	// Events and Reports (failing health reports) are newest first.
	Events  []release.InstanceEvent
	Reports []release.HealthReport
}

// GetInstallationHistory returns installation instance of customer of
// product with up to limit of its latest events and health reports;
// ENOTFOUND if unknown.
func (s *Store) GetInstallationHistory(ctx context.Context, product, customer, instance string, limit int) (InstallationHistory, error) {
	var h InstallationHistory
	in, err := scanInstallation(s.rdb.QueryRowContext(ctx, `SELECT `+installationCols+`
		FROM installations i LEFT JOIN customers c ON c.product = i.product AND c.name = i.customer
		WHERE i.product = $1 AND i.customer = $2 AND i.instance_id = $3`, product, customer, instance))
	if errors.Is(err, sql.ErrNoRows) {
		return h, release.Errorf(release.ENOTFOUND, "installation %s of customer %s (%s) not found", instance, customer, product)
	}
	if err != nil {
		return h, fmt.Errorf("load installation %s: %w", instance, err)
	}
	h.Installation = in
	h.Events, err = queryAll(ctx, s.rdb, func(row scanner) (release.InstanceEvent, error) {
		var e release.InstanceEvent
		var kind, from, to, seenOn string
		if err := row.Scan(&kind, &from, &to, &e.At, &e.Detail, &seenOn); err != nil {
			return e, err
		}
		e.InstanceID, e.Customer, e.Kind, e.At = instance, customer, release.EventKind(kind), e.At.UTC()
		e.From, _ = release.ParseVersion(from)
		e.To, _ = release.ParseVersion(to)
		e.SeenOn, _ = release.ParseVersion(seenOn)
		return e, nil
	}, "load installation events", `SELECT kind, from_version, to_version, at, detail, seen_on FROM events
		WHERE product = $1 AND customer = $2 AND instance_id = $3 ORDER BY id DESC LIMIT $4`, product, customer, instance, limit)
	if err != nil {
		return h, err
	}
	h.Reports, err = queryAll(ctx, s.rdb, func(row scanner) (release.HealthReport, error) {
		var r release.HealthReport
		var version, status, seenOn string
		if err := row.Scan(&version, &status, &r.Health.Detail, &r.At, &seenOn); err != nil {
			return r, err
		}
		r.InstanceID, r.Customer, r.Health.Status, r.At = instance, customer, release.HealthStatus(status), r.At.UTC()
		r.Version, _ = release.ParseVersion(version)
		r.SeenOn, _ = release.ParseVersion(seenOn)
		return r, nil
	}, "load installation health reports", `SELECT version, status, detail, at, seen_on FROM health_reports
		WHERE product = $1 AND customer = $2 AND instance_id = $3 ORDER BY id DESC LIMIT $4`, product, customer, instance, limit)
	return h, err
}

// HealthCount is the health of a product's installations on one version in
// one ring, by each one's last report, and how many installations of the
// ring reported a failed upgrade to the version recently.
type HealthCount struct {
	Product          string
	Version          string
	Ring             string
	OK               int
	Corrupt          int
	CollationChanged int
	Unknown          int
	UpgradeFailed    int
}

// HealthCounts counts, for every product, version and ring, the
// installations by last health, and the distinct installations that
// reported an upgrade to the version failed since since.
func (s *Store) HealthCounts(ctx context.Context, since time.Time) ([]HealthCount, error) {
	type key struct{ product, version, ring string }
	byKey := map[key]*HealthCount{}
	get := func(k key) *HealthCount {
		if byKey[k] == nil {
			byKey[k] = &HealthCount{Product: k.product, Version: k.version, Ring: k.ring}
		}
		return byKey[k]
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT i.product, i.version, c.ring,
			SUM(CASE WHEN i.health = 'ok' THEN 1 ELSE 0 END),
			SUM(CASE WHEN i.health = 'corrupt' THEN 1 ELSE 0 END),
			SUM(CASE WHEN i.health = 'collation_changed' THEN 1 ELSE 0 END),
			SUM(CASE WHEN i.health NOT IN ('ok', 'corrupt', 'collation_changed') THEN 1 ELSE 0 END)
		FROM installations i JOIN customers c ON c.product = i.product AND c.name = i.customer
		GROUP BY i.product, i.version, c.ring`)
	if err != nil {
		return nil, fmt.Errorf("count health: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var ok, corrupt, coll, unknown int
		if err := rows.Scan(&k.product, &k.version, &k.ring, &ok, &corrupt, &coll, &unknown); err != nil {
			return nil, fmt.Errorf("count health: %w", err)
		}
		c := get(k)
		c.OK, c.Corrupt, c.CollationChanged, c.Unknown = ok, corrupt, coll, unknown
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count health: %w", err)
	}
	failed, err := s.rdb.QueryContext(ctx, `SELECT e.product, e.to_version, c.ring, COUNT(DISTINCT e.customer || '/' || e.instance_id)
		FROM events e JOIN customers c ON c.product = e.product AND c.name = e.customer
		WHERE e.kind = 'upgrade_failed' AND e.received_at > $1
		GROUP BY e.product, e.to_version, c.ring`, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("count failed upgrades: %w", err)
	}
	defer failed.Close()
	for failed.Next() {
		var k key
		var n int
		if err := failed.Scan(&k.product, &k.version, &k.ring, &n); err != nil {
			return nil, fmt.Errorf("count failed upgrades: %w", err)
		}
		get(k).UpgradeFailed = n
	}
	if err := failed.Err(); err != nil {
		return nil, fmt.Errorf("count failed upgrades: %w", err)
	}
	out := make([]HealthCount, 0, len(byKey))
	for _, c := range byKey {
		out = append(out, *c)
	}
	return out, nil
}

// AuditFilter selects audit log entries: each non-empty text must occur in
// the field (case-insensitive); Before pages (ids below it; all when <= 0).
type AuditFilter struct {
	Actor, Action, Target string
	Before                int64
	Limit                 int
}

// SearchAudit returns up to f.Limit audit entries matching f, newest first.
func (s *Store) SearchAudit(ctx context.Context, f AuditFilter) ([]release.AuditEntry, error) {
	before := f.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	return queryAll(ctx, s.rdb, scanAuditEntry, "search audit log", `SELECT id, at, actor, action, target, reason, before, after FROM audit_log
		WHERE id < $1 AND LOWER(actor) LIKE $2 ESCAPE '\' AND LOWER(action) LIKE $3 ESCAPE '\' AND LOWER(target) LIKE $4 ESCAPE '\'
		ORDER BY id DESC LIMIT $5`, before, likePattern(f.Actor), likePattern(f.Action), likePattern(f.Target), f.Limit)
}
