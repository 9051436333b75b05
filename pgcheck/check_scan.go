package pgcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// firstNormalOID is PostgreSQL's FirstNormalObjectId: objects with lower
// OIDs were created by initdb (built in); extensions and users get higher.
const firstNormalOID = 16384

// userCodeReason explains why an expression is not evaluated.
const userCodeReason = "not evaluated: it calls functions, operators or operator classes that are not built in, which would run as the checking role"

// planScans adds the sequential scans amcheck cannot do: rows that a
// collation change left outside their partition's bounds, and rows that now
// violate a CHECK constraint comparing text. Only partition keys and
// constraints that depend on an at-risk collation are scanned, and only
// when everything they evaluate is built in: a table owner's function in a
// CHECK constraint would otherwise run with the checker's privileges.
//
// Planning takes no relation locks: the partition constraint is read by the
// task itself, under its lock_timeout.
func planScans(ctx context.Context, conn *pgx.Conn, db string, opts CheckOptions, risk *riskSet, rep *CheckReport, p *dbPlan) error {
	if len(risk.partitioned) > 0 {
		rows, err := conn.Query(ctx, `
			WITH leaves AS MATERIALIZED (
				SELECT c.oid, c.relnamespace, c.relname, c.relpages, c.relpersistence, c.relkind, inh.inhparent
				FROM pg_class c
				JOIN pg_inherits inh ON inh.inhrelid = c.oid
				WHERE c.relispartition AND c.relkind IN ('r', 'm', 'f')
				  AND EXISTS (SELECT FROM pg_partition_ancestors(c.oid) a WHERE a.relid = ANY($1::oid[])))
			SELECT l.oid, n.nspname, pn.nspname, pc.relname, l.relname,
			       greatest(l.relpages, 0)::bigint * current_setting('block_size')::bigint,
			       l.relpersistence = 'u', l.relkind = 'f',
			       EXISTS (
				SELECT FROM pg_partition_ancestors(l.oid) a
				JOIN pg_partitioned_table pt ON pt.partrelid = a.relid
				WHERE EXISTS (SELECT FROM unnest(pt.partclass::oid[]) oc WHERE oc >= $2)
				   OR EXISTS (SELECT FROM pg_depend d
				              WHERE d.classid = 'pg_class'::regclass AND d.objid = a.relid
				                AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass, 'pg_opclass'::regclass)
				                AND d.refobjid >= $2))
			FROM leaves l
			JOIN pg_namespace n ON n.oid = l.relnamespace
			JOIN pg_class pc ON pc.oid = l.inhparent
			JOIN pg_namespace pn ON pn.oid = pc.relnamespace`,
			risk.partitionedOIDs(), firstNormalOID)
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		var t task
		var parentSchema string
		var unlogged, foreign, userCode bool
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.schema, &parentSchema, &t.table, &t.name, &t.bytes, &unlogged, &foreign, &userCode}, func() error {
			if !opts.Filter.tableOK(parentSchema, t.table) || !opts.Filter.tableOK(t.schema, t.name) {
				return nil
			}
			p.planScan(db, t, taskPartition, scanSkip("partition", "partition bounds", foreign, unlogged && rep.Server.InRecovery, userCode))
			return nil
		})
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
	}
	if len(risk.checks) > 0 {
		rows, err := conn.Query(ctx, `
			SELECT t.oid, n.nspname, t.relname, con.conname, greatest(t.relpages, 0)::bigint * current_setting('block_size')::bigint,
			       pg_get_expr(con.conbin, con.conrelid), t.relpersistence = 'u',
			       EXISTS (SELECT FROM pg_depend d
			               WHERE d.classid = 'pg_constraint'::regclass AND d.objid = con.oid
			                 AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
			                 AND d.refobjid >= $2)
			FROM pg_constraint con
			JOIN pg_class t ON t.oid = con.conrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE con.oid = ANY($1::oid[]) AND con.contype = 'c' AND con.convalidated
			  AND t.relkind IN ('r', 'm')`, risk.checkOIDs(), firstNormalOID)
		if err != nil {
			return fmt.Errorf("list check constraints: %w", err)
		}
		var t task
		var unlogged, userCode bool
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.schema, &t.table, &t.name, &t.bytes, &t.expr, &unlogged, &userCode}, func() error {
			if !opts.Filter.tableOK(t.schema, t.table) {
				return nil
			}
			p.planScan(db, t, taskConstraint, scanSkip("table", "CHECK constraint", false, unlogged && rep.Server.InRecovery, userCode))
			return nil
		})
		if err != nil {
			return fmt.Errorf("list check constraints: %w", err)
		}
	}
	return nil
}

