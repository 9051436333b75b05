package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/release"
)

// CheckInRecord is what one check-in leaves in the store: the installation's
// last-seen state, the events it reported and its health report.
type CheckInRecord struct {
	Product    string
	Customer   string
	InstanceID string
	Version    release.Version
	// Health is nil when the check-in carried no health report; the stored
	// health is then kept, or reset to unknown when the version changed.
	Health     *release.Health
	Events     []release.Event
	ReceivedAt time.Time
	// FirstSeen, if set and earlier than ReceivedAt, is when an earlier
	// check-in of the installation arrived that this record replaced before
	// it was written (the writer coalesces routine check-ins); it becomes
	// the installation's first_seen if the store does not know it yet.
	FirstSeen time.Time
}

// firstSeen is when r's installation was first seen as far as r knows.
func (r CheckInRecord) firstSeen() time.Time {
	if !r.FirstSeen.IsZero() && r.FirstSeen.Before(r.ReceivedAt) {
		return r.FirstSeen.UTC()
	}
	return r.ReceivedAt.UTC()
}

// RecordCheckIns writes a batch of check-ins in one transaction: it upserts
// each installation (the latest record of an installation wins) and appends
// every record's events and failing health reports. When it returns nil,
// every record is durable (SQLite: in the WAL; PostgreSQL: committed), so
// the server may answer the check-ins.
func (s *Store) RecordCheckIns(ctx context.Context, recs []CheckInRecord) error {
	_, err := s.WriteCheckIns(ctx, recs)
	return err
}

// InstallationRef names one installation.
type InstallationRef struct {
	Product, Customer, InstanceID string
}

