package pgcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// planScans adds the sequential scans amcheck cannot do: rows that a
// collation change left outside their partition's bounds, and rows that now
// violate a CHECK constraint comparing text. Only partition keys and
// constraints that depend on an at-risk collation are scanned.
func planScans(ctx context.Context, conn *pgx.Conn, opts CheckOptions, risk *riskSet, rep *CheckReport, p *dbPlan) error {
	if len(risk.partitioned) > 0 {
		// pg_get_partition_constraintdef includes the ancestors' bounds, so
		// checking leaves covers every level.
		rows, err := conn.Query(ctx, `
			SELECT c.oid, n.nspname, pc.relname, c.relname, c.relpages::bigint * current_setting('block_size')::bigint,
			       pg_get_partition_constraintdef(c.oid)
			FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_inherits inh ON inh.inhrelid = c.oid
			JOIN pg_class pc ON pc.oid = inh.inhparent
			WHERE c.relispartition AND c.relkind IN ('r', 'm')
			  AND pg_get_partition_constraintdef(c.oid) IS NOT NULL
			  AND EXISTS (SELECT FROM pg_partition_ancestors(c.oid) a WHERE a.relid = ANY($1::oid[]))`,
			risk.partitionedOIDs())
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		var t task
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.schema, &t.table, &t.name, &t.bytes, &t.expr}, func() error {
			if !opts.Filter.tableOK(t.schema, t.table) && !opts.Filter.tableOK(t.schema, t.name) {
				return nil
			}
			t.kind = taskPartition
			p.tasks = append(p.tasks, t)
			rep.Checked.Partitions++
			return nil
		})
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
	}
	if len(risk.checks) > 0 {
		rows, err := conn.Query(ctx, `
			SELECT t.oid, n.nspname, t.relname, con.conname, t.relpages::bigint * current_setting('block_size')::bigint,
			       pg_get_expr(con.conbin, con.conrelid)
			FROM pg_constraint con
			JOIN pg_class t ON t.oid = con.conrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE con.oid = ANY($1::oid[]) AND con.contype = 'c' AND con.convalidated
			  AND t.relkind IN ('r', 'm')`, risk.checkOIDs())
		if err != nil {
			return fmt.Errorf("list check constraints: %w", err)
		}
		var t task
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.schema, &t.table, &t.name, &t.bytes, &t.expr}, func() error {
			if !opts.Filter.tableOK(t.schema, t.table) {
				return nil
			}
			t.kind = taskConstraint
			p.tasks = append(p.tasks, t)
			rep.Checked.CheckConstraints++
			return nil
		})
		if err != nil {
			return fmt.Errorf("list check constraints: %w", err)
		}
	}
	return nil
}

// scanViolations counts the rows of t's relation that do not satisfy t.expr,
// reading the heap (index scans off: a corrupt index would hide rows).
func scanViolations(ctx context.Context, conn *pgx.Conn, t task) (int64, error) {
	// A partition constraint must be true; a CHECK constraint passes when
	// true or null.
	cond := fmt.Sprintf("(%s) IS NOT TRUE", t.expr)
	rel := QuoteIdent(t.schema, t.name)
	if t.kind == taskConstraint {
		cond = fmt.Sprintf("(%s) IS FALSE", t.expr)
		rel = QuoteIdent(t.schema, t.table)
	}
	var n int64
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
			SET LOCAL enable_indexonlyscan = off; SET LOCAL constraint_exclusion = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM ONLY %s WHERE %s`, rel, cond)).Scan(&n)
	})
	return n, err
}

func violationFinding(db string, t task, n int64) Finding {
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