// scanSkip says why a scan of a relation (what: "partition", "table")
// cannot run here, or "" when it can: its rows live on another server
// (foreign), it has no contents here (unloggedStandby: unlogged, on a
// standby), or checking it runs user code (userCode; rule names what runs
// it).
func scanSkip(what, rule string, foreign, unloggedStandby, userCode bool) string {
	switch {
	case foreign:
		return "foreign " + what + ": its rows live on another server"
	case unloggedStandby:
		return "unlogged " + what + ": it has no contents on a standby"
	case userCode:
		return rule + " " + userCodeReason
	}
	return ""
}

// planScan plans t as a task of kind, or records it as skipped for reason
// when reason is not "".
func (p *dbPlan) planScan(db string, t task, kind taskKind, reason string) {
	if reason != "" {
		p.skip(db, t.schema, t.name, reason)
		return
	}
	t.kind = kind
	p.tasks = append(p.tasks, t)
	p.planned++
}

// scanViolations counts the rows of t's relation that do not satisfy its
// partition constraint or CHECK expression, reading the heap (index scans
// and partition pruning off: a corrupt index or the changed order would
// hide rows). It returns the expression it evaluated.
func scanViolations(ctx context.Context, conn *pgx.Conn, t task) (int64, string, error) {
	var n int64
	expr := t.expr
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
			SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_seqscan = on;
			SET LOCAL enable_partition_pruning = off; SET LOCAL constraint_exclusion = off`); err != nil {
			return err
		}
		// A partition constraint must be true; a CHECK constraint passes
		// when true or null.
		cond, rel := "(%s) IS FALSE", QuoteIdent(t.schema, t.table)
		if t.kind == taskPartition {
			// Reading the bound locks the partition and its parent
			// (AccessShareLock): here, under this task's lock_timeout.
			var bound *string
			if err := tx.QueryRow(ctx, `SELECT pg_get_partition_constraintdef($1)`, t.oid).Scan(&bound); err != nil {
				return err
			}
			if bound == nil {
				return nil // a default partition with no siblings: anything goes
			}
			expr = *bound
			cond, rel = "(%s) IS NOT TRUE", QuoteIdent(t.schema, t.name)
		}
		return tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM ONLY %s WHERE `+cond, rel, expr)).Scan(&n)
	})
	return n, expr, err
}

func violationFinding(db string, t task, n int64) Finding {
	// t.expr is the evaluated expression (set by runTask for partitions).
	if t.kind == taskPartition {
		return Finding{Kind: KindPartitionBoundViolation, Database: db, Schema: t.schema, Table: t.table,
			Object: t.name, Rows: n,
			Detail: fmt.Sprintf("%d row(s) of partition %s lie outside its bounds %s; list them with: SELECT * FROM ONLY %s WHERE (%s) IS NOT TRUE",
				n, t.name, t.expr, QuoteIdent(t.schema, t.name), t.expr)}
	}
	return Finding{Kind: KindCheckConstraintViolation, Database: db, Schema: t.schema, Table: t.table,
		Object: t.name, Rows: n,
		Detail: fmt.Sprintf("%d row(s) violate CHECK (%s); list them with: SELECT * FROM ONLY %s WHERE (%s) IS FALSE",
			n, t.expr, QuoteIdent(t.schema, t.table), t.expr)}
}
