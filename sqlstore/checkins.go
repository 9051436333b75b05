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
//
// A batch is four statements whatever its size (checkInQueries), each
// taking the batch's rows as one parameter: on PostgreSQL they go to the
// server in one round trip (pipelineCheckIns); on SQLite they run in one
// transaction, prepared once per connection.
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

// recordCheckIns is WriteCheckIns inside tx, one statement after the other
// (also used by ImportExport, so imported reports go through exactly the
// same rules).
func (s *Store) recordCheckIns(ctx context.Context, tx *sql.Tx, recs []CheckInRecord) ([]InstallationRef, error) {
	stmts, created := s.checkInStatements(recs)
	for _, st := range stmts {
		q, err := s.prepared(ctx, tx, st.sql)
		if err != nil {
			return nil, err
		}
		if err := scanEach(q.QueryContext(ctx, st.args...))(st.scan); err != nil {
			return nil, fmt.Errorf("record check-ins: %w", err)
		}
	}
	return created.refs, nil
}

// batchCol is a column of a batch's rows: text, or a time (timestamptz).
type batchCol struct {
	name string
	time bool
}

// The columns of the batches the check-in statements take, in the order
// of latestPerInstallation's and evidence's rows.
var (
	installationBatch = []batchCol{{name: "product"}, {name: "instance_id"}, {name: "customer"}, {name: "version"},
		{name: "health"}, {name: "health_detail"}, {name: "first_seen", time: true}, {name: "last_seen", time: true}}
	eventBatch = []batchCol{{name: "product"}, {name: "instance_id"}, {name: "customer"}, {name: "kind"}, {name: "from_version"},
		{name: "to_version"}, {name: "at", time: true}, {name: "detail"}, {name: "received_at", time: true}, {name: "seen_on"}}
	healthReportBatch = []batchCol{{name: "product"}, {name: "instance_id"}, {name: "customer"}, {name: "version"},
		{name: "status"}, {name: "detail"}, {name: "at", time: true}, {name: "seen_on"}}
)

const (
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
	// storedVersionOf is the version the store has of the installation
	// of row e of an evidence statement.
	storedVersionOf = `(SELECT i.version FROM installations i
			WHERE i.product = e.product AND i.customer = e.customer AND i.instance_id = e.instance_id)`
)

// checkInQueries are the check-in writer's statements in one dialect, in
// the order a batch runs them. The evidence statements come first and read
// the installation's stored version themselves (seen_on: the version the
// installation was seen on before the batch, unless an earlier record of
// the batch set it), so a batch needs no lookup before its writes. Their
// texts do not depend on the batch's size: each is parsed and planned once
// per connection.
type checkInQueries struct {
	events, healthReports, upsertReported, upsertUnreported string
}

func newCheckInQueries(d Dialect) checkInQueries {
	evidence := func(table string, cols []batchCol) string {
		names := make([]string, len(cols))
		selected := make([]string, len(cols))
		for i, c := range cols {
			names[i], selected[i] = c.name, "e."+c.name
		}
		selected[len(cols)-1] = "COALESCE(e.seen_on, " + storedVersionOf + ", '')"
		return "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ")\n\t\tSELECT " + strings.Join(selected, ", ") +
			"\n\t\tFROM " + batchSource(d, cols) + " WHERE true"
	}
	installations := func(set string) string {
		names := make([]string, len(installationBatch))
		for i, c := range installationBatch {
			names[i] = c.name
		}
		// WHERE true: SQLite would read ON CONFLICT as a join's ON.
		return "INSERT INTO installations (" + strings.Join(names, ", ") + ")\n\t\tSELECT * FROM " +
			batchSource(d, installationBatch) + " WHERE true" + set + returningCreated
	}
	return checkInQueries{
		events:           evidence("events", eventBatch),
		healthReports:    evidence("health_reports", healthReportBatch),
		upsertReported:   installations(upsertReported),
		upsertUnreported: installations(upsertUnreported),
	}
}

// batchSource is the FROM item that yields a batch's rows as relation e
// with cols, from one parameter per column on PostgreSQL (unnest over
// arrays) and one parameter in all on SQLite (json_each over a JSON array
// of rows: modernc.org/sqlite binds parameters in time quadratic in their
// number, and a prepared statement per row costs database/sql's overhead
// per row).
func batchSource(d Dialect, cols []batchCol) string {
	var b strings.Builder
	if d == Postgres {
		names := make([]string, len(cols))
		b.WriteString("unnest(")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			typ := "text[]"
			if c.time {
				typ = "timestamptz[]"
			}
			fmt.Fprintf(&b, "$%d::%s", i+1, typ)
			names[i] = c.name
		}
		b.WriteString(") AS e(" + strings.Join(names, ", ") + ")")
		return b.String()
	}
	b.WriteString("(SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "value ->> %d AS %s", i, c.name)
	}
	b.WriteString(" FROM json_each($1)) AS e")
	return b.String()
}

// checkInStatement is one statement of a check-in batch: its SQL, its
// arguments and, for one returning rows, what reads each row.
type checkInStatement struct {
	sql  string
	args []any
	scan func(scanner) error
}

