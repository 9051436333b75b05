package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// StatusPage reads everything the public status page shows as of now, in
// one read transaction (a snapshot: on PostgreSQL REPEATABLE READ, on
// SQLite a WAL read transaction), so the page never mixes states. Drafts
// are left out. See incident.Page.
func (s *Store) StatusPage(ctx context.Context, now time.Time) (incident.Page, error) {
	var opts *sql.TxOptions
	if s.dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return incident.Page{}, fmt.Errorf("read status page: begin: %w", err)
	}
	defer tx.Rollback()
	p, err := readPage(ctx, tx, now.UTC())
	if err != nil {
		return incident.Page{}, fmt.Errorf("read status page: %w", err)
	}
	return p, nil
}

func readPage(ctx context.Context, tx *sql.Tx, now time.Time) (incident.Page, error) {
	p := incident.Page{ReadAt: now}
	since := incident.DayStart(now).AddDate(0, 0, -(incident.HistoryDays - 1))
	var err error
	if p.Groups, err = listGroups(ctx, tx); err != nil {
		return p, err
	}
	if p.Components, err = listComponents(ctx, tx); err != nil {
		return p, err
	}
	scanChange := func(row scanner) (incident.StatusChange, error) {
		var c incident.StatusChange
		var st string
		err := row.Scan(&c.ComponentID, &st, &c.At)
		c.Status, c.At = incident.ComponentStatus(st), c.At.UTC()
		return c, err
	}
	// The status each component had when the window opened, then every
	// change inside it.
	changes, err := queryAll(ctx, tx, scanChange, "load component history",
		`SELECT component_id, status, at FROM component_status_log WHERE id IN
			(SELECT MAX(id) FROM component_status_log WHERE at < $1 GROUP BY component_id) ORDER BY id`, since)
	if err != nil {
		return p, err
	}
	recent, err := queryAll(ctx, tx, scanChange, "load component history",
		`SELECT component_id, status, at FROM component_status_log WHERE at >= $1 ORDER BY at, id`, since)
	if err != nil {
		return p, err
	}
	changes = append(changes, recent...)

	incs, err := queryAll(ctx, tx, scanIncident, "load incidents", `SELECT `+incidentCols+` FROM incidents
		WHERE NOT draft AND (status IN ('investigating', 'identified', 'monitoring') OR updated_at >= $1 OR created_at >= $1)
		ORDER BY created_at DESC, id DESC`, since)
	if err != nil {
		return p, err
	}
	if err := loadIncidentDetails(ctx, tx, incs); err != nil {
		return p, err
	}
	p.Incidents, p.Unresolved = incs, []incident.Incident{}
	for _, i := range incs {
		if i.Unresolved() {
			p.Unresolved = append(p.Unresolved, i)
		}
	}
	p.History = make([]incident.ComponentHistory, len(p.Components))
	for n, c := range p.Components {
		p.History[n] = incident.History(c, changes, incs, now, incident.HistoryDays)
	}

	if p.Maintenances, err = queryAll(ctx, tx, scanMaintenance, "load maintenances", `SELECT `+maintenanceCols+` FROM maintenances
		WHERE status IN ('scheduled', 'in_progress', 'verifying') OR scheduled_until >= $1 OR updated_at >= $1
		ORDER BY scheduled_for DESC, id DESC`, since); err != nil {
		return p, err
	}
	if err := loadMaintenanceUpdates(ctx, tx, p.Maintenances); err != nil {
		return p, err
	}

	pulled, err := pulledReleases(ctx, tx, since)
	if err != nil {
		return p, err
	}
	p.Pulled = incident.PulledNotices(pulled)

	p.UpdatedAt = incident.DayStart(now)
	later := func(t time.Time) {
		if t.After(p.UpdatedAt) {
			p.UpdatedAt = t
		}
	}
	for _, c := range p.Components {
		later(c.UpdatedAt)
	}
	for _, i := range p.Incidents {
		later(i.UpdatedAt)
	}
	for _, m := range p.Maintenances {
		later(m.UpdatedAt)
	}
	for _, n := range p.Pulled {
		later(n.At)
	}
	return p, nil
}

// pulledReleases returns the releases pulled since since, in ascending
// version order per product, with the newest published incident linked to
// each.
func pulledReleases(ctx context.Context, tx *sql.Tx, since time.Time) ([]incident.PulledRelease, error) {
	rels, err := queryAll(ctx, tx, scanRelease, "load pulled releases", `SELECT `+releaseCols+` FROM releases WHERE status = 'pulled'`)
	if err != nil {
		return nil, err
	}
	sort.Slice(rels, func(i, j int) bool {
		if rels[i].Product != rels[j].Product {
			return rels[i].Product < rels[j].Product
		}
		return rels[i].Version.Less(rels[j].Version)
	})
	links, err := queryAll(ctx, tx, func(row scanner) ([3]any, error) {
		var product, version string
		var id int64
		err := row.Scan(&product, &version, &id)
		return [3]any{product, version, id}, err
	}, "load incidents of pulled releases", `SELECT ir.product, ir.version, MAX(ir.incident_id) FROM incident_releases ir
		JOIN incidents i ON i.id = ir.incident_id JOIN releases r ON r.product = ir.product AND r.version = ir.version
		WHERE NOT i.draft AND r.status = 'pulled' GROUP BY ir.product, ir.version`)
	if err != nil {
		return nil, err
	}
	linked := map[[2]string]int64{}
	for _, l := range links {
		linked[[2]string{l[0].(string), l[1].(string)}] = l[2].(int64)
	}
	out := []incident.PulledRelease{}
	for _, r := range rels {
		if r.Pulled == nil || r.Pulled.At.Before(since) {
			continue
		}
		pr := incident.PulledRelease{Product: r.Product, Version: r.Version.String(), Action: string(r.Pulled.Action),
			Reason: r.Pulled.Reason, At: r.Pulled.At.UTC(), IncidentID: linked[[2]string{r.Product, r.Version.String()}]}
		if r.Pulled.Action != release.ActionHold && !r.Pulled.Target.IsZero() {
			pr.Target = r.Pulled.Target.String()
		}
		out = append(out, pr)
	}
	return out, nil
}
