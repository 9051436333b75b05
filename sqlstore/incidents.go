package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// ActorScheduler moves maintenance windows on time, in the audit log.
const ActorScheduler = "scheduler"

const incidentCols = `id, title, impact, severity, status, draft, created_at, updated_at, published_at, monitoring_at,
	resolved_at, postmortem, postmortem_at, components, by_actor`

func scanIncident(row scanner) (incident.Incident, error) {
	var i incident.Incident
	var impact, severity, status, comps string
	var published, monitoring, resolved, pm sql.NullTime
	if err := row.Scan(&i.ID, &i.Title, &impact, &severity, &status, &i.Draft, &i.CreatedAt, &i.UpdatedAt, &published,
		&monitoring, &resolved, &i.Postmortem, &pm, &comps, &i.By); err != nil {
		return incident.Incident{}, err
	}
	i.Impact, i.Severity, i.Status = incident.Impact(impact), incident.Severity(severity), incident.Status(status)
	i.CreatedAt, i.UpdatedAt = i.CreatedAt.UTC(), i.UpdatedAt.UTC()
	i.PublishedAt, i.MonitoringAt, i.ResolvedAt, i.PostmortemAt = timePtr(published), timePtr(monitoring), timePtr(resolved), timePtr(pm)
	if err := json.Unmarshal([]byte(comps), &i.Components); err != nil {
		return incident.Incident{}, fmt.Errorf("stored incident %d components: %w", i.ID, err)
	}
	if i.Components == nil {
		i.Components = []int64{}
	}
	i.Releases, i.Updates, i.Roles = []incident.ReleaseRef{}, []incident.Update{}, []incident.Assignment{}
	return i, nil
}

// idList renders ids for an IN (...) clause; they are integers, not input.
func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

// incidentIndex returns the ids of incs and each one's position.
func incidentIndex(incs []incident.Incident) ([]int64, map[int64]int) {
	ids := make([]int64, len(incs))
	index := make(map[int64]int, len(incs))
	for n, i := range incs {
		ids[n], index[i.ID] = i.ID, n
	}
	return ids, index
}

// loadIncidentDetails fills in the timelines (newest first) and releases of
// incs: what the status page shows of them.
func loadIncidentDetails(ctx context.Context, q queryer, incs []incident.Incident) error {
	if len(incs) == 0 {
		return nil
	}
	ids, index := incidentIndex(incs)
	updates, err := queryAll(ctx, q, scanUpdate, "load incident updates",
		`SELECT id, incident_id, status, body, components, notify, by_actor, at FROM incident_updates
		 WHERE incident_id IN (`+idList(ids)+`) ORDER BY at DESC, id DESC`)
	if err != nil {
		return err
	}
	for _, u := range updates {
		n := index[u.IncidentID]
		incs[n].Updates = append(incs[n].Updates, u)
	}
	rels, err := queryAll(ctx, q, func(row scanner) ([2]any, error) {
		var id int64
		var r incident.ReleaseRef
		err := row.Scan(&id, &r.Product, &r.Version)
		return [2]any{id, r}, err
	}, "load incident releases", `SELECT incident_id, product, version FROM incident_releases
		WHERE incident_id IN (`+idList(ids)+`) ORDER BY product, version`)
	if err != nil {
		return err
	}
	for _, r := range rels {
		n := index[r[0].(int64)]
		incs[n].Releases = append(incs[n].Releases, r[1].(incident.ReleaseRef))
	}
	return nil
}

