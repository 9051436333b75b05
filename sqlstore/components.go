package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/incident"
)

const componentCols = `c.id, c.name, c.description, COALESCE(c.group_id, 0), COALESCE(g.name, ''), c.position, c.status,
	c.only_show_if_degraded, c.created_at, c.updated_at`

const componentFrom = ` FROM status_components c LEFT JOIN status_groups g ON g.id = c.group_id`

func scanComponent(row scanner) (incident.Component, error) {
	var c incident.Component
	var status string
	if err := row.Scan(&c.ID, &c.Name, &c.Description, &c.GroupID, &c.Group, &c.Position, &status,
		&c.OnlyShowIfDegraded, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return incident.Component{}, err
	}
	c.Status, c.CreatedAt, c.UpdatedAt = incident.ComponentStatus(status), c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// listComponents returns every component, by its group's position (a
// top-level component counts as its own group), then its own.
func listComponents(ctx context.Context, q queryer) ([]incident.Component, error) {
	return queryAll(ctx, q, scanComponent, "list components", `SELECT `+componentCols+componentFrom+`
		ORDER BY COALESCE(g.position, c.position), CASE WHEN c.group_id IS NULL THEN 0 ELSE 1 END, c.position, c.id`)
}

func scanGroup(row scanner) (incident.Group, error) {
	var g incident.Group
	err := row.Scan(&g.ID, &g.Name, &g.Description, &g.Position, &g.CreatedAt, &g.UpdatedAt)
	g.CreatedAt, g.UpdatedAt = g.CreatedAt.UTC(), g.UpdatedAt.UTC()
	return g, err
}

func listGroups(ctx context.Context, q queryer) ([]incident.Group, error) {
	return queryAll(ctx, q, scanGroup, "list component groups",
		`SELECT id, name, description, position, created_at, updated_at FROM status_groups ORDER BY position, id`)
}

// ListComponents returns every component of the status page in page order.
func (s *Store) ListComponents(ctx context.Context) ([]incident.Component, error) {
	return listComponents(ctx, s.rdb)
}

// ListGroups returns the component groups in page order.
func (s *Store) ListGroups(ctx context.Context) ([]incident.Group, error) {
	return listGroups(ctx, s.rdb)
}

// getComponent reads a component by name; ENOTFOUND if there is none.
func getComponent(ctx context.Context, q queryer, name string) (incident.Component, error) {
	c, err := scanComponent(q.QueryRowContext(ctx, `SELECT `+componentCols+componentFrom+` WHERE c.name = $1`, name))
	return c, notFound(err, "component %q", name)
}

// nextPosition returns one past the highest position among groups and
// top-level components (the page's top level), or among a group's
// components.
func nextPosition(ctx context.Context, tx *sql.Tx, groupID int64) (int, error) {
	q := `SELECT COALESCE(MAX(p), -1) + 1 FROM (SELECT position AS p FROM status_groups
		UNION ALL SELECT position FROM status_components WHERE group_id IS NULL) t`
	args := []any{}
	if groupID != 0 {
		q, args = `SELECT COALESCE(MAX(position), -1) + 1 FROM status_components WHERE group_id = $1`, []any{groupID}
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("find next position: %w", err)
	}
	return n, nil
}

// CreateComponent adds a component to the page, in status c.Status
// (operational if empty), at the end of its group, which is created if
// c.Group names none yet. ECONFLICT if the name is taken (by a component
// or by a group: the page shows both in one list).
func (s *Store) CreateComponent(ctx context.Context, actor string, c incident.Component) (incident.Component, error) {
	if c.Status == "" {
		c.Status = incident.Operational
	}
	if err := c.Validate(); err != nil {
		return incident.Component{}, err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		at := now()
		if taken, err := exists(ctx, tx, `SELECT 1 FROM status_components WHERE name = $1 UNION ALL SELECT 1 FROM status_groups WHERE name = $1`, c.Name); err != nil {
			return fmt.Errorf("create component %s: %w", c.Name, err)
		} else if taken {
			return incident.Errorf(incident.ECONFLICT, "a component or group named %q exists", c.Name)
		}
		var groupID sql.NullInt64
		if c.Group != "" {
			var err error
			if groupID.Int64, err = s.ensureGroup(ctx, tx, actor, c.Group, at); err != nil {
				return err
			}
			groupID.Valid = true
		}
		pos, err := nextPosition(ctx, tx, groupID.Int64)
		if err != nil {
			return err
		}
		id, err := insertID(ctx, tx, "create component "+c.Name, `INSERT INTO status_components
			(name, description, group_id, position, status, only_show_if_degraded, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.Name, c.Description, groupID, pos, string(c.Status), c.OnlyShowIfDegraded, at, at)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO component_status_log (component_id, status, at) VALUES ($1, $2, $3)`, id, string(c.Status), at); err != nil {
			return fmt.Errorf("record status of component %s: %w", c.Name, err)
		}
		if c, err = getComponent(ctx, tx, c.Name); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "component.create", "component/"+c.Name, nil, c)
	})
	return c, err
}

