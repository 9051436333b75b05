package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/incident"
)

const maintenanceCols = `id, title, status, scheduled_for, scheduled_until, components, created_at, updated_at, started_at, completed_at, by_actor`

func scanMaintenance(row scanner) (incident.Maintenance, error) {
	var m incident.Maintenance
	var status, comps string
	var started, completed sql.NullTime
	if err := row.Scan(&m.ID, &m.Title, &status, &m.ScheduledFor, &m.ScheduledUntil, &comps, &m.CreatedAt, &m.UpdatedAt,
		&started, &completed, &m.By); err != nil {
		return incident.Maintenance{}, err
	}
	m.Status = incident.MaintenanceStatus(status)
	m.ScheduledFor, m.ScheduledUntil, m.CreatedAt, m.UpdatedAt = m.ScheduledFor.UTC(), m.ScheduledUntil.UTC(), m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	m.StartedAt, m.CompletedAt = timePtr(started), timePtr(completed)
	if err := json.Unmarshal([]byte(comps), &m.Components); err != nil {
		return incident.Maintenance{}, fmt.Errorf("stored maintenance %d components: %w", m.ID, err)
	}
	if m.Components == nil {
		m.Components = []int64{}
	}
	m.Updates = []incident.MaintenanceUpdate{}
	return m, nil
}

// loadMaintenanceUpdates fills in the timelines of ms, newest first.
func loadMaintenanceUpdates(ctx context.Context, q queryer, ms []incident.Maintenance) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]int64, len(ms))
	index := map[int64]int{}
	for n, m := range ms {
		ids[n], index[m.ID] = m.ID, n
	}
	us, err := queryAll(ctx, q, func(row scanner) (incident.MaintenanceUpdate, error) {
		var u incident.MaintenanceUpdate
		var status, comps string
		if err := row.Scan(&u.ID, &u.MaintenanceID, &status, &u.Body, &comps, &u.By, &u.At); err != nil {
			return u, err
		}
		u.Status, u.At = incident.MaintenanceStatus(status), u.At.UTC()
		if err := json.Unmarshal([]byte(comps), &u.Components); err != nil {
			return u, fmt.Errorf("stored maintenance update %d: %w", u.ID, err)
		}
		if u.Components == nil {
			u.Components = []incident.ComponentChange{}
		}
		return u, nil
	}, "load maintenance updates", `SELECT id, maintenance_id, status, body, components, by_actor, at FROM maintenance_updates
		WHERE maintenance_id IN (`+idList(ids)+`) ORDER BY at DESC, id DESC`)
	if err != nil {
		return err
	}
	for _, u := range us {
		n := index[u.MaintenanceID]
		ms[n].Updates = append(ms[n].Updates, u)
	}
	return nil
}

// maintenances reads maintenances with their timelines.
func maintenances() timelined[incident.Maintenance] {
	return timelined[incident.Maintenance]{scan: scanMaintenance, load: loadMaintenanceUpdates}
}

// getMaintenance reads one maintenance with its timeline; ENOTFOUND if
// unknown. lock takes its row lock on PostgreSQL (in a write transaction).
func (s *Store) getMaintenance(ctx context.Context, q queryer, id int64, lock bool) (incident.Maintenance, error) {
	return maintenances().one(ctx, s.dialect, q, `SELECT `+maintenanceCols+` FROM maintenances WHERE id = $1`, id, lock, "maintenance")
}

// GetMaintenance returns one maintenance with its timeline.
func (s *Store) GetMaintenance(ctx context.Context, id int64) (incident.Maintenance, error) {
	return s.getMaintenance(ctx, s.rdb, id, false)
}

// ListMaintenances returns up to limit maintenances, newest scheduled start
// first, with their timelines; pendingOnly keeps those not yet ended.
func (s *Store) ListMaintenances(ctx context.Context, pendingOnly bool, limit int) ([]incident.Maintenance, error) {
	where := ``
	if pendingOnly {
		where = ` WHERE status IN ('scheduled', 'in_progress', 'verifying')`
	}
	return maintenances().all(ctx, s.rdb, "list maintenances",
		`SELECT `+maintenanceCols+` FROM maintenances`+where+` ORDER BY scheduled_for DESC, id DESC LIMIT $1`, limit)
}