// loadIncidentRoles fills in who holds which role in incs (staff-only: the
// status page does not load them).
func loadIncidentRoles(ctx context.Context, q queryer, incs []incident.Incident) error {
	if len(incs) == 0 {
		return nil
	}
	ids, index := incidentIndex(incs)
	roles, err := queryAll(ctx, q, func(row scanner) (roleRow, error) {
		var r roleRow
		var role string
		err := row.Scan(&r.incidentID, &role, &r.Who, &r.Since, &r.By)
		r.Role, r.Since = incident.Role(role), r.Since.UTC()
		return r, err
	}, "load incident roles", `SELECT incident_id, role, who, since, by_actor FROM incident_roles
		WHERE incident_id IN (`+idList(ids)+`)`)
	if err != nil {
		return err
	}
	for _, r := range roles {
		n := index[r.incidentID]
		incs[n].Roles = append(incs[n].Roles, r.Assignment)
	}
	for n := range incs {
		slices.SortFunc(incs[n].Roles, func(a, b incident.Assignment) int {
			return slices.Index(incident.Roles, a.Role) - slices.Index(incident.Roles, b.Role)
		})
	}
	return nil
}

// roleRow is a row of incident_roles.
type roleRow struct {
	incidentID int64
	incident.Assignment
}

func scanUpdate(row scanner) (incident.Update, error) {
	var u incident.Update
	var status, comps string
	if err := row.Scan(&u.ID, &u.IncidentID, &status, &u.Body, &comps, &u.Notify, &u.By, &u.At); err != nil {
		return incident.Update{}, err
	}
	u.Status, u.At = incident.Status(status), u.At.UTC()
	if err := json.Unmarshal([]byte(comps), &u.Components); err != nil {
		return incident.Update{}, fmt.Errorf("stored update %d components: %w", u.ID, err)
	}
	if u.Components == nil {
		u.Components = []incident.ComponentChange{}
	}
	return u, nil
}

// incidents reads incidents with their timelines.
func incidents() timelined[incident.Incident] {
	return timelined[incident.Incident]{scan: scanIncident, load: func(ctx context.Context, q queryer, incs []incident.Incident) error {
		if err := loadIncidentDetails(ctx, q, incs); err != nil {
			return err
		}
		return loadIncidentRoles(ctx, q, incs)
	}}
}

// getIncident reads one incident with its timeline; ENOTFOUND if unknown.
// lock takes its row lock on PostgreSQL (in a write transaction), so two
// changes of one incident run one after the other. The lock is FOR NO KEY
// UPDATE: rows that only reference the incident (a pull linking a release
// to it) do not wait for it.
func (s *Store) getIncident(ctx context.Context, q queryer, id int64, lock bool) (incident.Incident, error) {
	return incidents().one(ctx, s.dialect, q, `SELECT `+incidentCols+` FROM incidents WHERE id = $1`, id, lock, "incident")
}

// GetIncident returns one incident (drafts too) with its timeline.
func (s *Store) GetIncident(ctx context.Context, id int64) (incident.Incident, error) {
	return s.getIncident(ctx, s.rdb, id, false)
}

// ListIncidents returns up to limit incidents, drafts too, newest first,
// with their timelines; unresolvedOnly keeps the open ones.
func (s *Store) ListIncidents(ctx context.Context, unresolvedOnly bool, limit int) ([]incident.Incident, error) {
	where := ``
	if unresolvedOnly {
		where = ` WHERE status IN ('investigating', 'identified', 'monitoring')`
	}
	return incidents().all(ctx, s.rdb, "list incidents",
		`SELECT `+incidentCols+` FROM incidents`+where+` ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
}

// LatestIncidentID returns the id of the newest unresolved incident (drafts
// too): what `--latest` means. ENOTFOUND if none is open.
func (s *Store) LatestIncidentID(ctx context.Context) (int64, error) {
	var id int64
	err := s.rdb.QueryRowContext(ctx, `SELECT id FROM incidents WHERE status IN ('investigating', 'identified', 'monitoring')
		ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&id)
	return id, notFound(err, "an unresolved incident")
}

// IncidentConfig returns the severity levels and policy in force: the
// stored ones, or incident.DefaultConfig until they are first changed.
func (s *Store) IncidentConfig(ctx context.Context) (incident.Config, error) {
	return incidentConfig(ctx, s.rdb)
}

