// The SQL of a repair, built in one place: what the plan shows the
// operator and what an applied repair journals and runs are the same
// statements. Builders take values read from the catalogs; identifiers are
// quoted here, expressions arrive deparsed by the server.

package pgcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// dropIndexSQL drops a leftover index of an interrupted REINDEX
// CONCURRENTLY without blocking writes.
func dropIndexSQL(schema, name string) string {
	return "DROP INDEX CONCURRENTLY IF EXISTS " + QuoteIdent(schema, name)
}

// reindexSQL rebuilds the index qualified, concurrently when it can be.
func reindexSQL(qualified string, concurrent bool) string {
	if concurrent {
		return "REINDEX INDEX CONCURRENTLY " + qualified
	}
	return "REINDEX INDEX " + qualified
}

// violatingRowsSQL selects list (columns, or count(*)) from the rows of
// table itself (ONLY) for which the boolean expression cond is false: the
// rows outside a partition's bounds, or violating a CHECK constraint.
func violatingRowsSQL(list, table, cond string) string {
	return fmt.Sprintf("SELECT %s FROM ONLY %s AS t WHERE (%s) IS FALSE", list, table, cond)
}

// copyMisplacedSQL copies the rows listSQL lists into a table beside the
// partition schema.partition, for an operator who moves them by hand.
func copyMisplacedSQL(schema, partition, listSQL string) string {
	return fmt.Sprintf("CREATE TABLE %s AS %s", QuoteIdent(schema, partition+"_misplaced"), listSQL)
}

// rerouteSQL moves a partition's misplaced rows to the partition their key belongs
// in now, copying each into the quarantine on the way when runID is set.
// The UPDATE through the partitioned table rewrites the partition key to
// itself: the new row fails the partition's constraint, so PostgreSQL moves
// it, and since no referenced key changes, foreign keys referencing it fire
// no action (PostgreSQL 15+ treats a cross-partition update as an update).
//
// root is the partitioned table, set the SET list that rewrites its key to
// itself, leaf the quoted partition and cond its partition constraint.
func rerouteSQL(root, set, leaf, cond, runID string) string {
	move := fmt.Sprintf("UPDATE %s AS t SET %s WHERE t.tableoid = %s::regclass AND (%s) IS FALSE",
		root, set, quoteLiteral(leaf), cond)
	if runID == "" {
		return move
	}
	return fmt.Sprintf("WITH moved AS (%s RETURNING t.*) "+
		"INSERT INTO %s.quarantine (run_id, reason, action, source_table, restore_table, object, row_data) "+
		"SELECT %s::uuid, %s, %s, %s, %s, %s, to_jsonb(moved) FROM moved",
		move, repairSchema, quoteLiteral(runID), quoteLiteral(string(KindPartitionBoundViolation)), quoteLiteral(QuarantineMoved),
		quoteLiteral(leaf), quoteLiteral(root), quoteLiteral(leaf))
}

// refreshStatements returns the ALTER ... REFRESH VERSION statements for
// the collations whose recorded version differs from the library's.
func refreshStatements(inv *DatabaseInventory) []string {
	out := []string{}
	for _, c := range inv.Collations {
		if c.RecordedVersion == "" || c.ActualVersion == "" || c.RecordedVersion == c.ActualVersion {
			continue
		}
		if c.IsDefault {
			out = append(out, "ALTER DATABASE "+QuoteIdent(inv.Database)+" REFRESH COLLATION VERSION")
			continue
		}
		out = append(out, "ALTER COLLATION "+c.Ident()+" REFRESH VERSION")
	}
	return out
}

// ambiguityHint tells the operator what to do about a group without a
// single row to keep.
const ambiguityHint = "the best value is NULL or shared by two rows; delete or update rows of those keys by hand, choose another column, or keep-one (keeps the row with the lowest ctid)"

// victimLeaf is the rows to remove from one relation (a partition, when
// the index is partitioned).
type victimLeaf struct {
	name  string
	ctids []pgtype.TID
	keys  []string
	// ambiguous counts the groups (of the whole index) whose row to keep
	// the rule cannot tell.
	ambiguous int64
}

