package pgcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

type taskKind int

const (
	taskIndex taskKind = iota
	taskHeap
	taskPartition
	taskConstraint
)

// task is one unit of work for a checking session.
type task struct {
	kind                taskKind
	oid                 uint32
	schema, table, name string
	bytes               int64
	// startBlock and endBlock bound a heap check (-1: relation start/end).
	startBlock, endBlock int64
	// expr is the boolean SQL expression every row must satisfy (partition
	// constraint or CHECK constraint).
	expr string
}

func (t task) String() string {
	switch t.kind {
	case taskHeap:
		if t.startBlock >= 0 || t.endBlock >= 0 {
			return fmt.Sprintf("heap %s.%s blocks %d-%s", t.schema, t.name, t.startBlock, endBlockString(t.endBlock))
		}
		return fmt.Sprintf("heap %s.%s", t.schema, t.name)
	case taskPartition:
		return fmt.Sprintf("partition bounds %s.%s", t.schema, t.name)
	case taskConstraint:
		return fmt.Sprintf("check constraint %s on %s.%s", t.name, t.schema, t.table)
	}
	return fmt.Sprintf("index %s.%s", t.schema, t.name)
}

func endBlockString(b int64) string {
	if b < 0 {
		return "end"
	}
	return fmt.Sprint(b)
}

// dbPlan is everything to check in one database. Tasks are handed to the
// workers in stages (flush), so amcheck starts before the collation
// inventory has been read.
type dbPlan struct {
	amcheckSchema string
	inventory     *DatabaseInventory
	tasks         []task
	skipped       []Skipped
	queue         *taskQueue
	// planned counts the objects planned for checking; collations the
	// collations the inventory read. What was checked is counted from the
	// results.
	planned    int
	collations int
}

// skip records an object that is deliberately not checked.
func (p *dbPlan) skip(db, schema, object, reason string) {
	p.skipped = append(p.skipped, Skipped{Database: db, Schema: schema, Object: object, Reason: reason})
}

// flush hands the tasks planned so far to the workers.
func (p *dbPlan) flush() {
	p.queue.push(p.tasks...)
	p.tasks = nil
}

// plan lists the checks for one database into p's queue and closes it.
func plan(ctx context.Context, conn *pgx.Conn, db string, opts CheckOptions, rep *CheckReport, p *dbPlan) error {
	defer p.queue.close()
	// Partition and CHECK scans, and PostgreSQL's own version check, are
	// collation work in every scope; in scope all, the indexes and heap
	// need no inventory and are started first.
	var risk *riskSet
	readRisk := func() error {
		var err error
		if risk, err = collationRisk(ctx, conn, db); err != nil {
			return err
		}
		rep.Findings = append(rep.Findings, risk.findings...)
		p.collations = risk.collations
		p.inventory = risk.inv
		return nil
	}
	if opts.Scope == ScopeCollation {
		if err := readRisk(); err != nil {
			return err
		}
	}
	if err := planIndexes(ctx, conn, db, opts, risk, rep, p); err != nil {
		return err
	}
	if opts.Heap && opts.Scope == ScopeAll {
		if err := planHeap(ctx, conn, db, opts, rep, p); err != nil {
			return err
		}
	}
	p.flush()
	if risk == nil {
		if err := readRisk(); err != nil {
			return err
		}
	}
	if err := planScans(ctx, conn, db, opts, risk, rep, p); err != nil {
		return err
	}
	p.flush()
	return nil
}

func planIndexes(ctx context.Context, conn *pgx.Conn, db string, opts CheckOptions, risk *riskSet, rep *CheckReport, p *dbPlan) error {
	// Sizes come from pg_class.relpages (as of the last VACUUM/ANALYZE):
	// good enough to schedule, and unlike pg_relation_size they take no
	// lock, so planning never queues behind a pending ACCESS EXCLUSIVE.
	// TOAST indexes are filtered by the table that owns the TOAST table.
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname, t.relname, c.relname, greatest(c.relpages, 0)::bigint * current_setting('block_size')::bigint,
		       c.relpersistence = 'u',
		       coalesce(own_n.nspname, n.nspname), coalesce(own.relname, t.relname)
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		LEFT JOIN pg_class own ON t.relkind = 't' AND own.reltoastrelid = t.oid
		LEFT JOIN pg_namespace own_n ON own_n.oid = own.relnamespace
		WHERE am.amname = 'btree' AND c.relkind = 'i'
		  AND i.indisvalid AND i.indisready AND i.indislive
		  AND c.relpersistence <> 't'`)
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	var t task
	var unlogged bool
	var ownSchema, ownTable string
	_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.schema, &t.table, &t.name, &t.bytes, &unlogged, &ownSchema, &ownTable}, func() error {
		if !opts.Filter.tableOK(ownSchema, ownTable) || !opts.Filter.indexOK(t.schema, t.name) {
			return nil
		}
		if risk != nil && opts.Scope == ScopeCollation && !risk.indexes[t.oid] {
			return nil
		}
		if unlogged && rep.Server.InRecovery {
			p.skip(db, t.schema, t.name, "unlogged index: it has no contents on a standby")
			return nil
		}
		t.kind = taskIndex
		t.startBlock, t.endBlock = -1, -1
		p.tasks = append(p.tasks, t)
		p.planned++
		return nil
	})
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	return nil
}

func planHeap(ctx context.Context, conn *pgx.Conn, db string, opts CheckOptions, rep *CheckReport, p *dbPlan) error {
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, greatest(c.relpages, 0)::bigint * current_setting('block_size')::bigint,
		       greatest(c.relpages, 0)::bigint,
		       c.relpersistence = 'u',
		       coalesce(own_n.nspname, n.nspname), coalesce(own.relname, c.relname)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class own ON c.relkind = 't' AND own.reltoastrelid = c.oid
		LEFT JOIN pg_namespace own_n ON own_n.oid = own.relnamespace
		WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'`)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	type heapRel struct {
		task
		blocks int64
	}
	var rels []heapRel
	var r heapRel
	var unlogged bool
	var ownSchema, ownTable string
	_, err = pgx.ForEachRow(rows, []any{&r.oid, &r.schema, &r.name, &r.bytes, &r.blocks, &unlogged, &ownSchema, &ownTable}, func() error {
		if !opts.Filter.tableOK(ownSchema, ownTable) {
			return nil
		}
		if unlogged && rep.Server.InRecovery {
			p.skip(db, r.schema, r.name, "unlogged table: it has no contents on a standby")
			return nil
		}
		r.kind = taskHeap
		r.table = r.name
		rels = append(rels, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var total int64
	for _, r := range rels {
		total += r.blocks
	}
	chunk := opts.HeapChunkBlocks
	if chunk <= 0 {
		// Enough pieces that no single relation dominates the schedule,
		// few enough that per-call overhead stays negligible.
		chunk = max(total/int64(opts.Jobs*8), 4096)
	}
	for _, r := range rels {
		p.planned++
		if r.blocks <= chunk {
			t := r.task
			t.startBlock, t.endBlock = -1, -1
			p.tasks = append(p.tasks, t)
			continue
		}
		for start := int64(0); start < r.blocks; start += chunk {
			t := r.task
			blockSize := r.bytes / r.blocks
			t.startBlock, t.endBlock = start, start+chunk-1
			t.bytes = blockSize * chunk
			if t.endBlock >= r.blocks-1 {
				// The last range runs to the end, whatever the table has grown to.
				t.endBlock = -1
				t.bytes = blockSize * (r.blocks - start)
			}
			p.tasks = append(p.tasks, t)
		}
	}
	return nil
}