func incidentConfig(ctx context.Context, q queryer) (incident.Config, error) {
	var raw string
	err := q.QueryRowContext(ctx, `SELECT config FROM incident_config WHERE id = 1`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return incident.DefaultConfig(), nil
	}
	if err != nil {
		return incident.Config{}, fmt.Errorf("read incident configuration: %w", err)
	}
	var c incident.Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return incident.Config{}, fmt.Errorf("stored incident configuration: %w", err)
	}
	return c, nil
}

// SetIncidentConfig replaces the severity levels and policy. Levels that
// existing incidents carry may not be removed (ECONFLICT): their history
// must keep its meaning.
func (s *Store) SetIncidentConfig(ctx context.Context, actor string, c incident.Config) (incident.Config, error) {
	if err := c.Validate(); err != nil {
		return incident.Config{}, err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := incidentConfig(ctx, tx)
		if err != nil {
			return err
		}
		used, err := queryAll(ctx, tx, func(row scanner) (string, error) {
			var v string
			return v, row.Scan(&v)
		}, "list severities in use", `SELECT DISTINCT severity FROM incidents`)
		if err != nil {
			return err
		}
		for _, u := range used {
			if c.Severities.Rank(incident.Severity(u)) < 0 {
				return incident.Errorf(incident.ECONFLICT, "severity %s is carried by existing incidents; keep it (you may reword its description)", u)
			}
		}
		raw, err := jsonText("incident configuration", c)
		if err != nil {
			return err
		}
		at := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_config (id, config, updated_at) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`, raw, at); err != nil {
			return fmt.Errorf("store incident configuration: %w", err)
		}
		return audit(ctx, tx, actor, "incident.configure", "incident-config", before, c)
	})
	return c, err
}

// Declared is the outcome of declaring an incident: the incident, and the
// releases its severity paused (product@version).
type Declared struct {
	incident.Incident
	PausedReleases []string `json:"paused_releases"`
}

// DeclareIncident opens an incident. In the same transaction it sets the
// components' statuses, links the releases it names (which must exist),
// pauses those that are ok when the severity policy says its severity
// pauses releases (audited as release.pause with the incident as the
// reason), records the notification if it is published, and audits the
// declaration with its message.
func (s *Store) DeclareIncident(ctx context.Context, actor string, d incident.Declaration) (Declared, error) {
	var out Declared
	err := s.write(ctx, func(tx *sql.Tx) error {
		cfg, err := incidentConfig(ctx, tx)
		if err != nil {
			return err
		}
		out, err = s.declare(ctx, tx, actor, d, cfg, now())
		return err
	})
	return out, err
}

// declare is DeclareIncident inside tx.
func (s *Store) declare(ctx context.Context, tx *sql.Tx, actor string, d incident.Declaration, cfg incident.Config, at time.Time) (Declared, error) {
	if d.Severity == "" {
		d.Severity = cfg.Severities.Default()
	}
	if err := d.Validate(cfg.Severities); err != nil {
		return Declared{}, err
	}
	versions := make([]release.Version, len(d.Releases))
	for n, ref := range d.Releases {
		v, err := release.ParseVersion(ref.Version)
		if err != nil {
			return Declared{}, incident.Errorf(incident.EINVALID, "release %s: %s", ref, release.ErrorMessage(err))
		}
		if _, err := getRelease(ctx, tx, ref.Product, v); err != nil {
			return Declared{}, incident.Errorf(incident.ENOTFOUND, "release %s not found", ref)
		}
		versions[n], d.Releases[n].Version = v, v.String()
	}
	changes, err := s.changeComponents(ctx, tx, d.Components, at)
	if err != nil {
		return Declared{}, err
	}
	d.Components = changes
	inc, err := incident.Declare(d, cfg.Severities, actor, at)
	if err != nil {
		return Declared{}, err
	}
	comps, err := jsonText("incident components", inc.Components)
	if err != nil {
		return Declared{}, err
	}
	inc.ID, err = insertID(ctx, tx, "declare incident", `INSERT INTO incidents (title, impact, severity, status, draft, created_at,
		updated_at, published_at, monitoring_at, components, by_actor) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10)`,
		inc.Title, string(inc.Impact), string(inc.Severity), string(inc.Status), inc.Draft, at, nullTime(inc.PublishedAt),
		nullTime(inc.MonitoringAt), comps, actor)
	if err != nil {
		return Declared{}, err
	}
	inc.Updates[0].IncidentID = inc.ID
	if err := insertUpdate(ctx, tx, &inc.Updates[0]); err != nil {
		return Declared{}, err
	}
	out := Declared{Incident: inc, PausedReleases: []string{}}
	for n, ref := range inc.Releases {
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_releases (incident_id, product, version) VALUES ($1, $2, $3)`,
			inc.ID, ref.Product, ref.Version); err != nil {
			return Declared{}, fmt.Errorf("link incident %d to %s: %w", inc.ID, ref, err)
		}
		if !cfg.Policy.Pauses(inc.Severity) {
			continue
		}
		paused, err := s.pauseForIncident(ctx, tx, actor, inc, ref.Product, versions[n], at)
		if err != nil {
			return Declared{}, err
		}
		if paused {
			out.PausedReleases = append(out.PausedReleases, ref.String())
		}
	}
	if n, ok := incident.IncidentNotification(inc, &inc.Updates[0], at); ok { // none with --no-notify
		if _, err := s.notify(ctx, tx, n); err != nil {
			return Declared{}, err
		}
	}
	if err := auditWhy(ctx, tx, actor, "incident.declare", incidentTarget(inc.ID), d.Message, nil, inc); err != nil {
		return Declared{}, err
	}
	return out, nil
}

