package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL's check-in statements. Every column is passed as one array to
// unnest, so each statement's text is constant, whatever the batch size:
// pgx prepares it once per connection and PostgreSQL neither parses nor
// plans a new statement per batch. The evidence statements come first and
// read the installation's stored version themselves (seen_on: the version
// the installation was seen on before the batch, unless an earlier record
// of the batch set it), so a batch needs no lookup before its writes and
// goes to the server in one round trip (WriteCheckIns).
const (
	pgUnnestInstallations = `INSERT INTO installations
			(product, instance_id, customer, version, health, health_detail, first_seen, last_seen)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[])`
	pgUpsertReported   = pgUnnestInstallations + upsertReported + returningCreated
	pgUpsertUnreported = pgUnnestInstallations + upsertUnreported + returningCreated
	// storedVersionOf is the version the store has of the installation
	// of row e of an evidence statement.
	storedVersionOf = `(SELECT i.version FROM installations i
			WHERE i.product = e.product AND i.customer = e.customer AND i.instance_id = e.instance_id)`
	pgInsertEvents = `INSERT INTO events
			(product, instance_id, customer, kind, from_version, to_version, at, detail, received_at, seen_on)
		SELECT e.product, e.instance_id, e.customer, e.kind, e.from_version, e.to_version, e.at, e.detail, e.received_at,
			COALESCE(e.seen_on, ` + storedVersionOf + `, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[])
			AS e(product, instance_id, customer, kind, from_version, to_version, at, detail, received_at, seen_on)`
	pgInsertHealthReports = `INSERT INTO health_reports
			(product, instance_id, customer, version, status, detail, at, seen_on)
		SELECT e.product, e.instance_id, e.customer, e.version, e.status, e.detail, e.at,
			COALESCE(e.seen_on, ` + storedVersionOf + `, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[])
			AS e(product, instance_id, customer, version, status, detail, at, seen_on)`
)

// pgStatement is one statement of a PostgreSQL check-in write: its SQL,
// its arguments and, for one returning rows, what reads each row.
type pgStatement struct {
	sql  string
	args []any
	scan func(scanner) error
}

// pgCheckIns is the statements that write recs on PostgreSQL, in order, and
// what collects the installations they create.
func pgCheckIns(recs []CheckInRecord) ([]pgStatement, *createdSet) {
	withHealth, withoutHealth := latestPerInstallation(recs)
	created := newCreatedSet(withHealth, withoutHealth)
	events, reports := evidence(recs)
	var stmts []pgStatement
	for _, st := range []pgStatement{
		{sql: pgInsertEvents, args: columns(events)},
		{sql: pgInsertHealthReports, args: columns(reports)},
		{sql: pgUpsertReported, args: columns(withHealth), scan: created.collect},
		{sql: pgUpsertUnreported, args: columns(withoutHealth), scan: created.collect},
	} {
		if st.args != nil {
			stmts = append(stmts, st)
		}
	}
	return stmts, created
}

// pipelineCheckIns is WriteCheckIns on PostgreSQL: the batch's statements
// go to the server in one round trip on one connection, as one implicit
// transaction (pgx's batch: PostgreSQL commits at its Sync, or rolls all of
// it back at the first error). Answered means committed, as with an
// explicit transaction, without a round trip each for BEGIN, every
// statement and COMMIT, which every check-in waiting for the batch would
// wait for.
func (s *Store) pipelineCheckIns(ctx context.Context, recs []CheckInRecord) ([]InstallationRef, error) {
	stmts, created := pgCheckIns(recs)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("record check-ins: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("connection is a %T, not pgx's", driverConn)
		}
		var b pgx.Batch
		for _, st := range stmts {
			q := b.Queue(st.sql, st.args...)
			if st.scan != nil {
				q.Query(func(rows pgx.Rows) error {
					for rows.Next() {
						if err := st.scan(rows); err != nil {
							return err
						}
					}
					return rows.Err()
				})
			}
		}
		return c.Conn().SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("record check-ins: %w", err)
	}
	return created.refs, nil
}

// pgRecordCheckIns runs the statements that write recs in tx, one after
// the other (ImportExport's transaction, which writes more than check-ins).
func pgRecordCheckIns(ctx context.Context, tx *sql.Tx, recs []CheckInRecord) ([]InstallationRef, error) {
	stmts, created := pgCheckIns(recs)
	for _, st := range stmts {
		if err := scanEach(tx.QueryContext(ctx, st.sql, st.args...))(st.scan); err != nil {
			return nil, fmt.Errorf("record check-ins: %w", err)
		}
	}
	return created.refs, nil
}

// columns turns rows into one array argument per column, for unnest:
// text ([]string), timestamptz ([]time.Time), or text with NULLs
// ([]*string, from *string columns). It returns nil for no rows. All rows
// have the shape of the first.
func columns(rows [][]any) []any {
	if len(rows) == 0 {
		return nil
	}
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

// column is column j of rows, whose values are Ts.
func column[T any](rows [][]any, j int) []T {
	col := make([]T, len(rows))
	for i, r := range rows {
		col[i] = r[j].(T)
	}
	return col
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