// UpdateComponent changes a component's name, description, group, position
// or visibility (not its status: SetComponentStatus and incidents do that):
// change edits a copy, which is validated and stored, and audited with the
// before and after. A group named for the first time is created; ECONFLICT
// if the new name is taken.
func (s *Store) UpdateComponent(ctx context.Context, actor, name string, change func(c *incident.Component) error) (incident.Component, error) {
	var c incident.Component
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Two partial updates of one component: the second reads what the
		// first wrote (the row lock, on PostgreSQL, is taken first: the read
		// below joins the component's group).
		if _, err := tx.ExecContext(ctx, s.forUpdate(`SELECT 1 FROM status_components WHERE name = $1`), name); err != nil {
			return fmt.Errorf("lock component %q: %w", name, err)
		}
		before, err := getComponent(ctx, tx, name)
		if err != nil {
			return err
		}
		c = before
		if err := change(&c); err != nil {
			return err
		}
		if c.Status != before.Status {
			return incident.Errorf(incident.EINVALID, "set a component's status with its own route (or an incident), not in an update")
		}
		if err := c.Validate(); err != nil {
			return err
		}
		if c.Name != before.Name {
			if taken, err := exists(ctx, tx, `SELECT 1 FROM status_components WHERE name = $1 UNION ALL SELECT 1 FROM status_groups WHERE name = $1`, c.Name); err != nil {
				return fmt.Errorf("rename component %s: %w", name, err)
			} else if taken {
				return incident.Errorf(incident.ECONFLICT, "a component or group named %q exists", c.Name)
			}
		}
		at := now()
		var groupID sql.NullInt64
		if c.Group != "" {
			if groupID.Int64, err = s.ensureGroup(ctx, tx, actor, c.Group, at); err != nil {
				return err
			}
			groupID.Valid = true
		}
		if c.Group != before.Group && c.Position == before.Position {
			if c.Position, err = nextPosition(ctx, tx, groupID.Int64); err != nil {
				return err
			}
		}
		if c.Position < 0 {
			return incident.Errorf(incident.EINVALID, "position must be 0 or more")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE status_components SET name = $1, description = $2, group_id = $3, position = $4,
			only_show_if_degraded = $5, updated_at = $6 WHERE id = $7`, c.Name, c.Description, groupID, c.Position, c.OnlyShowIfDegraded, at, c.ID); err != nil {
			return fmt.Errorf("update component %s: %w", name, err)
		}
		if c, err = getComponent(ctx, tx, c.Name); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "component.update", "component/"+before.Name, before, c)
	})
	return c, err
}

// ensureGroup returns the id of the group named name, creating it (at the
// end of the page's top level) if needed.
func (s *Store) ensureGroup(ctx context.Context, tx *sql.Tx, actor, name string, at time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM status_groups WHERE name = $1`, name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("look up group %s: %w", name, err)
	}
	if err := incident.ValidateName("group", name); err != nil {
		return 0, err
	}
	if taken, err := exists(ctx, tx, `SELECT 1 FROM status_components WHERE name = $1`, name); err != nil {
		return 0, fmt.Errorf("create group %s: %w", name, err)
	} else if taken {
		return 0, incident.Errorf(incident.ECONFLICT, "a component named %q exists; a group cannot have its name", name)
	}
	pos, err := nextPosition(ctx, tx, 0)
	if err != nil {
		return 0, err
	}
	if id, err = insertID(ctx, tx, "create group "+name, `INSERT INTO status_groups (name, description, position, created_at, updated_at)
		VALUES ($1, '', $2, $3, $3)`, name, pos, at); err != nil {
		return 0, err
	}
	return id, audit(ctx, tx, actor, "component_group.create", "component_group/"+name, nil, map[string]any{"id": id, "name": name, "position": pos})
}

// SetComponentStatus sets a component's status outside any incident (a
// person's direct change): recorded in its history, audited with reason,
// and, if the status changed, announced to subscribers (component_status).
func (s *Store) SetComponentStatus(ctx context.Context, actor, name string, status incident.ComponentStatus, reason string) (incident.Component, error) {
	if !status.Valid() {
		_, err := incident.ParseComponentStatus(string(status))
		return incident.Component{}, err
	}
	var c incident.Component
	err := s.write(ctx, func(tx *sql.Tx) error {
		changes, err := s.changeComponents(ctx, tx, []incident.ComponentChange{{Name: name, NewStatus: status}}, now())
		if err != nil {
			return err
		}
		if c, err = getComponent(ctx, tx, name); err != nil {
			return err
		}
		ch := changes[0]
		if ch.OldStatus == ch.NewStatus {
			return nil // nothing changed: nothing to record or announce
		}
		if _, err := s.notify(ctx, tx, incident.Notification{Kind: incident.KindComponentStatus, Component: &c, Change: &ch,
			Components: []int64{c.ID}, At: c.UpdatedAt}); err != nil {
			return err
		}
		return auditWhy(ctx, tx, actor, "component.set_status", "component/"+name, reason, ch.OldStatus, ch.NewStatus)
	})
	return c, err
}

