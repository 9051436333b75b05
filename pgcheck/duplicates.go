package pgcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// UniqueIndex is a unique B-tree index, or the index behind a UNIQUE or
// PRIMARY KEY constraint, described well enough to search its table for rows
// that violate it without using the index itself.
type UniqueIndex struct {
	OID    uint32 `json:"oid"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Name   string `json:"index"`
	// Constraint is the UNIQUE or PRIMARY KEY constraint the index backs.
	Constraint string `json:"constraint,omitempty"`
	// Keys are the key columns or expressions, each with the index's
	// collation spelled out (equality under a nondeterministic collation is
	// not byte equality).
	Keys []string `json:"keys"`
	// Predicate is a partial index's WHERE clause.
	Predicate string `json:"predicate,omitempty"`
	// NullsNotDistinct is set for UNIQUE NULLS NOT DISTINCT (PostgreSQL 15+):
	// rows whose keys are NULL conflict too.
	NullsNotDistinct bool `json:"nulls_not_distinct,omitempty"`
	// RowID names the table's primary-key columns, which identify a row in
	// reports; without a primary key rows are identified by ctid.
	RowID []string `json:"row_id,omitempty"`

	tableOID    uint32
	partitioned bool
}

// QualifiedName is the schema-qualified, quoted index name.
func (u *UniqueIndex) QualifiedName() string { return QuoteIdent(u.Schema, u.Name) }

// QualifiedTable is the schema-qualified, quoted table name.
func (u *UniqueIndex) QualifiedTable() string { return QuoteIdent(u.Schema, u.Table) }

// DuplicateRow identifies one row of a duplicate group.
type DuplicateRow struct {
	// Table is the relation holding the row: a partition when the index is
	// on a partitioned table.
	Table string `json:"table"`
	// CTID is the row's physical address at the time of the scan.
	CTID string `json:"ctid"`
	// ID holds the row's primary-key values by column name, when the table
	// has a primary key.
	ID map[string]any `json:"id,omitempty"`
}

// DuplicateGroup is a key stored more than once under a unique index.
type DuplicateGroup struct {
	// Key holds the key's values, in index column order.
	Key  []any          `json:"key"`
	Rows []DuplicateRow `json:"rows"`
}

// IndexDuplicates is the result of searching one unique index's table.
type IndexDuplicates struct {
	Index UniqueIndex `json:"index"`
	// Groups counts every duplicated key found, even beyond the report limit.
	Groups int64 `json:"groups"`
	// ExcessRows counts rows beyond the first of each group: the rows that
	// would have to go for the index to be rebuilt.
	ExcessRows int64 `json:"excess_rows"`
	// Examples lists up to DuplicatesOptions.MaxGroups groups, largest first.
	Examples []DuplicateGroup `json:"examples"`
}

// DatabaseDuplicates lists, per unique index searched in one database, the
// key groups that violate it.
type DatabaseDuplicates struct {
	Database string            `json:"database"`
	Searched int               `json:"indexes_searched"`
	Indexes  []IndexDuplicates `json:"indexes"`
}

// Findings renders the report as one duplicate_key finding per violated
// index.
func (r *DatabaseDuplicates) Findings() []Finding {
	var out []Finding
	for _, d := range r.Indexes {
		if d.Groups == 0 {
			continue
		}
		out = append(out, Finding{
			Kind:     KindDuplicateKey,
			Database: r.Database,
			Schema:   d.Index.Schema,
			Table:    d.Index.Table,
			Object:   d.Index.Name,
			Detail: fmt.Sprintf("%d key(s) stored more than once, %d row(s) in excess; REINDEX of %s fails until they are resolved",
				d.Groups, d.ExcessRows, d.Index.Name),
			Rows: d.ExcessRows,
		})
	}
	return out
}

// Violated returns the indexes with at least one duplicate group.
func (r *DatabaseDuplicates) Violated() []IndexDuplicates {
	var out []IndexDuplicates
	for _, d := range r.Indexes {
		if d.Groups > 0 {
			out = append(out, d)
		}
	}
	return out
}

// DuplicatesOptions scopes a duplicate search.
type DuplicatesOptions struct {
	// AllDatabases searches every database the role may connect to.
	AllDatabases bool
	// Indexes names the unique indexes or constraints to search, optionally
	// schema-qualified. Empty means every unique index the inventory finds
	// at risk (its keys depend on a collation whose order can change).
	Indexes []string
	// MaxGroups bounds the example groups kept per index (default 100).
	MaxGroups int
	// Progress, if set, is called before each index is searched (Current
	// the index, Done those searched before) and once at the end (Current
	// empty).
	Progress func(Progress)
}

// DuplicatesReport is the result of Duplicates. Its JSON form is one
// database's DatabaseDuplicates with its findings, or with AllDatabases the
// list of them, every finding and the databases not searched
// (docs/pg-check.md).
type DuplicatesReport struct {
	// AllDatabases selects the JSON form.
	AllDatabases bool
	Databases    []*DatabaseDuplicates
	NotChecked   []NotChecked
	Duration     time.Duration
}

// Findings returns one duplicate_key finding per violated index of every
// database.
func (r *DuplicatesReport) Findings() []Finding {
	findings := []Finding{}
	for _, d := range r.Databases {
		findings = append(findings, d.Findings()...)
	}
	return findings
}

// Violated reports whether any database has a violated index.
func (r *DuplicatesReport) Violated() bool {
	for _, d := range r.Databases {
		if len(d.Violated()) > 0 {
			return true
		}
	}
	return false
}

// MarshalJSON renders the report's documented JSON form.
func (r *DuplicatesReport) MarshalJSON() ([]byte, error) {
	type withFindings struct {
		*DatabaseDuplicates
		Findings []Finding `json:"findings"`
	}
	if !r.AllDatabases && len(r.Databases) == 1 {
		return marshalReport(withFindings{r.Databases[0], r.Findings()}, r.Duration)
	}
	dbs := []withFindings{}
	for _, d := range r.Databases {
		dbs = append(dbs, withFindings{d, append([]Finding{}, d.Findings()...)})
	}
	return marshalReport(struct {
		Databases  []withFindings `json:"databases"`
		Findings   []Finding      `json:"findings"`
		NotChecked []NotChecked   `json:"not_checked"`
	}{dbs, r.Findings(), r.NotChecked}, r.Duration)
}

// Duplicates searches unique indexes for keys stored more than once.
// Rows are read with index scans disabled, in a read-only transaction: a
// corrupt index answers a GROUP BY with no duplicates at all. Partial-index
// predicates are honoured, and rows with a NULL key only conflict under
// NULLS NOT DISTINCT. Indexes on partitions are searched through their
// partitioned table, which also catches a row duplicated across partitions
// because it sits outside its partition's bounds.
func Duplicates(ctx context.Context, t *Target, opts DuplicatesOptions) (*DuplicatesReport, error) {
	start := time.Now()
	rep := &DuplicatesReport{AllDatabases: opts.AllDatabases}
	var err error
	rep.Databases, rep.NotChecked, err = perDatabase(ctx, t, opts.AllDatabases, func(conn *pgx.Conn) (*DatabaseDuplicates, error) {
		return findDuplicates(ctx, conn, opts)
	})
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func findDuplicates(ctx context.Context, conn *pgx.Conn, opts DuplicatesOptions) (*DatabaseDuplicates, error) {
	if opts.MaxGroups <= 0 {
		opts.MaxGroups = 100
	}
	indexes, err := resolveUniqueIndexes(ctx, conn, opts.Indexes)
	if err != nil {
		return nil, err
	}
	rep := &DatabaseDuplicates{Database: conn.Config().Database, Searched: len(indexes)}
	for i, idx := range indexes {
		if opts.Progress != nil {
			opts.Progress(Progress{Database: rep.Database, Done: i, Total: len(indexes), Current: idx.QualifiedName()})
		}
		d, err := searchDuplicates(ctx, conn, idx, opts.MaxGroups)
		if err != nil {
			return nil, err
		}
		rep.Indexes = append(rep.Indexes, *d)
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Database: rep.Database, Done: len(indexes), Total: len(indexes)})
	}
	return rep, nil
}

// resolveUniqueIndexes loads the named unique indexes (or constraints), or
// every one the inventory finds at risk when names is empty, normalised to the root
// of any partitioned index and without repeats.
func resolveUniqueIndexes(ctx context.Context, conn *pgx.Conn, names []string) ([]UniqueIndex, error) {
	var oids []uint32
	if len(names) == 0 {
		inv, err := ReadInventory(ctx, conn)
		if err != nil {
			return nil, err
		}
		oids = atRiskUniqueIndexOIDs(inv)
	}
	for _, name := range names {
		oid, err := lookupIndex(ctx, conn, name)
		if err != nil {
			return nil, err
		}
		oids = append(oids, oid)
	}
	return loadUniqueIndexes(ctx, conn, oids)
}

// lookupIndex resolves an index or constraint name (optionally
// schema-qualified, as written in SQL) to the index's OID.
func lookupIndex(ctx context.Context, conn *pgx.Conn, name string) (uint32, error) {
	var oid *uint32
	err := conn.QueryRow(ctx, `
		SELECT coalesce(
		  (SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind IN ('i', 'I')),
		  (SELECT con.conindid FROM pg_constraint con
		    JOIN pg_namespace n ON n.oid = con.connamespace
		   WHERE con.contype IN ('u', 'p', 'x') AND con.conindid <> 0
		     AND (quote_ident(n.nspname) || '.' || quote_ident(con.conname) = $1
		          OR (con.conname = $1 AND n.nspname = ANY (current_schemas(false))))
		   ORDER BY array_position(current_schemas(false), n.nspname::text) LIMIT 1))`, name).Scan(&oid)
	if err != nil {
		return 0, fmt.Errorf("look up index %q: %w", name, err)
	}
	if oid == nil {
		return 0, fmt.Errorf("no index or unique constraint named %q", name)
	}
	return *oid, nil
}

// atRiskUniqueIndexOIDs lists, from the inventory, the valid unique B-tree
// indexes (and the indexes of UNIQUE and PRIMARY KEY constraints) on user
// tables whose keys depend on a collation that can change.
func atRiskUniqueIndexOIDs(inv *DatabaseInventory) []uint32 {
	var oids []uint32
	for _, o := range inv.Objects {
		if !o.AtRisk || !o.Unique || !o.Valid || o.AccessMethod != "btree" || systemSchema(o.Schema) {
			continue
		}
		switch o.Type {
		case ObjectIndex, ObjectUniqueConstraint, ObjectPrimaryKey, ObjectMatviewIndex:
			oids = append(oids, o.OID)
		}
	}
	return oids
}

// systemSchema reports whether schema holds system catalogs (or ringfence's
// own tables), which repair leaves alone.
func systemSchema(schema string) bool {
	return schema == "pg_catalog" || schema == "information_schema" || schema == repairSchema
}

// loadUniqueIndexes describes the given indexes, each replaced by the root
// of its partitioned index, in the order given, without repeats. Indexes
// that are not unique B-trees are an error.
func loadUniqueIndexes(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]UniqueIndex, error) {
	if len(oids) == 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `
		WITH want AS (
		  SELECT coalesce(pg_partition_root(w.oid)::oid, w.oid) AS oid, min(w.ord) AS ord
		    FROM unnest($1::oid[]) WITH ORDINALITY AS w(oid, ord)
		   GROUP BY 1)
		SELECT i.indexrelid, n.nspname, t.relname, ic.relname,
		       coalesce((SELECT con.conname FROM pg_constraint con
		                  WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
		                    AND con.contype IN ('u', 'p')), ''),
		       array(SELECT '(' || pg_get_indexdef(i.indexrelid, k, true) || ')' ||
		                    coalesce(' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname), '')
		               FROM generate_series(1, i.indnkeyatts) AS k
		               LEFT JOIN pg_collation co ON co.oid = i.indcollation[k - 1]
		               LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		              ORDER BY k),
		       coalesce(pg_get_expr(i.indpred, i.indrelid, true), ''),
		       coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::bool, false),
		       array(SELECT a.attname::text
		               FROM pg_index p
		               CROSS JOIN unnest(p.indkey::int2[]) WITH ORDINALITY AS u(attnum, ord)
		               JOIN pg_attribute a ON a.attrelid = p.indrelid AND a.attnum = u.attnum
		              WHERE p.indrelid = i.indrelid AND p.indisprimary
		              ORDER BY u.ord),
		       i.indrelid, t.relkind = 'p', i.indisunique, am.amname
		  FROM want
		  JOIN pg_index i ON i.indexrelid = want.oid
		  JOIN pg_class ic ON ic.oid = i.indexrelid
		  JOIN pg_am am ON am.oid = ic.relam
		  JOIN pg_class t ON t.oid = i.indrelid
		  JOIN pg_namespace n ON n.oid = t.relnamespace
		 ORDER BY want.ord`, oids)
	if err != nil {
		return nil, fmt.Errorf("describe unique indexes: %w", err)
	}
	defer rows.Close()
	var out []UniqueIndex
	for rows.Next() {
		var u UniqueIndex
		var unique bool
		var am string
		if err := rows.Scan(&u.OID, &u.Schema, &u.Table, &u.Name, &u.Constraint, &u.Keys, &u.Predicate,
			&u.NullsNotDistinct, &u.RowID, &u.tableOID, &u.partitioned, &unique, &am); err != nil {
			return nil, fmt.Errorf("describe unique indexes: %w", err)
		}
		if !unique || am != "btree" {
			return nil, fmt.Errorf("%s is not a unique B-tree index (exclusion constraints cannot be searched for duplicates)", u.QualifiedName())
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe unique indexes: %w", err)
	}
	return out, nil
}

// keyColumns returns the select list that projects idx's keys as rf_k1..n.
func (u *UniqueIndex) keyColumns() (selectList, names []string) {
	for i, k := range u.Keys {
		name := fmt.Sprintf("rf_k%d", i+1)
		selectList = append(selectList, k+" AS "+name)
		names = append(names, name)
	}
	return selectList, names
}

// conflictFilter is the WHERE clause, over the projected key names, that
// keeps the rows able to conflict: any NULL key makes a row distinct unless
// the index says NULLS NOT DISTINCT.
func (u *UniqueIndex) conflictFilter(names []string) string {
	if u.NullsNotDistinct {
		return "true"
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " IS NOT NULL"
	}
	return strings.Join(parts, " AND ")
}

// from is the FROM target that reads exactly the rows the index covers:
// ONLY for a plain table (inheritance children have their own indexes), all
// partitions for a partitioned one.
func (u *UniqueIndex) from() string {
	if u.partitioned {
		return u.QualifiedTable() + " AS t"
	}
	return "ONLY " + u.QualifiedTable() + " AS t"
}

func (u *UniqueIndex) where() string {
	if u.Predicate == "" {
		return "true"
	}
	return "(" + u.Predicate + ")"
}

// rowIDColumns projects the primary-key columns as rf_id1..n.
func (u *UniqueIndex) rowIDColumns() string {
	var b strings.Builder
	for i, c := range u.RowID {
		fmt.Fprintf(&b, ", t.%s AS rf_id%d", QuoteIdent(c), i+1)
	}
	return b.String()
}

// rowIDObject builds the jsonb object of the primary-key values projected
// by rowIDColumns.
func (u *UniqueIndex) rowIDObject() string {
	if len(u.RowID) == 0 {
		return "NULL::jsonb"
	}
	parts := make([]string, 0, 2*len(u.RowID))
	for i, c := range u.RowID {
		parts = append(parts, quoteLiteral(c), fmt.Sprintf("rf_id%d", i+1))
	}
	return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
}

// groupsSQL is the duplicate search for u: key groups with more than one
// row, largest first, with each row's relation OID, address and primary
// key. A window count marks the rows of duplicated keys first, so that the
// per-row JSON is built for those rows only, not for the whole table.
func (u *UniqueIndex) groupsSQL() string {
	sel, names := u.keyColumns()
	keys := strings.Join(names, ", ")
	return `SELECT jsonb_build_array(` + keys + `) AS key, count(*) AS n,
	       jsonb_agg(jsonb_build_object('table', rf_table::oid::bigint, 'ctid', rf_ctid::text, 'id', ` + u.rowIDObject() + `)
	                 ORDER BY rf_table, rf_ctid) AS rows,
	       count(*) OVER () AS groups, sum(count(*) - 1) OVER () AS excess
	  FROM (SELECT *, count(*) OVER (PARTITION BY ` + keys + `) AS rf_n
	          FROM (SELECT ` + strings.Join(sel, ", ") + `, t.tableoid AS rf_table, t.ctid AS rf_ctid` + u.rowIDColumns() + `
	                  FROM ` + u.from() + `
	                 WHERE ` + u.where() + `) AS s
	         WHERE ` + u.conflictFilter(names) + `) AS w
	 WHERE rf_n > 1
	 GROUP BY ` + keys + `
	 ORDER BY n DESC, key
	 LIMIT $1`
}

// seqScanSettings make a transaction read rows without any index, and
// without skipping a table or partition because its constraint or bounds
// "prove" it holds no matching row: after a collation change that proof is
// exactly what is wrong (a misplaced row sits in the partition that pruning
// skips).
// enable_seqscan is turned on explicitly: with it off (in the database's
// or role's settings) and every index path disabled, the planner falls back
// on the cheapest disabled path, which is an index scan.
var seqScanSettings = []string{
	"SET LOCAL enable_seqscan = on",
	"SET LOCAL enable_indexscan = off",
	"SET LOCAL enable_bitmapscan = off",
	"SET LOCAL enable_indexonlyscan = off",
	"SET LOCAL constraint_exclusion = off",
	"SET LOCAL enable_partition_pruning = off",
}

// SeqScanSettings returns the SET LOCAL statements that make a transaction
// read rows the way the repair does: no index, no constraint exclusion, no
// partition pruning. Statements printed for an operator to run by hand start
// with them.
func SeqScanSettings() []string { return slices.Clone(seqScanSettings) }

// seqScanOnly applies seqScanSettings to the current transaction.
func seqScanOnly(ctx context.Context, tx pgx.Tx) error {
	for _, s := range seqScanSettings {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("disable index scans: %w", err)
		}
	}
	return nil
}

func searchDuplicates(ctx context.Context, conn *pgx.Conn, idx UniqueIndex, maxGroups int) (*IndexDuplicates, error) {
	d := &IndexDuplicates{Index: idx, Examples: []DuplicateGroup{}}
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := seqScanOnly(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, idx.groupsSQL(), maxGroups)
		if err != nil {
			return err
		}
		defer rows.Close()
		type rawRow struct {
			Table uint32         `json:"table"`
			CTID  string         `json:"ctid"`
			ID    map[string]any `json:"id"`
		}
		var raw [][]rawRow
		for rows.Next() {
			var key, rowsJSON []byte
			var n int64
			if err := rows.Scan(&key, &n, &rowsJSON, &d.Groups, &d.ExcessRows); err != nil {
				return err
			}
			var g DuplicateGroup
			if err := json.Unmarshal(key, &g.Key); err != nil {
				return fmt.Errorf("decode key: %w", err)
			}
			var rr []rawRow
			if err := json.Unmarshal(rowsJSON, &rr); err != nil {
				return fmt.Errorf("decode rows: %w", err)
			}
			raw = append(raw, rr)
			d.Examples = append(d.Examples, g)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(raw) == 0 {
			return nil
		}
		var oids []uint32
		for _, rr := range raw {
			for _, r := range rr {
				oids = append(oids, r.Table)
			}
		}
		names, err := relationNames(ctx, tx, oids)
		if err != nil {
			return err
		}
		for i, rr := range raw {
			for _, r := range rr {
				d.Examples[i].Rows = append(d.Examples[i].Rows, DuplicateRow{Table: names[r.Table], CTID: r.CTID, ID: r.ID})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search %s for duplicates: %w", idx.QualifiedName(), err)
	}
	return d, nil
}

// relationNames maps relation OIDs to their quoted, qualified names.
func relationNames(ctx context.Context, tx pgx.Tx, oids []uint32) (map[uint32]string, error) {
	rows, err := tx.Query(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[])`, oids)
	if err != nil {
		return nil, fmt.Errorf("read table names: %w", err)
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var oid uint32
		var schema, name string
		if err := rows.Scan(&oid, &schema, &name); err != nil {
			return nil, fmt.Errorf("read table names: %w", err)
		}
		out[oid] = QuoteIdent(schema, name)
	}
	return out, rows.Err()
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