func maintenanceTarget(id int64) string { return "maintenance/" + strconv.FormatInt(id, 10) }

// ScheduleMaintenance announces a maintenance of the named components from
// from to until, records its notification (maintenance_scheduled) and
// audits it with its message.
func (s *Store) ScheduleMaintenance(ctx context.Context, actor, title, message string, from, until time.Time, components []string) (incident.Maintenance, error) {
	var m incident.Maintenance
	err := s.write(ctx, func(tx *sql.Tx) error {
		ids, err := componentIDs(ctx, tx, components)
		if err != nil {
			return err
		}
		at := now()
		if m, err = incident.Schedule(title, message, from.Truncate(time.Microsecond), until.Truncate(time.Microsecond), ids, actor, at); err != nil {
			return err
		}
		comps, err := jsonText("maintenance components", m.Components)
		if err != nil {
			return err
		}
		if m.ID, err = insertID(ctx, tx, "schedule maintenance", `INSERT INTO maintenances (title, status, scheduled_for, scheduled_until,
			components, created_at, updated_at, by_actor) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
			m.Title, string(m.Status), m.ScheduledFor, m.ScheduledUntil, comps, at, actor); err != nil {
			return err
		}
		m.Updates[0].MaintenanceID = m.ID
		if err := insertMaintenanceUpdate(ctx, tx, &m.Updates[0]); err != nil {
			return err
		}
		if n, ok := incident.MaintenanceNotification(m, m.Updates[0], at); ok {
			if _, err := s.notify(ctx, tx, n); err != nil {
				return err
			}
		}
		return auditWhy(ctx, tx, actor, "maintenance.schedule", maintenanceTarget(m.ID), message, nil, m)
	})
	return m, err
}

func insertMaintenanceUpdate(ctx context.Context, tx *sql.Tx, u *incident.MaintenanceUpdate) error {
	comps, err := jsonText("maintenance update components", u.Components)
	if err != nil {
		return err
	}
	u.ID, err = insertID(ctx, tx, fmt.Sprintf("add update to maintenance %d", u.MaintenanceID), `INSERT INTO maintenance_updates
		(maintenance_id, status, body, components, by_actor, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.MaintenanceID, string(u.Status), u.Body, comps, u.By, u.At)
	return err
}

// MoveMaintenance moves maintenance id to next (the domain's rules;
// ECONFLICT for an illegal move) with message ("" for the default text).
// Starting it puts its components under maintenance; ending it returns
// those still under maintenance to operational. Start and end are notified.
func (s *Store) MoveMaintenance(ctx context.Context, actor string, id int64, next incident.MaintenanceStatus, message string) (incident.Maintenance, error) {
	var m incident.Maintenance
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		m, _, err = s.moveMaintenance(ctx, tx, actor, id, func(incident.Maintenance) (incident.MaintenanceStatus, bool) { return next, true }, message)
		return err
	})
	return m, err
}

// moveMaintenance is MoveMaintenance inside tx, with the next status chosen
// by pick from the locked row (ok false: nothing to do).
func (s *Store) moveMaintenance(ctx context.Context, tx *sql.Tx, actor string, id int64,
	pick func(incident.Maintenance) (incident.MaintenanceStatus, bool), message string) (incident.Maintenance, bool, error) {
	before, err := s.getMaintenance(ctx, tx, id, true)
	if err != nil {
		return incident.Maintenance{}, false, err
	}
	next, ok := pick(before)
	if !ok {
		return before, false, nil
	}
	if err := before.Status.CanBecome(next); err != nil {
		return incident.Maintenance{}, false, err
	}
	at := now()
	var changes []incident.ComponentChange
	switch {
	case next == incident.MaintenanceInProgress && before.StartedAt == nil:
		cs := make([]incident.ComponentChange, len(before.Components))
		for n, cid := range before.Components {
			cs[n] = incident.ComponentChange{ComponentID: cid, NewStatus: incident.UnderMaintenance}
		}
		if changes, err = s.changeComponents(ctx, tx, cs, at); err != nil {
			return incident.Maintenance{}, false, err
		}
	case next == incident.MaintenanceCompleted:
		// Only those still under maintenance: one an incident set to an
		// outage meanwhile keeps that status.
		for _, cid := range before.Components {
			var st string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM status_components WHERE id = $1`, cid).Scan(&st); err != nil {
				return incident.Maintenance{}, false, fmt.Errorf("read component %d: %w", cid, err)
			}
			if incident.ComponentStatus(st) == incident.UnderMaintenance {
				ch, err := s.changeComponents(ctx, tx, []incident.ComponentChange{{ComponentID: cid, NewStatus: incident.Operational}}, at)
				if err != nil {
					return incident.Maintenance{}, false, err
				}
				changes = append(changes, ch...)
			}
		}
	}
	m := before
	m.Updates = append([]incident.MaintenanceUpdate{}, before.Updates...)
	u, err := m.Move(next, message, changes, actor, at)
	if err != nil {
		return incident.Maintenance{}, false, err
	}
	if err := insertMaintenanceUpdate(ctx, tx, &u); err != nil {
		return incident.Maintenance{}, false, err
	}
	m.Updates[0] = u
	res, err := tx.ExecContext(ctx, `UPDATE maintenances SET status = $1, updated_at = $2, started_at = $3, completed_at = $4
		WHERE id = $5 AND status = $6`, string(m.Status), at, nullTime(m.StartedAt), nullTime(m.CompletedAt), id, string(before.Status))
	if err != nil {
		return incident.Maintenance{}, false, fmt.Errorf("move maintenance %d to %s: %w", id, next, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return incident.Maintenance{}, false, fmt.Errorf("move maintenance %d: %w", id, err)
	} else if n == 0 {
		return incident.Maintenance{}, false, incident.Errorf(incident.ECONFLICT, "maintenance %d changed meanwhile; retry", id)
	}
	if n, ok := incident.MaintenanceNotification(m, u, at); ok {
		if _, err := s.notify(ctx, tx, n); err != nil {
			return incident.Maintenance{}, false, err
		}
	}
	b, a := before, m
	b.Updates, a.Updates = nil, m.Updates[:1]
	return m, true, auditWhy(ctx, tx, actor, "maintenance."+string(next), maintenanceTarget(id), u.Body, b, a)
}

// RunMaintenanceSchedule makes every transition the schedule owes at now:
// scheduled maintenances whose window began start, active ones whose
// window ended complete, each in its own transaction with its notification
// and audit entry (actor "scheduler"). It is idempotent and safe to run
// from several servers at once: each transition re-reads its row locked
// and is conditional on the status read, so exactly one server makes it.
// A window that passed entirely while no server ran is started and then
// completed. It returns the number of transitions it made.
func (s *Store) RunMaintenanceSchedule(ctx context.Context, at time.Time) (int, error) {
	due, err := queryAll(ctx, s.rdb, func(row scanner) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, "find due maintenances", `SELECT id FROM maintenances WHERE (status = 'scheduled' AND scheduled_for <= $1)
		OR (status IN ('in_progress', 'verifying') AND scheduled_until <= $1) ORDER BY scheduled_for, id`, at.UTC())
	if err != nil {
		return 0, err
	}
	made := 0
	for _, id := range due {
		for step := 0; step < 2; step++ { // start, then complete if the window is over too
			var moved bool
			err := s.write(ctx, func(tx *sql.Tx) error {
				var err error
				_, moved, err = s.moveMaintenance(ctx, tx, ActorScheduler, id, func(m incident.Maintenance) (incident.MaintenanceStatus, bool) {
					return m.Due(at)
				}, "")
				return err
			})
			if incident.ErrorCode(err) == incident.ECONFLICT {
				break // another server moved it meanwhile
			}
			if err != nil {
				return made, fmt.Errorf("run maintenance %d on schedule: %w", id, err)
			}
			if !moved {
				break
			}
			made++
		}
	}
	return made, nil
}