// WriteCheckIns is RecordCheckIns that also returns the installations the
// batch created (not known to the store before), for quotas on new
// instance ids; it costs no extra statement.
func (s *Store) WriteCheckIns(ctx context.Context, recs []CheckInRecord) ([]InstallationRef, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if s.dialect == Postgres {
		return s.pipelineCheckIns(ctx, recs)
	}
	if err := s.prepareCheckIns(ctx); err != nil {
		return nil, err
	}
	var created []InstallationRef
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = s.recordCheckIns(ctx, tx, recs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// The check-in writer's statements on SQLite: a head, one tuple of
// parameters per row and a tail (PostgreSQL's are in checkins_pg.go).
const (
	upsertInstallation = `INSERT INTO installations
			(product, instance_id, customer, version, health, health_detail, first_seen, last_seen) VALUES `
	// returningCreated tells the writer which rows the batch created: a
	// created row carries the first_seen the batch gave it, a known
	// installation keeps its earlier one (createdSet).
	returningCreated = ` RETURNING product, customer, instance_id, first_seen`
	// upsertReported: a reported health replaces the stored one.
	upsertReported = `
		ON CONFLICT (product, customer, instance_id) DO UPDATE SET
			version = excluded.version,
			health = excluded.health, health_detail = excluded.health_detail,
			last_seen = excluded.last_seen`
	// upsertUnreported: without a report the stored health stays, unless
	// the version changed: then nothing is known about the new one yet.
	upsertUnreported = `
		ON CONFLICT (product, customer, instance_id) DO UPDATE SET
			version = excluded.version,
			health = CASE WHEN installations.version <> excluded.version THEN 'unknown' ELSE installations.health END,
			health_detail = CASE WHEN installations.version <> excluded.version THEN '' ELSE installations.health_detail END,
			last_seen = excluded.last_seen`
	insertEvent = `INSERT INTO events
			(product, instance_id, customer, kind, from_version, to_version, at, detail, received_at, seen_on) VALUES `
	insertHealthReport = `INSERT INTO health_reports
			(product, instance_id, customer, version, status, detail, at, seen_on) VALUES `
	lookupVersion = `SELECT version FROM installations WHERE product = $1 AND customer = $2 AND instance_id = $3`
)

// prepareCheckIns prepares the writer's statements on SQLite's writing
// connection once, before a batch's transaction takes it (the pool has one
// connection: nothing can be prepared on the pool while a transaction holds
// it).
func (s *Store) prepareCheckIns(ctx context.Context) error {
	if s.stmts.ready.Load() {
		return nil
	}
	for _, q := range []string{
		oneRow(upsertInstallation, upsertReported+returningCreated, 8),
		oneRow(upsertInstallation, upsertUnreported+returningCreated, 8),
		oneRow(upsertInstallation, upsertReported, 8),
		oneRow(upsertInstallation, upsertUnreported, 8),
		oneRow(insertEvent, "", 10),
		oneRow(insertHealthReport, "", 8),
		lookupVersion,
	} {
		if err := s.stmts.prepare(ctx, s.db, q); err != nil {
			return err
		}
	}
	s.stmts.ready.Store(true)
	return nil
}

// oneRow is head + "($1, ..., $width)" + tail.
func oneRow(head, tail string, width int) string {
	var b strings.Builder
	b.WriteString(head)
	b.WriteByte('(')
	for j := range width {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(j + 1))
	}
	b.WriteByte(')')
	b.WriteString(tail)
	return b.String()
}

// recordCheckIns is WriteCheckIns inside tx (also used by ImportExport, so
// imported reports go through exactly the same rules).
func (s *Store) recordCheckIns(ctx context.Context, tx *sql.Tx, recs []CheckInRecord) ([]InstallationRef, error) {
	if s.dialect == Postgres {
		return pgRecordCheckIns(ctx, tx, recs)
	}
	withHealth, withoutHealth := latestPerInstallation(recs)
	created := newCreatedSet(withHealth, withoutHealth)
	events, reports := evidence(recs)
	stored, err := s.storedVersions(ctx, tx, events, reports)
	if err != nil {
		return nil, err
	}
	for _, up := range []struct {
		set  string
		rows [][]any
	}{
		{upsertReported, withHealth}, // a reported health replaces the stored one
		{upsertUnreported, withoutHealth},
	} {
		// SQLite's transactions are serial, so an installation whose
		// stored version storedVersions looked up is created by this batch
		// exactly when the lookup found nothing: its upsert need not
		// return a row.
		rows, looked := splitLookedUp(up.rows, stored)
		for _, r := range looked {
			if _, known := stored.versions[refOf(r)]; !known {
				created.refs = append(created.refs, refOf(r))
			}
		}
		if err := s.writeRows(ctx, tx, oneRow(upsertInstallation, up.set, 8), looked, nil); err != nil {
			return nil, fmt.Errorf("record check-ins: %w", err)
		}
		if err := s.writeRows(ctx, tx, oneRow(upsertInstallation, up.set+returningCreated, 8), rows, created.collect); err != nil {
			return nil, fmt.Errorf("record check-ins: %w", err)
		}
	}
	if err := s.writeRows(ctx, tx, oneRow(insertEvent, "", 10), events, nil); err != nil {
		return nil, fmt.Errorf("record check-in events: %w", err)
	}
	if err := s.writeRows(ctx, tx, oneRow(insertHealthReport, "", 8), reports, nil); err != nil {
		return nil, fmt.Errorf("record health reports: %w", err)
	}
	return created.refs, nil
}

// evidence turns recs' events and failing health reports into rows of
// events and health_reports, in order. Their last column, seen_on, is the
// version the installation was seen on before the record, which auto-halt
// needs to tell known installations from invented instance ids: a *string,
// the version of the installation's earlier record in the batch (which
// takes precedence, being newer), or nil when the record is the batch's
// first of its installation and the version the store has is meant (empty if
// it has none).
func evidence(recs []CheckInRecord) (events, reports [][]any) {
	seen := map[InstallationRef]*string{}
	for _, r := range recs {
		k := InstallationRef{r.Product, r.Customer, r.InstanceID}
		prior := seen[k]
		at := r.ReceivedAt.UTC()
		for _, e := range r.Events {
			from := ""
			if !e.From.IsZero() {
				from = e.From.String()
			}
			events = append(events, []any{r.Product, r.InstanceID, r.Customer, string(e.Kind), from, e.To.String(), e.At.UTC(), e.Detail, at, prior})
		}
		if r.Health != nil && r.Health.Status.Failing() {
			reports = append(reports, []any{r.Product, r.InstanceID, r.Customer, r.Version.String(), string(r.Health.Status), r.Health.Detail, at, prior})
		}
		v := r.Version.String()
		seen[k] = &v
	}
	return events, reports
}

// lookedUp is what storedVersions read before the batch's upserts: the
// installations it asked about, and the stored version of those the store
// knows.
type lookedUp struct {
	asked    map[InstallationRef]bool
	versions map[InstallationRef]string
}

// refOf is the installation of an installations row (latestPerInstallation)
// or of an evidence row.
func refOf(row []any) InstallationRef {
	return InstallationRef{Product: row[0].(string), Customer: row[2].(string), InstanceID: row[1].(string)}
}

// splitLookedUp splits installation rows into those whose installation
// stored asked about and the rest, each in order.
func splitLookedUp(rows [][]any, stored lookedUp) (rest, looked [][]any) {
	if len(stored.asked) == 0 {
		return rows, nil
	}
	for _, r := range rows {
		if stored.asked[refOf(r)] {
			looked = append(looked, r)
		} else {
			rest = append(rest, r)
		}
	}
	return rest, looked
}

// storedVersions fills in the seen_on of evidence rows that have none
// (evidence) with the version the store has of their installation, or the
// empty string (SQLite: one prepared lookup per installation, no round
// trip), and returns what it looked up.
func (s *Store) storedVersions(ctx context.Context, tx *sql.Tx, rowSets ...[][]any) (lookedUp, error) {
	stored := lookedUp{asked: map[InstallationRef]bool{}, versions: map[InstallationRef]string{}}
	var lookup *sql.Stmt
	for _, rows := range rowSets {
		for _, r := range rows {
			last := len(r) - 1
			if p := r[last].(*string); p != nil {
				r[last] = *p
				continue
			}
			k := refOf(r)
			if !stored.asked[k] {
				if lookup == nil {
					var err error
					if lookup, err = s.prepared(ctx, tx, lookupVersion); err != nil {
						return stored, err
					}
				}
				var v string
				err := lookup.QueryRowContext(ctx, k.Product, k.Customer, k.InstanceID).Scan(&v)
				switch {
				case err == nil:
					stored.versions[k] = v
				case !errors.Is(err, sql.ErrNoRows):
					return stored, fmt.Errorf("look up installation %s of %s: %w", k.InstanceID, k.Customer, err)
				}
				stored.asked[k] = true
			}
			r[last] = stored.versions[k]
		}
	}
	return stored, nil
}

// latestPerInstallation reduces recs (in arrival order) to one installation
// row per product, customer and instance: the latest record, keeping an earlier
// health report of the same version when the latest carries none. Rows are
// split by whether they carry a health report.
func latestPerInstallation(recs []CheckInRecord) (withHealth, withoutHealth [][]any) {
	type key struct{ product, customer, instance string }
	latest := make(map[key]CheckInRecord, len(recs))
	order := make([]key, 0, len(recs))
	for _, r := range recs {
		k := key{r.Product, r.Customer, r.InstanceID}
		old, seen := latest[k]
		if !seen {
			order = append(order, k)
		} else {
			if r.Health == nil && old.Health != nil && old.Version == r.Version {
				r.Health = old.Health
			}
			r.FirstSeen = old.firstSeen()
		}
		latest[k] = r
	}
	for _, k := range order {
		r := latest[k]
		at, first := r.ReceivedAt.UTC(), r.firstSeen()
		if r.Health != nil {
			withHealth = append(withHealth, []any{r.Product, r.InstanceID, r.Customer, r.Version.String(), string(r.Health.Status), r.Health.Detail, first, at})
		} else {
			withoutHealth = append(withoutHealth, []any{r.Product, r.InstanceID, r.Customer, r.Version.String(), string(release.HealthUnknown), "", first, at})
		}
	}
	return withHealth, withoutHealth
}

// statementParams is how many parameters one multi-row statement gets.
// modernc.org/sqlite binds $N parameters in time quadratic in their number
// (measured: 1000 rows in 11 ms at 96 parameters per statement, 55 ms at
// 1600), while PostgreSQL pays a round trip per statement. (The check-in
// writer does better still on SQLite with one-row prepared statements:
// see writeRows.)
func (s *Store) statementParams() int {
	if s.dialect == Postgres {
		return 16000
	}
	return 96
}

// writeRows runs the one-row statement query (SQLite's) for every row of
// rows, calling scan (if not nil) for every row it returns: one prepared
// one-row statement per row is the cheapest way to write rows with
// modernc.org/sqlite (measured: 1,000 upserts in 23 ms one row at a time,
// 53 ms twelve rows per statement), and the statement is parsed once per
// connection, not once per batch.
func (s *Store) writeRows(ctx context.Context, tx *sql.Tx, query string, rows [][]any, scan func(scanner) error) error {
	if len(rows) == 0 {
		return nil
	}
	stmt, err := s.prepared(ctx, tx, query)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if scan == nil {
			if _, err := stmt.ExecContext(ctx, row...); err != nil {
				return err
			}
			continue
		}
		if err := scanEach(stmt.QueryContext(ctx, row...))(scan); err != nil {
			return err
		}
	}
	return nil
}

