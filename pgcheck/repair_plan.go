package pgcheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RepairOptions chooses what a repair may do. The zero value plans a repair
// of every object at risk and, applied, stops on duplicates and leaves
// misplaced partition rows and exclusion constraints to the operator.
type RepairOptions struct {
	// Indexes restricts rebuilds and the duplicate search to these indexes
	// or constraints (partitioned indexes stand for their partitions').
	Indexes []string
	// Dedupe holds the rules that resolve duplicates. Without a rule for a
	// table, duplicates in it stop the repair before anything changes.
	Dedupe []DedupeRule
	// ReroutePartitions moves rows outside their partition's bounds to the
	// partition their key belongs in now (a copy goes to the quarantine
	// first). Otherwise they are reported with the SQL to do it.
	ReroutePartitions bool
	// AllowTriggers lets the dedupe and the re-route fire the user triggers
	// and rules of the tables they change. Without it such tables are
	// reported and left alone: a trigger could change or log other rows
	// that the quarantine never sees.
	AllowTriggers bool
	// Blocking allows a plain REINDEX, which blocks writes to the table for
	// its duration, where REINDEX CONCURRENTLY is impossible: exclusion
	// constraints.
	Blocking bool
	// Attempts bounds the tries of a step that fails on a lock timeout,
	// deadlock or serialization failure (default 5).
	Attempts int
	// RetryWait is the wait before the second try; it doubles up to a
	// minute (default 1s).
	RetryWait time.Duration
	// RebuildTimeout bounds each REINDEX; zero means none (lock waits stay
	// bounded by the session's lock_timeout).
	RebuildTimeout time.Duration
	// RebuildLockTimeout is the lock_timeout of a REINDEX CONCURRENTLY
	// (default 5 minutes). Besides the lock on the table, which blocks no
	// reads or writes while it is awaited, it bounds the rebuild's waits
	// for older transactions, which come after the index has been built:
	// the session's short lock_timeout would throw that build away. A
	// rebuild is not started, but retried later, while a transaction that
	// holds a snapshot or a transaction ID has been open for longer than
	// this.
	RebuildLockTimeout time.Duration
	// RequireFindings makes an apply change nothing unless something is
	// found wrong: duplicates, misplaced rows, violated constraints,
	// leftovers, stale versions, or (checked before deciding) amcheck
	// findings or changed collation fingerprints on the indexes at risk.
	// Without it every index at risk is rebuilt as a precaution. Ignored
	// with Indexes (naming indexes asks for their rebuild).
	RequireFindings bool
	// Apply carries the plan out; without it Repair only plans (a dry run
	// in read-only sessions).
	Apply bool
	// Progress, if set, is told of every action of an applied repair as it
	// starts and ends (Progress.Event).
	Progress func(Progress)

	// afterPick, if set, runs inside a dedupe between picking the rows to
	// remove and deleting them (tests race other sessions there).
	afterPick func()
}

// InvalidIndex is an index with indisvalid = false, or a valid copy left
// by a REINDEX CONCURRENTLY interrupted before it swapped the indexes.
type InvalidIndex struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	// Leftover marks a REINDEX CONCURRENTLY leftover (*_ccnew, *_ccold),
	// which the repair drops; other invalid indexes (a failed CREATE INDEX
	// CONCURRENTLY) are the operator's to rebuild or drop.
	Leftover bool `json:"leftover"`
	// SQL drops it.
	SQL string `json:"sql"`

	oid uint32
}

// DuplicatePlan is a unique index violated by stored rows, and how the
// repair resolves it.
type DuplicatePlan struct {
	IndexDuplicates
	// Rule resolves the duplicates; nil means they block the repair.
	Rule *DedupeRule `json:"rule,omitempty"`
	// Problem says why Rule cannot be applied: a missing column, foreign
	// keys with ON DELETE actions referencing the table, user triggers or
	// rules (without AllowTriggers), groups with no single row to keep.
	Problem string `json:"problem,omitempty"`
}

// Resolvable reports whether the repair may resolve the duplicates itself.
func (d DuplicatePlan) Resolvable() bool { return d.Rule != nil && d.Problem == "" }