// pickVictims runs victimsSQL.
func pickVictims(ctx context.Context, tx pgx.Tx, pick string) ([]victimLeaf, error) {
	rows, err := tx.Query(ctx, pick)
	if err != nil {
		return nil, fmt.Errorf("pick rows to remove: %w", err)
	}
	leaves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (victimLeaf, error) {
		var l victimLeaf
		var schema, rel *string
		err := r.Scan(&schema, &rel, &l.ctids, &l.keys, &l.ambiguous)
		if schema != nil && rel != nil {
			l.name = QuoteIdent(*schema, *rel)
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("pick rows to remove: %w", err)
	}
	return leaves, nil
}

// victimsSQL selects, per relation (partition), the ctids and keys of the
// rows rule removes from idx's duplicate groups: all but the one to keep.
// Rows whose column is NULL never win over a row with a value. Every row
// carries the count of groups whose winner is ambiguous (its value is NULL
// or equals the runner-up's); that count comes on a row of its own, with
// NULL names, when there is nothing to remove.
func victimsSQL(idx UniqueIndex, rule DedupeRule) string {
	sel, names := idx.keyColumns()
	keys := strings.Join(names, ", ")
	order := "rf_ord ASC NULLS LAST"
	if rule.KeepNewest {
		order = "rf_ord DESC NULLS LAST"
	}
	ord, ambiguous := "t."+QuoteIdent(rule.Column), "(rf_ord IS NULL OR rf_ord = rf_next)"
	if rule.KeepOne {
		// Only the row's place decides: every group has one row to keep.
		ord, ambiguous = "NULL::int", "false"
	}
	return `WITH r AS (
	  SELECT rf_table, rf_ctid, jsonb_build_array(` + keys + `)::text AS rf_key, rf_ord,
	         row_number() OVER w AS rf_rank, lead(rf_ord) OVER w AS rf_next,
	         count(*) OVER (PARTITION BY ` + keys + `) AS rf_n
	    FROM (SELECT ` + strings.Join(sel, ", ") + `, t.tableoid AS rf_table, t.ctid AS rf_ctid, ` + ord + ` AS rf_ord
	            FROM ` + idx.from() + `
	           WHERE ` + idx.where() + `) AS s
	   WHERE ` + idx.conflictFilter(names) + `
	  WINDOW w AS (PARTITION BY ` + keys + ` ORDER BY ` + order + `, rf_table, rf_ctid)),
	ambiguous AS (
	  SELECT count(*) AS n FROM r WHERE rf_rank = 1 AND rf_n > 1 AND ` + ambiguous + `),
	victims AS (
	  SELECT rf_table, array_agg(rf_ctid ORDER BY rf_ctid) AS ctids, array_agg(rf_key ORDER BY rf_ctid) AS keys
	    FROM r WHERE rf_n > 1 AND rf_rank > 1 GROUP BY rf_table)
	SELECT n.nspname::text, c.relname::text, v.ctids, v.keys, a.n
	  FROM ambiguous a
	  LEFT JOIN victims v ON true
	  LEFT JOIN pg_class c ON c.oid = v.rf_table
	  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
	 ORDER BY 1, 2`
}

// deleteDuplicatesSQL deletes rows of one relation (a %s placeholder for
// its quoted, qualified name) by ctid ($1), each only if it still holds
// the key it was picked for ($2), and copies exactly the deleted rows into
// the quarantine ($3..$8: run, reason, action, source, restore table,
// object).
func deleteDuplicatesSQL(idx UniqueIndex) string {
	return `WITH deleted AS (DELETE FROM ONLY %s AS t USING unnest($1::tid[], $2::text[]) AS v(ctid, key)
	  WHERE t.ctid = v.ctid AND jsonb_build_array(` + strings.Join(idx.Keys, ", ") + `) = v.key::jsonb
	  RETURNING v.key::jsonb AS key, to_jsonb(t) AS row_data)
	INSERT INTO ` + repairSchema + `.quarantine (run_id, reason, action, source_table, restore_table, object, key, row_data)
	SELECT $3::uuid, $4, $5, $6, $7, $8, key, row_data FROM deleted`
}
