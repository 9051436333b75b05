package pgcheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// repairSchema holds ringfence's own tables in a checked database: the
// repair journal and the quarantine.
const repairSchema = "ringfence"

// Quarantine reasons and actions, as stored in ringfence.quarantine.
const (
	// QuarantineDeleted marks a row removed from its table (a duplicate).
	QuarantineDeleted = "deleted"
	// QuarantineMoved marks a row moved to the partition its key belongs
	// in; the quarantine keeps a copy of it as it was.
	QuarantineMoved = "moved"
)

// repairDDL creates ringfence's repair tables. Every statement is idempotent.
//
//   - repair_run: one row per repair run; a run without finished_at was
//     interrupted and is resumed by the next `repair --apply`.
//   - repair_log: the journal, append-only: every action with its SQL, once
//     when it starts and once when it ends (done or failed).
//   - quarantine: every row a repair removed or moved, as jsonb, with the
//     table it came from and the table to insert it into to restore it.
//
// Text columns use the C collation, so that the journal a resumed repair
// reads is itself immune to the collation changes it repairs.
var repairDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ringfence`,
	`CREATE TABLE IF NOT EXISTS ringfence.repair_run (
	    id          uuid PRIMARY KEY,
	    started_at  timestamptz NOT NULL DEFAULT now(),
	    finished_at timestamptz,
	    status      text COLLATE "C" NOT NULL DEFAULT 'running',
	    options     jsonb NOT NULL DEFAULT '{}'
	)`,
	`CREATE TABLE IF NOT EXISTS ringfence.repair_log (
	    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	    run_id  uuid NOT NULL REFERENCES ringfence.repair_run (id),
	    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
	    step    text COLLATE "C" NOT NULL,
	    target  text COLLATE "C" NOT NULL,
	    status  text COLLATE "C" NOT NULL,
	    sql     text NOT NULL,
	    rows    bigint,
	    attempt int,
	    error   text
	)`,
	`CREATE INDEX IF NOT EXISTS repair_log_run_idx ON ringfence.repair_log (run_id, step, target)`,
	`CREATE TABLE IF NOT EXISTS ringfence.quarantine (
	    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	    run_id         uuid NOT NULL REFERENCES ringfence.repair_run (id),
	    quarantined_at timestamptz NOT NULL DEFAULT now(),
	    reason         text COLLATE "C" NOT NULL,
	    action         text COLLATE "C" NOT NULL,
	    source_table   text COLLATE "C" NOT NULL,
	    restore_table  text COLLATE "C" NOT NULL,
	    object         text COLLATE "C" NOT NULL,
	    key            jsonb,
	    row_data       jsonb NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS quarantine_run_idx ON ringfence.quarantine (run_id)`,
}

// QuarantinedRow is one row of ringfence.quarantine.
type QuarantinedRow struct {
	ID    int64     `json:"id"`
	RunID string    `json:"run_id"`
	At    time.Time `json:"quarantined_at"`
	// Reason is the finding kind that made the row a victim
	// (duplicate_key, partition_bound_violation).
	Reason string `json:"reason"`
	// Action is QuarantineDeleted or QuarantineMoved.
	Action string `json:"action"`
	// SourceTable is the table (partition) the row was taken from.
	SourceTable string `json:"source_table"`
	// RestoreTable is where to insert the row to restore it: the table
	// itself, or the partitioned table that routes it.
	RestoreTable string `json:"restore_table"`
	// Object is the index or partition that made the row a victim.
	Object string `json:"object"`
	// Key is the duplicated key.
	Key []byte `json:"key,omitempty"`
	// Row is the whole row as jsonb (to_jsonb of the row).
	Row []byte `json:"row"`
}

// RestoreSQL returns the statement that puts a deleted row back: it rebuilds
// the row from its jsonb copy with jsonb_populate_record and inserts it into
// RestoreTable. It fails (and changes nothing) if the key exists again, which
// is the point: restoring a duplicate would corrupt the rebuilt index's
// guarantee. Moved rows are still in their table and need no restore.
func (q QuarantinedRow) RestoreSQL(ctx context.Context, conn *pgx.Conn) (string, error) {
	return RestoreSQL(ctx, conn, q.RestoreTable, q.ID)
}

// RestoreSQL returns the statement that restores quarantine row id into
// table (a quoted, qualified name as stored in restore_table). It names the
// table's columns as they are now: generated columns are left out (the
// server computes them again) and identity values are kept with OVERRIDING
// SYSTEM VALUE, so that the row comes back as it was.
func RestoreSQL(ctx context.Context, conn *pgx.Conn, table string, id int64) (string, error) {
	var cols []string
	err := conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(quote_ident(attname) ORDER BY attnum), '{}')
		  FROM pg_attribute
		 WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`, table).Scan(&cols)
	if err != nil {
		return "", fmt.Errorf("read the columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("%s has no column to restore into", table)
	}
	from := make([]string, len(cols))
	for i, c := range cols {
		from[i] = "r." + c
	}
	return fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s.quarantine AS q, "+
		"jsonb_populate_record(NULL::%s, q.row_data) AS r WHERE q.id = %d",
		table, strings.Join(cols, ", "), strings.Join(from, ", "), repairSchema, table, id), nil
}