// checkInStatements is the statements that write recs, in order, and what
// collects the installations they create. Statements without rows are
// left out.
func (s *Store) checkInStatements(recs []CheckInRecord) ([]checkInStatement, *createdSet) {
	withHealth, withoutHealth := latestPerInstallation(recs)
	created := newCreatedSet(withHealth, withoutHealth)
	events, reports := evidence(recs)
	var stmts []checkInStatement
	for _, st := range []struct {
		sql  string
		rows [][]any
		scan func(scanner) error
	}{
		{s.queries.events, events, nil},
		{s.queries.healthReports, reports, nil},
		{s.queries.upsertReported, withHealth, created.collect}, // a reported health replaces the stored one
		{s.queries.upsertUnreported, withoutHealth, created.collect},
	} {
		if len(st.rows) > 0 {
			stmts = append(stmts, checkInStatement{sql: st.sql, args: s.batchArgs(st.rows), scan: st.scan})
		}
	}
	return stmts, created
}

// batchArgs are the parameters of batchSource for rows, whose values are
// strings, times, or *string (nil for NULL): on PostgreSQL an array per
// column, on SQLite one JSON array of rows, with times written as the
// driver writes a time parameter (time.Time.String), so that what is
// stored does not depend on how it was passed.
func (s *Store) batchArgs(rows [][]any) []any {
	if s.dialect == Postgres {
		args := make([]any, len(rows[0]))
		for j, v := range rows[0] {
			switch v.(type) {
			case string:
				args[j] = column[string](rows, j)
			case time.Time:
				args[j] = column[time.Time](rows, j)
			case *string:
				args[j] = column[*string](rows, j)
			default:
				panic(fmt.Sprintf("sqlstore: check-in column %d is a %T", j+1, v))
			}
		}
		return args
	}
	b := make([]byte, 0, 160*len(rows))
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range r {
			if j > 0 {
				b = append(b, ',')
			}
			switch x := v.(type) {
			case string:
				b = appendJSONString(b, x)
			case time.Time:
				b = appendJSONString(b, x.String())
			case *string:
				if x == nil {
					b = append(b, "null"...)
				} else {
					b = appendJSONString(b, *x)
				}
			default:
				panic(fmt.Sprintf("sqlstore: check-in column %d is a %T", j+1, v))
			}
		}
		b = append(b, ']')
	}
	return []any{string(append(b, ']'))}
}

// column is column j of rows, whose values are Ts.
func column[T any](rows [][]any, j int) []T {
	col := make([]T, len(rows))
	for i, r := range rows {
		col[i] = r[j].(T)
	}
	return col
}

// appendJSONString appends s as a JSON string: '"', '\\' and control
// characters escaped, everything else as is (SQLite's JSON functions pass
// bytes through, so text reads back exactly as it would from a parameter).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// prepareCheckIns prepares the writer's statements on SQLite's writing
// connection once, before a batch's transaction takes it (the pool has one
// connection: nothing can be prepared on the pool while a transaction holds
// it).
func (s *Store) prepareCheckIns(ctx context.Context) error {
	if s.stmts.ready.Load() {
		return nil
	}
	q := s.queries
	for _, query := range []string{q.events, q.healthReports, q.upsertReported, q.upsertUnreported} {
		if err := s.stmts.prepare(ctx, s.db, query); err != nil {
			return err
		}
	}
	s.stmts.ready.Store(true)
	return nil
}

// evidence turns recs' events and failing health reports into rows of
// events and health_reports, in order. Their last column, seen_on, is the
// version the installation was seen on before the record, which auto-halt
// needs to tell known installations from invented instance ids: a *string,
// the version of the installation's earlier record in the batch (which
// takes precedence, being newer), or nil when the record is the batch's
// first of its installation and the version the store has is meant (empty
// if it has none: storedVersionOf).
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

// refOf is the installation of an installations row (latestPerInstallation).
func refOf(row []any) InstallationRef {
	return InstallationRef{Product: row[0].(string), Customer: row[2].(string), InstanceID: row[1].(string)}
}

// createdSet tells which installations a batch created, from the rows its
// upserts return: a created row carries the first_seen the batch gave it, a
// known installation keeps its earlier one (returningCreated).
type createdSet struct {
	firstSeen map[InstallationRef]time.Time
	refs      []InstallationRef
}

// newCreatedSet expects the installation rows of latestPerInstallation.
func newCreatedSet(rowSets ...[][]any) *createdSet {
	c := &createdSet{firstSeen: map[InstallationRef]time.Time{}}
	for _, rows := range rowSets {
		for _, r := range rows {
			c.firstSeen[refOf(r)] = r[6].(time.Time).Truncate(time.Microsecond)
		}
	}
	return c
}

// collect reads one row returned by an upsert (returningCreated).
func (c *createdSet) collect(row scanner) error {
	var ref InstallationRef
	var first time.Time
	if err := row.Scan(&ref.Product, &ref.Customer, &ref.InstanceID, &first); err != nil {
		return err
	}
	if want, ok := c.firstSeen[ref]; ok && first.UTC().Truncate(time.Microsecond).Equal(want) {
		c.refs = append(c.refs, ref)
	}
	return nil
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
// writer passes a whole batch as one parameter instead: batchSource.)
func (s *Store) statementParams() int {
	if s.dialect == Postgres {
		return 16000
	}
	return 96
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