// PlannedRebuild is one index the repair rebuilds.
type PlannedRebuild struct {
	OID    uint32 `json:"oid"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	// Type is the inventory object type (index, primary_key, ...).
	Type  string `json:"type"`
	Bytes int64  `json:"bytes"`
	// Concurrent is false where only a plain REINDEX works (exclusion
	// constraints); such a rebuild needs RepairOptions.Blocking.
	Concurrent bool `json:"concurrent"`
	// BlockedBy names the duplicates that make the rebuild fail until
	// they are resolved.
	BlockedBy string `json:"blocked_by,omitempty"`
	// Done marks an index already rebuilt by the interrupted run being
	// resumed.
	Done bool   `json:"done,omitempty"`
	SQL  string `json:"sql"`

	root uint32
}

// QualifiedName is the index's quoted, schema-qualified name.
func (r PlannedRebuild) QualifiedName() string { return QuoteIdent(r.Schema, r.Name) }

// PartitionViolation is a partition holding rows outside its own bounds:
// after a collation change the rows' keys sort elsewhere, so queries that
// prune partitions no longer find them.
type PartitionViolation struct {
	Schema    string `json:"schema"`
	Partition string `json:"partition"`
	// Root is the partitioned table that routes rows to partitions.
	Root string `json:"root"`
	Rows int64  `json:"rows"`
	// Constraint is the partition's implicit constraint.
	Constraint string `json:"constraint"`
	// ListSQL selects the misplaced rows.
	ListSQL string `json:"list_sql"`
	// CopySQL copies them, as they are, into a new table next to the
	// partition: the by-hand counterpart of the quarantine copy the repair
	// makes. Run it in the same transaction as RerouteSQL, before it.
	CopySQL string `json:"copy_sql"`
	// RerouteSQL moves them, in one statement, to the partition their key
	// belongs in now: an UPDATE through the partitioned table that sets the
	// partition key to itself, which PostgreSQL carries out as a row
	// movement. Run it inside a transaction with seqScanSettings.
	RerouteSQL string `json:"reroute_sql"`
	// Problem says why the repair does not move the rows itself (triggers
	// or rules that would fire, foreign-key actions on PostgreSQL < 15).
	Problem string `json:"problem,omitempty"`

	set string // the SET list that rewrites the partition key unchanged
}

// reroute is the statement that moves v's rows to the partition their key
// belongs in now, copying them into the quarantine of run runID (none when
// empty).
func (v PartitionViolation) reroute(runID string) string {
	return rerouteSQL(v.Root, v.set, QuoteIdent(v.Schema, v.Partition), v.Constraint, runID)
}

// CheckViolation is a CHECK constraint that stored rows violate under the
// current collation. The repair never changes such rows: which value is
// right is the operator's call.
type CheckViolation struct {
	Schema     string `json:"schema"`
	Table      string `json:"table"`
	Constraint string `json:"constraint"`
	Expression string `json:"expression"`
	Rows       int64  `json:"rows"`
	// ListSQL selects the violating rows.
	ListSQL string `json:"list_sql"`
}

// RepairPlan is what a repair would do to one database, in order.
type RepairPlan struct {
	Database string `json:"database"`
	// ResumeRun is the interrupted run an apply would continue.
	ResumeRun string `json:"resume_run,omitempty"`
	// Invalid lists invalid indexes; leftovers are dropped first.
	Invalid []InvalidIndex `json:"invalid_indexes"`
	// Duplicates lists unique indexes violated by stored rows.
	Duplicates []DuplicatePlan `json:"duplicates"`
	// Partitions lists partitions holding rows outside their bounds.
	Partitions []PartitionViolation `json:"partition_violations"`
	// Checks lists CHECK constraints violated by stored rows.
	Checks []CheckViolation `json:"check_violations"`
	// Rebuilds lists the indexes to rebuild, in order: unique ones first
	// (they restore enforcement), smallest first within each group.
	Rebuilds []PlannedRebuild `json:"rebuilds"`
	// Refresh holds the collation-version refreshes that run last, once
	// everything else succeeded. Empty when PostgreSQL's recorded versions
	// already match (the change was invisible to it).
	Refresh []string `json:"refresh"`
	// Baseline is set when the database has a recorded collation
	// fingerprint baseline: it is recorded again after the refresh, since
	// the rebuilt indexes follow the current order.
	Baseline bool `json:"rerecord_baseline"`
	// System lists at-risk objects in system catalogs, which the repair
	// does not touch (REINDEX SYSTEM is an operator's decision).
	System []ObjectRef `json:"system,omitempty"`
}

// Blockers returns why an apply would stop before changing anything:
// duplicates the options give no usable rule for.
func (p *RepairPlan) Blockers() []string {
	var out []string
	for _, d := range p.Duplicates {
		if d.Resolvable() {
			continue
		}
		why := fmt.Sprintf("no --dedupe rule for this table (--dedupe %s.%s=RULE, RULE one of keep-newest:COLUMN, keep-oldest:COLUMN, keep-one)", d.Index.Schema, d.Index.Table)
		if d.Problem != "" {
			why = d.Problem
		}
		out = append(out, fmt.Sprintf("%s: %d duplicated key(s), %d excess row(s): %s",
			d.Index.QualifiedName(), d.Groups, d.ExcessRows, why))
	}
	return out
}

// FoundProblems reports whether the plan found something broken or
// unfinished: invalid indexes, duplicates, misplaced rows, violated CHECK
// constraints, stale collation versions or an interrupted run. Rebuilding
// the indexes at risk alone is precaution, not a finding (amcheck and the
// fingerprint comparison, which the plan does not run, may still find
// them damaged).
func (p *RepairPlan) FoundProblems() bool {
	return len(p.Invalid) > 0 || len(p.Duplicates) > 0 || len(p.Partitions) > 0 || len(p.Checks) > 0 ||
		len(p.Refresh) > 0 || p.ResumeRun != ""
}

// empty reports whether the plan has nothing at all to do.
func (p *RepairPlan) empty() bool {
	leftovers := false
	for _, ii := range p.Invalid {
		leftovers = leftovers || ii.Leftover
	}
	return !leftovers && len(p.Duplicates) == 0 && len(p.Partitions) == 0 && len(p.Checks) == 0 &&
		len(p.Rebuilds) == 0 && len(p.Refresh) == 0 && p.ResumeRun == ""
}

// Decisions returns what an apply with opts would leave to the operator;
// while any remain the collation versions are not refreshed.
func (p *RepairPlan) Decisions(opts RepairOptions) []string {
	var out []string
	for _, v := range p.Partitions {
		switch {
		case !opts.ReroutePartitions:
			out = append(out, fmt.Sprintf("%s: %d row(s) outside the partition's bounds (re-route with --reroute-partitions, or run its reroute SQL)",
				QuoteIdent(v.Schema, v.Partition), v.Rows))
		case v.Problem != "":
			out = append(out, fmt.Sprintf("%s: %d row(s) outside the partition's bounds, not re-routed: %s",
				QuoteIdent(v.Schema, v.Partition), v.Rows, v.Problem))
		}
	}
	for _, c := range p.Checks {
		out = append(out, fmt.Sprintf("%s on %s: %d row(s) violate the CHECK constraint (fix the rows; repair does not choose values)",
			c.Constraint, QuoteIdent(c.Schema, c.Table), c.Rows))
	}
	if len(opts.Indexes) > 0 {
		out = append(out, "the repair is limited to --index: collation versions are refreshed only by a repair of every index at risk")
	}
	if !opts.Blocking {
		for _, r := range p.Rebuilds {
			if !r.Concurrent && !r.Done {
				out = append(out, fmt.Sprintf("%s: %s cannot be rebuilt concurrently (allow a blocking REINDEX with --blocking)",
					r.QualifiedName(), r.Type))
			}
		}
	}
	return out
}

// dryRunRepair computes the repair of srv's database without changing
// anything: it runs in read-only sessions, and reads rows with sequential
// scans (never through the indexes it suspects).
func dryRunRepair(ctx context.Context, srv *Target, opts RepairOptions) (*RepairPlan, error) {
	ro := srv.WithOptions(ConnOptions{ReadWrite: false})
	conn, err := ro.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return planRepair(ctx, conn, opts)
}

func planRepair(ctx context.Context, conn *pgx.Conn, opts RepairOptions) (*RepairPlan, error) {
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		return nil, err
	}
	p := &RepairPlan{Database: inv.Database, Invalid: []InvalidIndex{}, Duplicates: []DuplicatePlan{},
		Partitions: []PartitionViolation{}, Checks: []CheckViolation{}, Rebuilds: []PlannedRebuild{}, Refresh: []string{}}
	var done map[string]bool
	if p.ResumeRun, done, err = readJournal(ctx, conn); err != nil {
		return nil, err
	}
	if p.Invalid, err = invalidIndexes(ctx, conn); err != nil {
		return nil, err
	}
	leftovers := map[uint32]bool{}
	for _, ii := range p.Invalid {
		leftovers[ii.oid] = ii.Leftover
	}
	if err := p.planRebuilds(ctx, conn, inv, opts.Indexes, done, leftovers); err != nil {
		return nil, err
	}
	if err := p.planDuplicates(ctx, conn, opts); err != nil {
		return nil, err
	}
	if p.Partitions, err = partitionViolations(ctx, conn, inv, opts.AllowTriggers); err != nil {
		return nil, err
	}
	if p.Checks, err = checkViolations(ctx, conn, inv); err != nil {
		return nil, err
	}
	p.Refresh = refreshStatements(inv)
	if _, p.Baseline, err = LoadBaseline(ctx, conn); err != nil {
		return nil, err
	}
	return p, nil
}

// readJournal returns the latest unfinished repair run, if any, and the
// indexes it already rebuilt.
func readJournal(ctx context.Context, conn *pgx.Conn) (string, map[string]bool, error) {
	done := map[string]bool{}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('ringfence.repair_log') IS NOT NULL`).Scan(&exists); err != nil {
		return "", nil, fmt.Errorf("read repair journal: %w", err)
	}
	if !exists {
		return "", done, nil
	}
	var run string
	err := conn.QueryRow(ctx, `SELECT id::text FROM ringfence.repair_run WHERE finished_at IS NULL
		ORDER BY started_at DESC LIMIT 1`).Scan(&run)
	if err == pgx.ErrNoRows {
		return "", done, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read repair journal: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT DISTINCT target FROM ringfence.repair_log
		WHERE run_id = $1::uuid AND step = 'rebuild' AND status = 'done'`, run)
	if err != nil {
		return "", nil, fmt.Errorf("read repair journal: %w", err)
	}
	targets, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", nil, fmt.Errorf("read repair journal: %w", err)
	}
	for _, t := range targets {
		done[t] = true
	}
	return run, done, nil
}

// leftoverSQL is true for index i (pg_index) with relation c (pg_class)
// that a REINDEX CONCURRENTLY left behind: named *_ccnew / *_ccold, with a
// twin on the same table that has the same definition (columns, operator
// classes, collations, options, expressions, predicate), and backing no
// constraint. An invalid index without a twin is someone's failed CREATE
// INDEX CONCURRENTLY, whatever its name; a valid one with a twin is the
// copy of a REINDEX CONCURRENTLY interrupted before the swap.
const leftoverSQL = `(c.relname ~ '_cc(new|old)[0-9]*$'
	AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
	AND EXISTS (SELECT 1 FROM pg_index o
	             WHERE o.indrelid = i.indrelid AND o.indexrelid <> i.indexrelid
	               AND o.indkey::text = i.indkey::text AND o.indclass::text = i.indclass::text
	               AND o.indcollation::text = i.indcollation::text AND o.indoption::text = i.indoption::text
	               AND o.indisunique = i.indisunique
	               AND pg_get_expr(o.indexprs, o.indrelid) IS NOT DISTINCT FROM pg_get_expr(i.indexprs, i.indrelid)
	               AND pg_get_expr(o.indpred, o.indrelid) IS NOT DISTINCT FROM pg_get_expr(i.indpred, i.indrelid)))`

// invalidIndexes lists invalid indexes on user tables, and REINDEX
// CONCURRENTLY leftovers (see leftoverSQL), valid or not. Leftovers are
// marked for dropping unless an index build is running on the table right
// now (then the index may be that build's).
func invalidIndexes(ctx context.Context, conn *pgx.Conn) ([]InvalidIndex, error) {
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, t.relname, c.relname, i.indexrelid,
		       `+leftoverSQL+`
		         AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.relid = i.indrelid)
		  FROM pg_index i
		  JOIN pg_class c ON c.oid = i.indexrelid
		  JOIN pg_class t ON t.oid = i.indrelid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE (NOT i.indisvalid OR `+leftoverSQL+`)
		   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		 ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list invalid indexes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InvalidIndex, error) {
		var ii InvalidIndex
		err := r.Scan(&ii.Schema, &ii.Table, &ii.Name, &ii.oid, &ii.Leftover)
		ii.SQL = dropIndexSQL(ii.Schema, ii.Name)
		return ii, err
	})
	if err != nil {
		return nil, fmt.Errorf("list invalid indexes: %w", err)
	}
	return out, nil
}

// planRebuilds lists the indexes to rebuild: those named, or every valid
// at-risk index on a user table.
func (p *RepairPlan) planRebuilds(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory, names []string, done map[string]bool, leftovers map[uint32]bool) error {
	var oids []uint32
	if len(names) > 0 {
		for _, n := range names {
			oid, err := lookupIndex(ctx, conn, n)
			if err != nil {
				return err
			}
			oids = append(oids, oid)
		}
	} else {
		for _, o := range inv.Objects {
			if !o.AtRisk || !o.Valid {
				continue
			}
			switch o.Type {
			case ObjectIndex, ObjectUniqueConstraint, ObjectPrimaryKey, ObjectExclusionConstraint, ObjectMatviewIndex:
			default:
				continue
			}
			if o.Schema == "pg_catalog" || o.Schema == "information_schema" {
				p.System = append(p.System, o.Ref())
				continue
			}
			if systemSchema(o.Schema) || leftovers[o.OID] {
				continue // leftovers are dropped, not rebuilt
			}
			oids = append(oids, o.OID)
		}
	}
	if len(oids) == 0 {
		return nil
	}
	// Partitioned indexes stand for their partitions' indexes; each is
	// rebuilt (and journaled) on its own.
	rows, err := conn.Query(ctx, `
		WITH leaves AS (
		  SELECT DISTINCT coalesce(pt.relid, w.oid) AS oid
		    FROM unnest($1::oid[]) AS w(oid)
		    LEFT JOIN LATERAL (SELECT relid FROM pg_partition_tree(w.oid) WHERE isleaf) pt ON true)
		SELECT c.oid, n.nspname, t.relname, c.relname, coalesce(con.contype::text, ''),
		       i.indisunique, pg_relation_size(c.oid), coalesce(pg_partition_root(c.oid)::oid, c.oid), t.relkind::text
		  FROM leaves
		  JOIN pg_class c ON c.oid = leaves.oid AND c.relkind = 'i'
		  JOIN pg_index i ON i.indexrelid = c.oid
		  JOIN pg_class t ON t.oid = i.indrelid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.conrelid = i.indrelid
		       AND con.contype IN ('p', 'u', 'x')
		 WHERE i.indisvalid`, oids)
	if err != nil {
		return fmt.Errorf("describe indexes to rebuild: %w", err)
	}
	type described struct {
		r      PlannedRebuild
		unique bool
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (described, error) {
		var d described
		var contype, relkind string
		err := row.Scan(&d.r.OID, &d.r.Schema, &d.r.Table, &d.r.Name, &contype, &d.unique, &d.r.Bytes, &d.r.root, &relkind)
		d.r.Type = indexType(relkind, contype)
		d.r.Concurrent = contype != "x"
		return d, err
	})
	if err != nil {
		return fmt.Errorf("describe indexes to rebuild: %w", err)
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.unique != b.unique {
			return a.unique
		}
		if a.r.Bytes != b.r.Bytes {
			return a.r.Bytes < b.r.Bytes
		}
		return a.r.QualifiedName() < b.r.QualifiedName()
	})
	for _, d := range list {
		r := d.r
		r.SQL = reindexSQL(r.QualifiedName(), r.Concurrent)
		r.Done = done[r.QualifiedName()]
		p.Rebuilds = append(p.Rebuilds, r)
	}
	return nil
}

// planDuplicates searches the unique indexes among the rebuilds for stored
// duplicates, decides the rule for each violated one, and marks the
// rebuilds they block.
func (p *RepairPlan) planDuplicates(ctx context.Context, conn *pgx.Conn, opts RepairOptions) error {
	var roots []uint32
	seen := map[uint32]bool{}
	for _, r := range p.Rebuilds {
		if r.Type == ObjectExclusionConstraint || seen[r.root] {
			continue
		}
		seen[r.root] = true
		roots = append(roots, r.root)
	}
	// Only unique ones: loadUniqueIndexes refuses others, so filter first.
	uniq, err := uniqueOnly(ctx, conn, roots)
	if err != nil {
		return err
	}
	indexes, err := loadUniqueIndexes(ctx, conn, uniq)
	if err != nil {
		return err
	}
	blocked := map[uint32]string{}
	for _, idx := range indexes {
		d, err := searchDuplicates(ctx, conn, idx, 20)
		if err != nil {
			return err
		}
		if d.Groups == 0 {
			continue
		}
		dp := DuplicatePlan{IndexDuplicates: *d, Rule: ruleFor(opts.Dedupe, idx.Schema, idx.Table)}
		if dp.Rule != nil {
			if dp.Problem, err = dedupeProblem(ctx, conn, idx, *dp.Rule, opts.AllowTriggers); err != nil {
				return err
			}
		}
		if dp.Rule != nil && dp.Problem == "" {
			if dp.Problem, err = ambiguousGroups(ctx, conn, idx, *dp.Rule); err != nil {
				return err
			}
		}
		p.Duplicates = append(p.Duplicates, dp)
		blocked[idx.OID] = fmt.Sprintf("%d duplicated key(s) under %s", d.Groups, idx.QualifiedName())
	}
	for i := range p.Rebuilds {
		p.Rebuilds[i].BlockedBy = blocked[p.Rebuilds[i].root]
	}
	return nil
}

func uniqueOnly(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]uint32, error) {
	if len(oids) == 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `
		SELECT w.oid FROM unnest($1::oid[]) WITH ORDINALITY AS w(oid, ord)
		  JOIN pg_index i ON i.indexrelid = w.oid
		  JOIN pg_class c ON c.oid = w.oid
		  JOIN pg_am am ON am.oid = c.relam
		 WHERE i.indisunique AND am.amname = 'btree'
		 ORDER BY w.ord`, oids)
	if err != nil {
		return nil, fmt.Errorf("select unique indexes: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("select unique indexes: %w", err)
	}
	return out, nil
}

// dedupeProblem says why rule cannot resolve idx's duplicates: the column
// does not exist, deleting rows would fire ON DELETE actions on referencing
// tables (a cascade would delete rows the quarantine never saw), or user
// triggers or rules would fire (unless allowed). With NO ACTION / RESTRICT
// foreign keys a delete of a referenced row simply fails and the repair
// reports it.
func dedupeProblem(ctx context.Context, conn *pgx.Conn, idx UniqueIndex, rule DedupeRule, allowTriggers bool) (string, error) {
	var hasColumn, matview bool
	err := conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped),
		       EXISTS (SELECT 1 FROM pg_class WHERE oid = $1 AND relkind = 'm')`, idx.tableOID, rule.Column).Scan(&hasColumn, &matview)
	if err != nil {
		return "", fmt.Errorf("check dedupe rule for %s: %w", idx.QualifiedTable(), err)
	}
	if matview {
		return fmt.Sprintf("%s is a materialized view: fix its source tables, then REFRESH MATERIALIZED VIEW", idx.QualifiedTable()), nil
	}
	if !hasColumn && !rule.KeepOne {
		return "", optionErrorf(ErrBadDedupeRule, "%s %s: table %s has no column %q (give it a rule of its own, e.g. {{Dedupe}} %s.%s=keep-one)",
			ErrBadDedupeRule, rule, idx.QualifiedTable(), rule.Column, idx.Schema, idx.Table)
	}
	fx, err := readSideEffects(ctx, conn, idx.tableOID)
	if err != nil {
		return "", err
	}
	if len(fx.deleteActions) > 0 {
		return fmt.Sprintf("foreign keys with ON DELETE actions reference %s (%s): deleting duplicates would change other tables; re-point the references, then delete by hand",
			idx.QualifiedTable(), strings.Join(fx.deleteActions, ", ")), nil
	}
	if len(fx.triggers) > 0 && !allowTriggers {
		return fmt.Sprintf("deleting duplicates from %s would fire %s (allow it with --allow-triggers, or disable them)",
			idx.QualifiedTable(), strings.Join(fx.triggers, ", ")), nil
	}
	return "", nil
}