// Quarantined reads the quarantine rows of repair run runID (all runs when
// runID is empty), oldest first. It returns no rows, not an error, when no
// repair ever ran in the database.
func Quarantined(ctx context.Context, conn *pgx.Conn, runID string) ([]QuarantinedRow, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('ringfence.quarantine') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `
		SELECT id, run_id::text, quarantined_at, reason, action, source_table, restore_table, object,
		       key, row_data
		  FROM ringfence.quarantine
		 WHERE $1 = '' OR run_id::text = $1
		 ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuarantinedRow, error) {
		var q QuarantinedRow
		err := r.Scan(&q.ID, &q.RunID, &q.At, &q.Reason, &q.Action, &q.SourceTable, &q.RestoreTable,
			&q.Object, &q.Key, &q.Row)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	return out, nil
}

// ensureRepairTables creates ringfence's repair schema and tables, and
// refuses to use them unless the current user owns them and nothing else
// is attached to them: whoever owns the schema or a table could read the
// quarantined rows, and a trigger or rule on the journal or the quarantine
// would run inside every repair transaction. PUBLIC gets no privilege.
func ensureRepairTables(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, repairDDL[0]); err != nil {
		return fmt.Errorf("create repair tables: %w", err)
	}
	if err := checkRepairSchema(ctx, conn); err != nil {
		return err
	}
	for _, ddl := range repairDDL[1:] {
		if _, err := conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("create repair tables: %w", err)
		}
	}
	if err := checkRepairSchema(ctx, conn); err != nil {
		return err
	}
	for _, sql := range []string{
		"REVOKE ALL ON SCHEMA " + repairSchema + " FROM PUBLIC",
		"REVOKE ALL ON ALL TABLES IN SCHEMA " + repairSchema + " FROM PUBLIC",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("restrict the repair tables: %w", err)
		}
	}
	return nil
}

// checkRepairSchema returns an error naming whatever in the repair schema
// the current user does not own, and any trigger or rule on its tables.
func checkRepairSchema(ctx context.Context, conn *pgx.Conn) error {
	var problems []string
	err := conn.QueryRow(ctx, `
		WITH me AS (SELECT oid FROM pg_roles WHERE rolname = current_user),
		     nsp AS (SELECT oid, nspname, nspowner FROM pg_namespace WHERE nspname = $1)
		SELECT coalesce(array_agg(p ORDER BY p), '{}') FROM (
		  SELECT format('schema %I is owned by %s', nspname, nspowner::regrole) FROM nsp WHERE nspowner <> (SELECT oid FROM me)
		  UNION ALL
		  SELECT format('%s is owned by %s', c.oid::regclass, c.relowner::regrole)
		    FROM pg_class c JOIN nsp ON c.relnamespace = nsp.oid WHERE c.relowner <> (SELECT oid FROM me)
		  UNION ALL
		  SELECT format('trigger %I on %s', tg.tgname, tg.tgrelid::regclass)
		    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN nsp ON c.relnamespace = nsp.oid
		   WHERE NOT tg.tgisinternal
		  UNION ALL
		  SELECT format('rule %I on %s', rw.rulename, rw.ev_class::regclass)
		    FROM pg_rewrite rw JOIN pg_class c ON c.oid = rw.ev_class JOIN nsp ON c.relnamespace = nsp.oid
		   WHERE rw.rulename <> '_RETURN') AS x(p)`, repairSchema).Scan(&problems)
	if err != nil {
		return fmt.Errorf("check the repair schema: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("refusing to keep the journal and quarantined rows in schema %s: %s (run the repair as the schema's owner, or drop or fix the schema)",
			repairSchema, strings.Join(problems, "; "))
	}
	return nil
}