func incidentTarget(id int64) string { return "incident/" + strconv.FormatInt(id, 10) }

// pauseForIncident pauses a release that is ok on behalf of inc, audited
// with the incident as the reason; it leaves paused and pulled releases as
// they are and reports whether it paused.
func (s *Store) pauseForIncident(ctx context.Context, tx *sql.Tx, actor string, inc incident.Incident, product string, v release.Version, at time.Time) (bool, error) {
	reason := fmt.Sprintf("incident %d (%s): %s", inc.ID, inc.Severity, inc.Title)
	if len(reason) > 4096 {
		reason = reason[:4096]
	}
	_, err := s.changeRelease(ctx, tx, actor, "release.pause", reason, product, v, func(r *release.Release, _ []release.Release) error {
		if r.Status != release.StatusOK {
			return errNotOK
		}
		return r.Pause(actor, reason, "", at)
	})
	if errors.Is(err, errNotOK) {
		return false, nil
	}
	return err == nil, err
}

// errNotOK stops a pause of a release that is already paused or pulled.
var errNotOK = errors.New("release is not ok")

// insertUpdate stores u and sets its id.
func insertUpdate(ctx context.Context, tx *sql.Tx, u *incident.Update) error {
	comps, err := jsonText("update components", u.Components)
	if err != nil {
		return err
	}
	u.ID, err = insertID(ctx, tx, fmt.Sprintf("add update to incident %d", u.IncidentID), `INSERT INTO incident_updates
		(incident_id, status, body, components, notify, by_actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.IncidentID, string(u.Status), u.Body, comps, u.Notify, u.By, u.At)
	return err
}

// saveIncident writes inc's row (not its timeline), provided its status is
// still was; ECONFLICT otherwise.
func saveIncident(ctx context.Context, tx *sql.Tx, inc incident.Incident, was incident.Status) error {
	comps, err := jsonText("incident components", inc.Components)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE incidents SET impact = $1, severity = $2, status = $3, draft = $4, updated_at = $5,
		published_at = $6, monitoring_at = $7, resolved_at = $8, postmortem = $9, postmortem_at = $10, components = $11
		WHERE id = $12 AND status = $13`,
		string(inc.Impact), string(inc.Severity), string(inc.Status), inc.Draft, inc.UpdatedAt, nullTime(inc.PublishedAt),
		nullTime(inc.MonitoringAt), nullTime(inc.ResolvedAt), inc.Postmortem, nullTime(inc.PostmortemAt), comps, inc.ID, string(was))
	if err != nil {
		return fmt.Errorf("store incident %d: %w", inc.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store incident %d: %w", inc.ID, err)
	} else if n == 0 {
		return incident.Errorf(incident.ECONFLICT, "incident %d changed meanwhile; retry", inc.ID)
	}
	return nil
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// changeIncident locks incident id, lets change apply a domain transition
// to it, stores it and audits action with reason (before and after).
func (s *Store) changeIncident(ctx context.Context, actor, action, reason string, id int64,
	change func(tx *sql.Tx, inc *incident.Incident, at time.Time) error) (incident.Incident, error) {
	var inc incident.Incident
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := s.getIncident(ctx, tx, id, true)
		if err != nil {
			return err
		}
		inc = before
		inc.Updates = append([]incident.Update{}, before.Updates...)
		inc.Components = append([]int64{}, before.Components...)
		if err := change(tx, &inc, now()); err != nil {
			return err
		}
		if err := saveIncident(ctx, tx, inc, before.Status); err != nil {
			return err
		}
		// The audit entry keeps the incident and the update the change
		// added, not the whole timeline twice.
		b, a := before, inc
		b.Updates, a.Updates = nil, inc.Updates[:min(1, len(inc.Updates))]
		return auditWhy(ctx, tx, actor, action, incidentTarget(id), reason, b, a)
	})
	return inc, err
}