// ambiguousGroups says, when rule cannot tell which row to keep in some of
// idx's duplicate groups, how many there are.
func ambiguousGroups(ctx context.Context, conn *pgx.Conn, idx UniqueIndex, rule DedupeRule) (string, error) {
	var leaves []victimLeaf
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := seqScanOnly(ctx, tx); err != nil {
			return err
		}
		var err error
		leaves, err = pickVictims(ctx, tx, victimsSQL(idx, rule))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("check dedupe rule for %s: %w", idx.QualifiedName(), err)
	}
	if len(leaves) == 0 || leaves[0].ambiguous == 0 {
		return "", nil
	}
	return fmt.Sprintf("rule %s: %d duplicated key(s) have no single row to keep (%s)", rule, leaves[0].ambiguous, ambiguityHint), nil
}

// sideEffects is what changing the rows of a table (or of its partitions)
// sets off beyond the rows themselves.
type sideEffects struct {
	// deleteActions lists the foreign keys referencing the table with an
	// ON DELETE action (CASCADE, SET NULL, SET DEFAULT).
	deleteActions []string
	// triggers lists the enabled user triggers and rules on the table and
	// its partitions.
	triggers []string
}

func readSideEffects(ctx context.Context, conn *pgx.Conn, relid uint32) (sideEffects, error) {
	var fx sideEffects
	err := conn.QueryRow(ctx, `
		WITH rels AS (SELECT $1::oid AS relid UNION SELECT relid FROM pg_partition_tree($1))
		SELECT coalesce((SELECT array_agg(DISTINCT format('%s on %s', con.conname, con.conrelid::regclass))
		                   FROM pg_constraint con JOIN rels ON con.confrelid = rels.relid
		                  WHERE con.contype = 'f' AND con.confdeltype NOT IN ('a', 'r')
		                    AND con.conparentid = 0), '{}'),
		       coalesce((SELECT array_agg(DISTINCT format('trigger %s on %s', tg.tgname, tg.tgrelid::regclass))
		                   FROM pg_trigger tg JOIN rels ON tg.tgrelid = rels.relid
		                  WHERE NOT tg.tgisinternal AND tg.tgenabled IN ('O', 'A')
		                    AND coalesce((to_jsonb(tg) ->> 'tgparentid')::oid, 0) = 0), '{}') ||
		       coalesce((SELECT array_agg(DISTINCT format('rule %s on %s', rw.rulename, rw.ev_class::regclass))
		                   FROM pg_rewrite rw JOIN rels ON rw.ev_class = rels.relid
		                  WHERE rw.rulename <> '_RETURN' AND rw.ev_enabled IN ('O', 'A')), '{}')`,
		relid).Scan(&fx.deleteActions, &fx.triggers)
	if err != nil {
		return fx, fmt.Errorf("read foreign keys, triggers and rules of %d: %w", relid, err)
	}
	return fx, nil
}