// scanEach returns what calls scan (if not nil) for every row of a query's
// result and closes it; a failed query's error is returned as is.
func scanEach(res *sql.Rows, err error) func(scan func(scanner) error) error {
	return func(scan func(scanner) error) error {
		if err != nil {
			return err
		}
		for scan != nil && res.Next() {
			if err := scan(res); err != nil {
				res.Close()
				return err
			}
		}
		return errors.Join(res.Err(), res.Close())
	}
}

// statements caches the check-in writer's prepared statements on SQLite's
// writing connection, by SQL text, so they are parsed once per connection
// instead of once per batch. The set is fixed (prepareCheckIns), so it
// never grows.
type statements struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
	// ready is set once prepareCheckIns prepared them all.
	ready atomic.Bool
}

// prepare prepares query on db unless it is cached. It prepares without
// holding mu: preparing waits for SQLite's one writing connection, and a
// transaction holding that connection may be waiting for mu in prepared.
func (c *statements) prepare(ctx context.Context, db *sql.DB, query string) error {
	c.mu.Lock()
	cached := c.m[query] != nil
	c.mu.Unlock()
	if cached {
		return nil
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare check-in statement: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[query] != nil {
		return stmt.Close() // prepared meanwhile by another caller
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = stmt
	return nil
}

// prepared returns query as a statement of tx: the cached one, or one
// prepared in tx (ImportExport's transactions, which prepareCheckIns did not
// run before).
func (s *Store) prepared(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s.stmts.mu.Lock()
	stmt := s.stmts.m[query]
	s.stmts.mu.Unlock()
	if stmt != nil {
		return tx.StmtContext(ctx, stmt), nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare check-in statement: %w", err)
	}
	return stmt, nil
}

// close closes the cached statements.
func (c *statements) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	c.ready.Store(false)
	return errors.Join(errs...)
}

// insertRows runs head + "($1, ...), (...)" + tail for rows, with at most
// maxParams parameters per statement. All rows have the same width.
func insertRows(ctx context.Context, tx *sql.Tx, maxParams int, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	width := len(rows[0])
	per := max(1, maxParams/width)
	var b strings.Builder
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		b.Reset()
		b.WriteString(head)
		args := make([]any, 0, len(chunk)*width)
		for i, row := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j := range row {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(len(args) + j + 1))
			}
			b.WriteByte(')')
			args = append(args, row...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseRef names one release of a product.
type ReleaseRef struct {
	Product string
	Version release.Version
}

// ReleasesWithFailures returns the releases that failure events
// (upgrade_failed, integrity_failed) or failing health reports received after
// since name: what auto-halt must look at after a restart, when the failures
// committed before it may not have been evaluated. Versions that do not parse
// are skipped (no such release can exist).
func (s *Store) ReleasesWithFailures(ctx context.Context, since time.Time) ([]ReleaseRef, error) {
	refs, err := queryAll(ctx, s.rdb, func(row scanner) (ReleaseRef, error) {
		var r ReleaseRef
		var version string
		if err := row.Scan(&r.Product, &version); err != nil {
			return r, err
		}
		r.Version, _ = release.ParseVersion(version)
		return r, nil
	}, "list releases with failures", `SELECT product, to_version FROM events
			WHERE received_at > $1 AND kind IN ('upgrade_failed', 'integrity_failed')
		UNION
		SELECT product, version FROM health_reports WHERE at > $1`, since.UTC())
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, r := range refs {
		if !r.Version.IsZero() {
			out = append(out, r)
		}
	}
	return out, nil
}

// haltWhere are the conditions of auto-halt evidence about release $2 of
// product $1 received in ($3, $4], for events (e) and failing health reports
// (h): whether a row concerns the release and window at all, whether it is
// from an installation known before it reported (release.Policy), and which
// event kinds count as moved and failed.
const (
	haltEventsIn   = `product = $1 AND to_version = $2 AND received_at > $3 AND received_at <= $4`
	haltHealthIn   = `product = $1 AND version = $2 AND at > $3 AND at <= $4`
	haltEventKnown = `seen_on <> '' AND (seen_on = from_version OR seen_on = to_version)`
	haltMovedKinds = `kind IN ('upgrade_started', 'upgrade_succeeded', 'upgrade_failed', 'integrity_failed')`
	haltFailKinds  = `kind IN ('upgrade_failed', 'integrity_failed')`
)

// HaltCounts counts the auto-halt evidence about release v of product
// received in (since, now] in SQL — distinct installations that moved and
// failed, distinct customers of those that failed, ignored reports — and
// loads the first failure of at most release.MaxEvidenceFailures
// installations, so the work per evaluation does not grow with the number
// of failing installations. It counts what release.CountHalt counts.
func (s *Store) HaltCounts(ctx context.Context, product string, v release.Version, since, now time.Time) (release.HaltCounts, error) {
	var c release.HaltCounts
	args := []any{product, v.String(), since.UTC(), now.UTC()}
	movedRows := `SELECT customer, instance_id FROM events WHERE ` + haltEventsIn + ` AND ` + haltEventKnown + ` AND ` + haltMovedKinds + `
		UNION SELECT customer, instance_id FROM health_reports WHERE ` + haltHealthIn + ` AND seen_on <> ''`
	failedRows := `SELECT customer, instance_id FROM events WHERE ` + haltEventsIn + ` AND ` + haltEventKnown + ` AND ` + haltFailKinds + `
		UNION SELECT customer, instance_id FROM health_reports WHERE ` + haltHealthIn + ` AND seen_on <> ''`
	err := s.rdb.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM events WHERE `+haltEventsIn+` AND NOT (`+haltEventKnown+`))
				+ (SELECT COUNT(*) FROM health_reports WHERE `+haltHealthIn+` AND seen_on = '')`, args...).
		Scan(&c.Ignored)
	if err != nil {
		return c, fmt.Errorf("count auto-halt evidence of %s@%s: %w", product, v, err)
	}
	// Per customer, so that auto-halt can weigh each customer's evidence
	// (release.Weigh); there are as many rows as customers reporting.
	by := map[string]*release.CustomerCounts{}
	for _, q := range []struct {
		rows  string
		count func(*release.CustomerCounts, int)
	}{
		{movedRows, func(cc *release.CustomerCounts, n int) { cc.Moved = n }},
		{failedRows, func(cc *release.CustomerCounts, n int) { cc.Failed = n }},
	} {
		type row struct {
			customer string
			n        int
		}
		rows, err := queryAll(ctx, s.rdb, func(r scanner) (row, error) {
			var x row
			return x, r.Scan(&x.customer, &x.n)
		}, "count auto-halt evidence per customer", `SELECT customer, COUNT(*) FROM (`+q.rows+`) AS x GROUP BY customer`, args...)
		if err != nil {
			return c, err
		}
		for _, r := range rows {
			if by[r.customer] == nil {
				by[r.customer] = &release.CustomerCounts{Customer: r.customer}
			}
			q.count(by[r.customer], r.n)
		}
	}
	for _, cc := range by {
		c.ByCustomer = append(c.ByCustomer, *cc)
		c.Moved, c.Failed = c.Moved+cc.Moved, c.Failed+cc.Failed
		if cc.Failed > 0 {
			c.Customers++
		}
	}
	release.SortCustomerCounts(c.ByCustomer)
	// The first failure of each installation, from either table; an
	// installation failing in both keeps its earlier one.
	scan := func(row scanner) (release.Failure, error) {
		var f release.Failure
		err := row.Scan(&f.Customer, &f.InstanceID, &f.Kind, &f.At, &f.Detail)
		f.At = f.At.UTC()
		return f, err
	}
	limit := release.MaxEvidenceFailures
	evs, err := queryAll(ctx, s.rdb, scan, "load auto-halt failures", `SELECT customer, instance_id, kind, received_at, detail FROM events
		WHERE id IN (SELECT MIN(id) FROM events WHERE `+haltEventsIn+` AND `+haltEventKnown+` AND `+haltFailKinds+` GROUP BY customer, instance_id)
		ORDER BY received_at, customer, instance_id LIMIT $5`, append(args, limit)...)
	if err != nil {
		return c, err
	}
	hrs, err := queryAll(ctx, s.rdb, scan, "load auto-halt failures", `SELECT customer, instance_id, 'health_' || status, at, detail FROM health_reports
		WHERE id IN (SELECT MIN(id) FROM health_reports WHERE `+haltHealthIn+` AND seen_on <> '' GROUP BY customer, instance_id)
		ORDER BY at, customer, instance_id LIMIT $5`, append(args, limit)...)
	if err != nil {
		return c, err
	}
	first := map[[2]string]release.Failure{}
	for _, f := range append(evs, hrs...) {
		k := [2]string{f.Customer, f.InstanceID}
		if old, ok := first[k]; !ok || f.At.Before(old.At) {
			first[k] = f
		}
	}
	c.Failures = make([]release.Failure, 0, len(first))
	for _, f := range first {
		c.Failures = append(c.Failures, f)
	}
	release.SortFailures(c.Failures)
	if len(c.Failures) > limit {
		c.Failures = c.Failures[:limit]
	}
	return c, nil
}

// ListEvents returns up to limit events of product, newest first.
func (s *Store) ListEvents(ctx context.Context, product string, limit int) ([]release.InstanceEvent, error) {
	return queryAll(ctx, s.rdb, func(row scanner) (release.InstanceEvent, error) {
		var e release.InstanceEvent
		var kind, from, to string
		if err := row.Scan(&e.InstanceID, &kind, &from, &to, &e.At, &e.Detail); err != nil {
			return e, err
		}
		e.Kind, e.At = release.EventKind(kind), e.At.UTC()
		e.From, _ = release.ParseVersion(from)
		e.To, _ = release.ParseVersion(to)
		return e, nil
	}, "list events", `SELECT instance_id, kind, from_version, to_version, at, detail FROM events
		WHERE product = $1 ORDER BY id DESC LIMIT $2`, product, limit)
}

// ListInstallations returns up to limit installations of product, most
// recently seen first.
func (s *Store) ListInstallations(ctx context.Context, product string, limit int) ([]release.Installation, error) {
	return s.QueryInstallations(ctx, product, release.InstallationFilter{Limit: limit})
}

// QueryInstallations returns the installations of product f selects.
func (s *Store) QueryInstallations(ctx context.Context, product string, f release.InstallationFilter) ([]release.Installation, error) {
	return queryAll(ctx, s.rdb, scanInstallation, "list installations", `SELECT `+installationCols+`
		FROM installations i LEFT JOIN customers c ON c.product = i.product AND c.name = i.customer
		WHERE i.product = $1 AND ($2 = '' OR i.version = $2) AND ($3 = '' OR i.customer = $3)
			AND ($4 = '' OR COALESCE(c.ring, '') = $4) AND ($5 = '' OR i.health = $5)
		ORDER BY i.last_seen DESC, i.instance_id, i.customer LIMIT $6 OFFSET $7`,
		product, f.Version, f.Customer, f.Ring, string(f.Health), f.Limit, f.Offset)
}

// Prune deletes events and health reports received before cutoff,
// installations not seen since cutoff and notifications delivered (or given
// up) before cutoff, so instance history does not grow
// without bound. It returns the number of rows deleted. Servers sharing a
// database prune one after the other, the later ones finding nothing.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "prune"); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM events WHERE received_at < $1`,
			`DELETE FROM health_reports WHERE at < $1`,
			`DELETE FROM installations WHERE last_seen < $1`,
			`DELETE FROM outbox WHERE state <> 'pending' AND done_at < $1`,
			// Re-importing a pruned file still records nothing: the
			// installation's high-water mark (installation_keys) stays.
			`DELETE FROM imported_exports WHERE imported_at < $1`,
		} {
			res, err := tx.ExecContext(ctx, q, cutoff.UTC())
			if err != nil {
				return fmt.Errorf("prune instance history: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("prune instance history: %w", err)
			}
			total += n
		}
		return nil
	})
	return total, err
}