// changeComponents applies status changes (each naming a component by ID
// or, if 0, by name) at at: it fills in each change's id, name and old
// status, writes the new status and records it in the component's history
// (unchanged statuses are left alone). ENOTFOUND for an unknown component.
//
// Transactions changing components serialize (on PostgreSQL, an advisory
// lock), so two updates naming the same components in different orders never
// deadlock; they take it before any release lock.
func (s *Store) changeComponents(ctx context.Context, tx *sql.Tx, changes []incident.ComponentChange, at time.Time) ([]incident.ComponentChange, error) {
	out := make([]incident.ComponentChange, 0, len(changes))
	if len(changes) == 0 {
		return out, nil
	}
	if err := s.serialize(ctx, tx, "components"); err != nil {
		return nil, err
	}
	for _, ch := range changes {
		q, arg := `SELECT id, name, status FROM status_components WHERE name = $1`, any(ch.Name)
		if ch.ComponentID != 0 {
			q, arg = `SELECT id, name, status FROM status_components WHERE id = $1`, ch.ComponentID
		}
		var old string
		if err := tx.QueryRowContext(ctx, q, arg).Scan(&ch.ComponentID, &ch.Name, &old); err != nil {
			return nil, notFound(err, "component %q", fmt.Sprint(arg))
		}
		ch.OldStatus = incident.ComponentStatus(old)
		out = append(out, ch)
		if ch.OldStatus == ch.NewStatus {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE status_components SET status = $1, updated_at = $2 WHERE id = $3`, string(ch.NewStatus), at, ch.ComponentID); err != nil {
			return nil, fmt.Errorf("set status of component %s: %w", ch.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO component_status_log (component_id, status, at) VALUES ($1, $2, $3)`, ch.ComponentID, string(ch.NewStatus), at); err != nil {
			return nil, fmt.Errorf("record status of component %s: %w", ch.Name, err)
		}
	}
	return out, nil
}

// componentIDs resolves component names to ids; ENOTFOUND for an unknown one.
func componentIDs(ctx context.Context, q queryer, names []string) ([]int64, error) {
	ids := make([]int64, 0, len(names))
	for _, n := range names {
		var id int64
		if err := q.QueryRowContext(ctx, `SELECT id FROM status_components WHERE name = $1`, n).Scan(&id); err != nil {
			return nil, notFound(err, "component %q", n)
		}
		if !containsInt(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func containsInt(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// notify records n for subscribers in tx and returns its id. Writers
// serialize on the notification table (an advisory lock on PostgreSQL,
// held to commit; SQLite's writes exclude each other anyway), so ids
// increase in commit order and a reader's cursor never skips a row that
// commits late.
func (s *Store) notify(ctx context.Context, tx *sql.Tx, n incident.Notification) (int64, error) {
	if err := s.serialize(ctx, tx, "status_notifications"); err != nil {
		return 0, err
	}
	n.ID = 0
	if n.Components == nil {
		n.Components = []int64{}
	}
	if n.Incident != nil && len(n.Incident.Roles) > 0 {
		// Notifications are what subscribers are sent: who holds which
		// role in the response is staff-only.
		public := *n.Incident
		public.Roles = nil
		n.Incident = &public
	}
	body, err := jsonText(string(n.Kind)+" notification", n)
	if err != nil {
		return 0, err
	}
	return insertID(ctx, tx, "record "+string(n.Kind)+" notification",
		`INSERT INTO status_notifications (kind, body, created_at) VALUES ($1, $2, $3)`, string(n.Kind), body, now())
}

// StatusNotificationsAfter returns up to limit notifications with ids above
// afterID, oldest first: what subscribers must be told, in the order the
// changes committed. A consumer keeps the last id it handled as its cursor.
func (s *Store) StatusNotificationsAfter(ctx context.Context, afterID int64, limit int) ([]incident.Notification, error) {
	return queryAll(ctx, s.rdb, func(row scanner) (incident.Notification, error) {
		var id int64
		var body string
		if err := row.Scan(&id, &body); err != nil {
			return incident.Notification{}, err
		}
		var n incident.Notification
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			return incident.Notification{}, fmt.Errorf("stored notification %d: %w", id, err)
		}
		n.ID, n.At = id, n.At.UTC()
		return n, nil
	}, "list status notifications", `SELECT id, body FROM status_notifications WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
}

// PruneStatusHistory deletes what the status page no longer shows from
// before cutoff: notifications, and component status entries except each
// component's last one before cutoff (the status it had when the kept
// history begins). Incidents and maintenance are kept. One server at a
// time (it serializes with Prune). It returns the rows deleted.
func (s *Store) PruneStatusHistory(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "prune"); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM status_notifications WHERE created_at < $1`,
			`DELETE FROM component_status_log WHERE at < $1 AND id NOT IN
				(SELECT MAX(id) FROM component_status_log WHERE at < $1 GROUP BY component_id)`,
		} {
			res, err := tx.ExecContext(ctx, q, cutoff.UTC())
			if err != nil {
				return fmt.Errorf("prune status history: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("prune status history: %w", err)
			}
			total += n
		}
		return nil
	})
	return total, err
}