// partitionViolations counts, per leaf partition of every partitioned table
// whose key depends on an at-risk collation, the rows outside the
// partition's own bounds, and says for each whether the repair may move
// them.
func partitionViolations(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory, allowTriggers bool) ([]PartitionViolation, error) {
	var parents []uint32
	for _, o := range inv.Objects {
		if o.Type == ObjectPartitionKey && o.AtRisk && !systemSchema(o.Schema) {
			parents = append(parents, o.OID)
		}
	}
	out := []PartitionViolation{}
	if len(parents) == 0 {
		return out, nil
	}
	// The SET list names the partition key columns of every level above
	// the leaf; a key with an expression gets every plain column instead
	// (the expression's columns are not listed in the catalog).
	rows, err := conn.Query(ctx, `
		SELECT DISTINCT ON (c.oid) n.nspname, c.relname, rn.nspname, r.relname,
		       pg_get_partition_constraintdef(c.oid),
		       coalesce(
		         (SELECT CASE WHEN bool_or(k.attnum = 0) THEN NULL
		                      ELSE string_agg(DISTINCT format('%1$I = t.%1$I', a.attname), ', ') END
		            FROM pg_partition_ancestors(c.oid) anc
		            JOIN pg_partitioned_table pt ON pt.partrelid = anc.relid
		            CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) AS k(attnum)
		            LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum),
		         (SELECT string_agg(format('%1$I = t.%1$I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
		           WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
		             AND a.attgenerated = '' AND a.attidentity <> 'a')),
		       r.oid, current_setting('server_version_num')::int
		  FROM unnest($1::oid[]) AS p(oid)
		  CROSS JOIN LATERAL pg_partition_tree(p.oid) pt
		  JOIN pg_class c ON c.oid = pt.relid AND pt.isleaf AND c.relkind = 'r'
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
		  JOIN pg_namespace rn ON rn.oid = r.relnamespace
		 ORDER BY c.oid`, parents)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	type leaf struct {
		v       PartitionViolation
		root    uint32
		version int
	}
	leaves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (leaf, error) {
		var l leaf
		var constraint, set *string
		var rootSchema, rootName string
		err := r.Scan(&l.v.Schema, &l.v.Partition, &rootSchema, &rootName, &constraint, &set, &l.root, &l.version)
		l.v.Root = QuoteIdent(rootSchema, rootName)
		if constraint != nil {
			l.v.Constraint = *constraint
		}
		if set != nil {
			l.v.set = *set
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	for _, l := range leaves {
		v := l.v
		if v.Constraint == "" {
			continue // a default partition of an empty bound set: anything goes
		}
		leaf := QuoteIdent(v.Schema, v.Partition)
		v.ListSQL = violatingRowsSQL("*", leaf, v.Constraint)
		v.CopySQL = copyMisplacedSQL(v.Schema, v.Partition, v.ListSQL)
		v.RerouteSQL = v.reroute("")
		n, err := countSeqScan(ctx, conn, violatingRowsSQL("count(*)", leaf, v.Constraint))
		if err != nil {
			return nil, fmt.Errorf("scan partition %s: %w", leaf, err)
		}
		if n == 0 {
			continue
		}
		v.Rows = n
		fx, err := readSideEffects(ctx, conn, l.root)
		if err != nil {
			return nil, err
		}
		switch {
		case v.set == "":
			v.Problem = "the partitioned table has no column the repair can rewrite to move the rows"
		case l.version < 150000 && len(fx.deleteActions) > 0:
			// Before PostgreSQL 15 a row movement runs the ON DELETE
			// actions of foreign keys referencing the moved row.
			v.Problem = fmt.Sprintf("foreign keys with ON DELETE actions reference %s (%s), and before PostgreSQL 15 moving a row fires them",
				v.Root, strings.Join(fx.deleteActions, ", "))
		case len(fx.triggers) > 0 && !allowTriggers:
			v.Problem = fmt.Sprintf("moving rows of %s would fire %s (allow it with --allow-triggers, or disable them)",
				v.Root, strings.Join(fx.triggers, ", "))
		}
		out = append(out, v)
	}
	return out, nil
}

// checkViolations counts, per at-risk CHECK constraint on a table with rows,
// the stored rows that violate it.
func checkViolations(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory) ([]CheckViolation, error) {
	var oids []uint32
	for _, o := range inv.Objects {
		if o.Type == ObjectCheckConstraint && o.AtRisk && o.Valid && !systemSchema(o.Schema) {
			oids = append(oids, o.OID)
		}
	}
	out := []CheckViolation{}
	if len(oids) == 0 {
		return out, nil
	}
	rows, err := conn.Query(ctx, `
		SELECT n.nspname, t.relname, con.conname, pg_get_expr(con.conbin, con.conrelid)
		  FROM pg_constraint con
		  JOIN pg_class t ON t.oid = con.conrelid AND t.relkind IN ('r', 'm')
		  JOIN pg_namespace n ON n.oid = t.relnamespace
		 WHERE con.oid = ANY ($1::oid[])
		 ORDER BY 1, 2, 3`, oids)
	if err != nil {
		return nil, fmt.Errorf("list CHECK constraints: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CheckViolation, error) {
		var c CheckViolation
		err := r.Scan(&c.Schema, &c.Table, &c.Constraint, &c.Expression)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list CHECK constraints: %w", err)
	}
	for _, c := range list {
		tbl := QuoteIdent(c.Schema, c.Table)
		c.ListSQL = violatingRowsSQL("*", tbl, c.Expression)
		n, err := countSeqScan(ctx, conn, violatingRowsSQL("count(*)", tbl, c.Expression))
		if err != nil {
			return nil, fmt.Errorf("scan %s for CHECK %s: %w", tbl, c.Constraint, err)
		}
		if n > 0 {
			c.Rows = n
			out = append(out, c)
		}
	}
	return out, nil
}

// countSeqScan runs a count query in a read-only transaction without index
// scans or constraint exclusion (which would "prove" the answer zero from
// the very constraint under test).
func countSeqScan(ctx context.Context, conn *pgx.Conn, sql string) (int64, error) {
	var n int64
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := seqScanOnly(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sql).Scan(&n)
	})
	return n, err
}