// UpdateIncident adds an update to incident id (the lifecycle's rules:
// ECONFLICT for an illegal move), sets the components it names, and records
// the notification when it notifies and the incident is published.
// Resolving without naming components returns every component the incident
// changed, and that is not operational, to operational. Raising the
// severity to one the policy says pauses releases pauses the releases the
// incident names, as declaring it so would have.
func (s *Store) UpdateIncident(ctx context.Context, actor string, id int64, c incident.Change) (incident.Incident, error) {
	action := "incident.update"
	if c.Status == incident.StatusResolved {
		action = "incident.resolve"
	}
	return s.changeIncident(ctx, actor, action, c.Message, id, func(tx *sql.Tx, inc *incident.Incident, at time.Time) error {
		if err := inc.Status.CanBecome(c.Status); err != nil {
			return err
		}
		cfg, err := incidentConfig(ctx, tx)
		if err != nil {
			return err
		}
		if err := c.Validate(cfg.Severities); err != nil {
			return err
		}
		if c.Status == incident.StatusResolved && len(c.Components) == 0 {
			c.Components = inc.ResolveChanges()
			changes, err := s.changeComponents(ctx, tx, c.Components, at)
			if err != nil {
				return err
			}
			c.Components = c.Components[:0]
			for _, ch := range changes {
				if ch.OldStatus != ch.NewStatus {
					c.Components = append(c.Components, ch)
				}
			}
		} else {
			changes, err := s.changeComponents(ctx, tx, c.Components, at)
			if err != nil {
				return err
			}
			c.Components = changes
		}
		// Components first, releases second: the order every transaction
		// takes these locks in, so none waits on another in a cycle.
		newRefs, err := s.linkReleases(ctx, tx, actor, inc.ID, inc.Releases, c.Releases)
		if err != nil {
			return err
		}
		c.Releases = newRefs
		severity := inc.Severity
		if c.Severity != "" {
			severity = c.Severity
		}
		if cfg.Policy.Pauses(severity) && c.Status.Unresolved() {
			// Escalated: every release it names; otherwise the ones named now.
			pause := newRefs
			if !cfg.Policy.Pauses(inc.Severity) {
				pause = append(append([]incident.ReleaseRef{}, inc.Releases...), newRefs...)
			}
			escalated := *inc
			escalated.Severity = severity
			for _, ref := range pause {
				v, err := release.ParseVersion(ref.Version)
				if err != nil {
					return fmt.Errorf("incident %d names release %s: %w", inc.ID, ref, err)
				}
				if _, err := s.pauseForIncident(ctx, tx, actor, escalated, ref.Product, v, at); err != nil {
					return err
				}
			}
		}
		u, err := inc.Apply(c, actor, at)
		if err != nil {
			return err
		}
		if err := insertUpdate(ctx, tx, &u); err != nil {
			return err
		}
		inc.Updates[0] = u
		if n, ok := incident.IncidentNotification(*inc, &u, at); ok {
			if _, err := s.notify(ctx, tx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// PublishIncident makes a draft public and records its notification
// (incident_created, with the incident as it stands).
func (s *Store) PublishIncident(ctx context.Context, actor string, id int64) (incident.Incident, error) {
	return s.changeIncident(ctx, actor, "incident.publish", "", id, func(tx *sql.Tx, inc *incident.Incident, at time.Time) error {
		if err := inc.Publish(at); err != nil {
			return err
		}
		n, _ := incident.IncidentNotification(*inc, nil, at)
		_, err := s.notify(ctx, tx, n)
		return err
	})
}

// SetPostmortem records or revises the postmortem of a resolved incident.
// A published incident's subscribers are told (incident_updated).
func (s *Store) SetPostmortem(ctx context.Context, actor string, id int64, text string) (incident.Incident, error) {
	return s.changeIncident(ctx, actor, "incident.postmortem", "", id, func(tx *sql.Tx, inc *incident.Incident, at time.Time) error {
		if err := inc.SetPostmortem(text, at); err != nil {
			return err
		}
		if inc.Draft {
			return nil
		}
		_, err := s.notify(ctx, tx, incident.Notification{Kind: incident.KindIncidentUpdated, Incident: inc,
			Components: append([]int64{}, inc.Components...), At: at})
		return err
	})
}

// AssignRole makes who the holder of role in incident id (an empty who
// leaves it unassigned), audited as incident.assign with the previous
// holder in its before. Assigning the holder again changes nothing and
// writes no audit entry. Nothing public changes: roles are staff-only, and
// the incident's updated_at stays.
func (s *Store) AssignRole(ctx context.Context, actor string, id int64, role incident.Role, who string) (incident.Incident, error) {
	var inc incident.Incident
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := s.getIncident(ctx, tx, id, true)
		if err != nil {
			return err
		}
		inc = before
		at := now()
		old, changed, err := inc.Assign(role, who, actor, at)
		if err != nil || !changed {
			return err
		}
		if old.Who != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM incident_roles WHERE incident_id = $1 AND role = $2`, id, string(role)); err != nil {
				return fmt.Errorf("assign incident role: %w", err)
			}
		}
		holder := inc.Holder(role)
		if holder != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_roles (incident_id, role, who, since, by_actor) VALUES ($1, $2, $3, $4, $5)`,
				id, string(role), holder, at, actor); err != nil {
				return fmt.Errorf("assign incident role: %w", err)
			}
		}
		reason := fmt.Sprintf("%s: %s → %s", role, orNobody(old.Who), orNobody(holder))
		return auditWhy(ctx, tx, actor, "incident.assign", incidentTarget(id), reason,
			map[string]any{"role": role, "who": old.Who}, map[string]any{"role": role, "who": holder})
	})
	return inc, err
}

func orNobody(who string) string {
	if who == "" {
		return "nobody"
	}
	return who
}

// linkReleases links the releases of refs that incident id does not name yet
// (have) to it; they must exist. It returns those it linked, with their
// versions in canonical form.
func (s *Store) linkReleases(ctx context.Context, tx *sql.Tx, actor string, id int64, have, refs []incident.ReleaseRef) ([]incident.ReleaseRef, error) {
	var out []incident.ReleaseRef
	for _, ref := range refs {
		v, err := release.ParseVersion(ref.Version)
		if err != nil {
			return nil, incident.Errorf(incident.EINVALID, "release %s: %s", ref, release.ErrorMessage(err))
		}
		ref.Version = v.String()
		if slices.Contains(have, ref) || slices.Contains(out, ref) {
			continue
		}
		if _, err := getRelease(ctx, tx, ref.Product, v); err != nil {
			return nil, incident.Errorf(incident.ENOTFOUND, "release %s not found", ref)
		}
		if err := s.linkIncident(ctx, tx, actor, id, ref.Product, v); err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// linkIncident links a release to incident id (idempotent), audited. It
// takes no lock on the incident (the caller holds the product's release
// locks; an incident update may hold the incident's and want those).
func (s *Store) linkIncident(ctx context.Context, tx *sql.Tx, actor string, id int64, product string, v release.Version) error {
	if ok, err := exists(ctx, tx, `SELECT 1 FROM incidents WHERE id = $1`, id); err != nil {
		return fmt.Errorf("link incident %d: %w", id, err)
	} else if !ok {
		return incident.Errorf(incident.ENOTFOUND, "incident %d not found", id)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO incident_releases (incident_id, product, version) VALUES ($1, $2, $3)
		ON CONFLICT (incident_id, product, version) DO NOTHING`, id, product, v.String())
	if err != nil {
		return fmt.Errorf("link incident %d to %s@%s: %w", id, product, v, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return audit(ctx, tx, actor, "incident.link_release", incidentTarget(id), nil, map[string]string{"release": product + "@" + v.String()})
}

// Pulled is the outcome of a pull: the release, and the incident the pull
// linked or opened.
type Pulled struct {
	release.Release
	IncidentID int64 `json:"incident_id"`
	// IncidentOpened: the pull opened the incident (none was named).
	IncidentOpened bool `json:"incident_opened"`
}

// PullRelease pulls release v of product with p's guidance and, in the same
// transaction, links it to incident incidentID (which must exist) or, when
// incidentID is 0, opens a published incident naming it (the severity
// policy's pull severity and impact), so the page and subscribers hear of
// the pull with what to do.
func (s *Store) PullRelease(ctx context.Context, actor, product string, v release.Version, p release.Pull, incidentID int64) (Pulled, error) {
	var out Pulled
	err := s.write(ctx, func(tx *sql.Tx) error {
		at := now()
		r, err := s.changeRelease(ctx, tx, actor, "release.pull", p.Reason, product, v, func(r *release.Release, others []release.Release) error {
			return r.Pull(p, others, at)
		})
		if err != nil {
			return err
		}
		out.Release = r
		if incidentID != 0 {
			out.IncidentID = incidentID
			return s.linkIncident(ctx, tx, actor, incidentID, product, v)
		}
		cfg, err := incidentConfig(ctx, tx)
		if err != nil {
			return err
		}
		d, err := s.declare(ctx, tx, actor, incident.Declaration{
			Title: fmt.Sprintf("Release %s pulled", r.ID()), Impact: cfg.Policy.Pull.Impact, Severity: cfg.Policy.Pull.Severity,
			Status: incident.StatusIdentified, Message: PullMessage(r), Notify: true,
			Releases: []incident.ReleaseRef{{Product: product, Version: v.String()}},
		}, cfg, at)
		if err != nil {
			return err
		}
		out.IncidentID, out.IncidentOpened = d.ID, true
		return nil
	})
	return out, err
}

// PullMessage is the first update of the incident a pull opens: what was
// pulled, why, and what installations on it should do.
func PullMessage(r release.Release) string {
	msg := fmt.Sprintf("Release %s has been pulled: %s. Do not upgrade to %s.", r.ID(), strings.TrimSuffix(r.Pulled.Reason, "."), r.Version)
	switch r.Pulled.Action {
	case release.ActionUpgrade:
		msg += fmt.Sprintf(" Installations on it should upgrade to %s.", r.Pulled.Target)
	case release.ActionRollback:
		msg += fmt.Sprintf(" Installations on it should roll back to %s.", r.Pulled.Target)
	case release.ActionHold:
		msg += " Installations on it should stay on it and upgrade to nothing until we post an update."
	}
	return msg
}

// openHaltIncident opens the incident the severity policy says auto-halt
// opens for the release it paused (a draft unless the policy publishes),
// in the auto-halt's transaction. It returns the incident's id, 0 when the
// policy opens none.
func (s *Store) openHaltIncident(ctx context.Context, tx *sql.Tx, r release.Release, ev release.Evidence, at time.Time) (int64, error) {
	cfg, err := incidentConfig(ctx, tx)
	if err != nil {
		return 0, err
	}
	pol := cfg.Policy.AutoHalt
	if !pol.Open {
		return 0, nil
	}
	msg := fmt.Sprintf("Auto-halt paused release %s: %s. No installation is offered it until a person resumes or pulls it.", r.ID(), ev.Reason)
	d, err := s.declare(ctx, tx, ActorAutoHalt, incident.Declaration{
		Title: fmt.Sprintf("Release %s paused by auto-halt", r.ID()), Impact: pol.Impact, Severity: pol.Severity,
		Status: incident.StatusInvestigating, Message: msg, Draft: !pol.Publish, Notify: true,
		Releases: []incident.ReleaseRef{{Product: r.Product, Version: r.Version.String()}},
	}, cfg, at)
	return d.ID, err
}

// --- templates ---

const templateCols = `name, title, body, impact, severity, status`

func scanTemplate(row scanner) (incident.Template, error) {
	var t incident.Template
	var impact, severity, status string
	err := row.Scan(&t.Name, &t.Title, &t.Body, &impact, &severity, &status)
	t.Impact, t.Severity, t.Status = incident.Impact(impact), incident.Severity(severity), incident.Status(status)
	return t, err
}

// SaveTemplate creates or replaces the template named t.Name.
func (s *Store) SaveTemplate(ctx context.Context, actor string, t incident.Template) (incident.Template, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		cfg, err := incidentConfig(ctx, tx)
		if err != nil {
			return err
		}
		if err := t.Validate(cfg.Severities); err != nil {
			return err
		}
		before, err := scanTemplate(tx.QueryRowContext(ctx, `SELECT `+templateCols+` FROM incident_templates WHERE name = $1`, t.Name))
		var was any
		if err == nil {
			was = before
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read template %s: %w", t.Name, err)
		}
		at := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_templates (name, title, body, impact, severity, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (name) DO UPDATE SET title = excluded.title, body = excluded.body,
			impact = excluded.impact, severity = excluded.severity, status = excluded.status, updated_at = excluded.updated_at`,
			t.Name, t.Title, t.Body, string(t.Impact), string(t.Severity), string(t.Status), at); err != nil {
			return fmt.Errorf("save template %s: %w", t.Name, err)
		}
		return audit(ctx, tx, actor, "incident_template.save", "incident_template/"+t.Name, was, t)
	})
	return t, err
}

// ListTemplates returns the incident templates by name.
func (s *Store) ListTemplates(ctx context.Context) ([]incident.Template, error) {
	return queryAll(ctx, s.rdb, scanTemplate, "list templates", `SELECT `+templateCols+` FROM incident_templates ORDER BY name`)
}

// GetTemplate returns the template named name; ENOTFOUND if there is none.
func (s *Store) GetTemplate(ctx context.Context, name string) (incident.Template, error) {
	t, err := scanTemplate(s.rdb.QueryRowContext(ctx, `SELECT `+templateCols+` FROM incident_templates WHERE name = $1`, name))
	return t, notFound(err, "template %q", name)
}