// Estimated bytes a row takes in the store beyond its free text, for the
// stored-bytes quota (an estimate: indexes and page overhead vary).
const (
	EventRowBytes        = 160
	HealthRowBytes       = 120
	InstallationRowBytes = 160
)

// CustomerRef names one customer of a product.
type CustomerRef struct {
	Product, Customer string
}

// StoredBytes estimates, per customer, the bytes its installations,
// events and failing health reports take in the store (free text plus a
// fixed size per row). It scans those tables: servers call it at start
// and after pruning, and count what they write in between.
func (s *Store) StoredBytes(ctx context.Context) (map[CustomerRef]int64, error) {
	type row struct {
		ref CustomerRef
		n   int64
	}
	rows, err := queryAll(ctx, s.rdb, func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.ref.Product, &x.ref.Customer, &x.n)
	}, "estimate stored bytes per customer", `SELECT product, customer, SUM(n) FROM (
			SELECT product, customer, COUNT(*) * `+fmt.Sprint(EventRowBytes)+` + COALESCE(SUM(LENGTH(detail)), 0) AS n FROM events GROUP BY product, customer
			UNION ALL
			SELECT product, customer, COUNT(*) * `+fmt.Sprint(HealthRowBytes)+` + COALESCE(SUM(LENGTH(detail)), 0) FROM health_reports GROUP BY product, customer
			UNION ALL
			SELECT product, customer, COUNT(*) * `+fmt.Sprint(InstallationRowBytes)+` + COALESCE(SUM(LENGTH(health_detail)), 0) FROM installations GROUP BY product, customer
		) AS x GROUP BY product, customer`)
	if err != nil {
		return nil, err
	}
	out := make(map[CustomerRef]int64, len(rows))
	for _, r := range rows {
		out[r.ref] = r.n
	}
	return out, nil
}

// InstallationKnown reports whether the store knows the installation.
func (s *Store) InstallationKnown(ctx context.Context, product, customer, instanceID string) (bool, error) {
	ok, err := exists(ctx, s.rdb, `SELECT 1 FROM installations WHERE product = $1 AND customer = $2 AND instance_id = $3`, product, customer, instanceID)
	if err != nil {
		return false, fmt.Errorf("look up installation %s of %s: %w", instanceID, customer, err)
	}
	return ok, nil
}
