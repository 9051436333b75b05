package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs the executor tells apart.
const (
	sqlstateDataCorrupted  = "XX001"
	sqlstateIndexCorrupted = "XX002"
	sqlstateLockTimeout    = "55P03"
	sqlstateQueryCanceled  = "57014"
	sqlstateNoPrivilege    = "42501"
)

// heapFindingMessages bounds the corruption messages quoted per relation.
const heapFindingMessages = 5

// result is what one task produced.
type result struct {
	task     task
	finding  *Finding
	heapMsgs []heapMessage
	heapRows int64
	// heapErr is the error that stopped a heap check of a relation that
	// still exists (a missing or unreadable file): a finding.
	heapErr string
	skip    *Skipped
}

// taskQueue hands tasks to the workers, largest first, while the planner
// is still adding to it.
type taskQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	tasks  []task // sorted by size, largest first
	closed bool
	prog   *progressTracker
}

// newTaskQueue returns a queue that closes itself when ctx ends.
func newTaskQueue(ctx context.Context, prog *progressTracker) *taskQueue {
	q := &taskQueue{prog: prog}
	q.cond = sync.NewCond(&q.mu)
	context.AfterFunc(ctx, q.close)
	return q
}

func (q *taskQueue) push(ts ...task) {
	if len(ts) == 0 {
		return
	}
	var bytes int64
	for _, t := range ts {
		bytes += t.bytes
	}
	q.prog.update(func(p *Progress) { p.Total += len(ts); p.BytesTotal += bytes })
	q.mu.Lock()
	q.tasks = append(q.tasks, ts...)
	sort.SliceStable(q.tasks, func(i, j int) bool { return q.tasks[i].bytes > q.tasks[j].bytes })
	q.mu.Unlock()
	q.cond.Broadcast()
}

// close says no more tasks will come.
func (q *taskQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// pop waits for the largest task; false when the queue is closed and empty.
func (q *taskQueue) pop() (task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.tasks) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.tasks) == 0 {
		return task{}, false
	}
	t := q.tasks[0]
	q.tasks = q.tasks[1:]
	return t, true
}

// execute runs the tasks of p's queue on opts.Jobs sessions until the queue
// is closed and empty.
func execute(ctx context.Context, srv *Target, db string, p *dbPlan, opts CheckOptions, prog *progressTracker) ([]Finding, []Skipped, Checked, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	context.AfterFunc(ctx, p.queue.close)
	results := make(chan result)
	prog.update(func(*Progress) {})

	var wg sync.WaitGroup
	for w := range opts.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for {
				t, ok := p.queue.pop()
				if !ok || ctx.Err() != nil {
					return
				}
				if conn == nil {
					var err error
					if conn, err = srv.Connect(ctx, db); err != nil {
						cancel(err)
						return
					}
				}
				prog.update(func(pr *Progress) { pr.Worker = w; pr.Current = t.String() })
				r, err := runTask(ctx, conn, db, p.amcheckSchema, t, opts)
				if err != nil {
					cancel(err)
					return
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
				prog.update(func(pr *Progress) {
					pr.Worker, pr.Current = w, ""
					pr.Done++
					pr.BytesDone += t.bytes
				})
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	findings := []Finding{}
	skipped := []Skipped{}
	heap := map[uint32]*result{}
	var heapOrder []uint32
	var checked Checked
	heapSeen := map[uint32]bool{}
	for r := range results {
		// Counts are of what was checked: a skipped object is listed, not
		// counted.
		if r.skip == nil {
			switch r.task.kind {
			case taskIndex:
				checked.Indexes++
				checked.IndexBytes += r.task.bytes
			case taskHeap:
				if !heapSeen[r.task.oid] {
					heapSeen[r.task.oid] = true
					checked.HeapRelations++
				}
				checked.HeapBytes += r.task.bytes
			case taskPartition:
				checked.Partitions++
			case taskConstraint:
				checked.CheckConstraints++
			}
		}
		switch {
		case r.skip != nil:
			skipped = append(skipped, *r.skip)
		case r.finding != nil:
			findings = append(findings, *r.finding)
		case r.heapRows > 0 || r.heapErr != "":
			h, ok := heap[r.task.oid]
			if !ok {
				h = &result{task: r.task}
				heap[r.task.oid] = h
				heapOrder = append(heapOrder, r.task.oid)
			}
			h.heapRows += r.heapRows
			h.heapMsgs = append(h.heapMsgs, r.heapMsgs...)
			if h.heapErr == "" {
				h.heapErr = r.heapErr
			}
		}
	}
	if err := context.Cause(ctx); err != nil {
		return nil, nil, Checked{}, err
	}
	for _, oid := range heapOrder {
		h := heap[oid]
		// Each block range kept its first problems: quote the lowest blocks.
		sort.SliceStable(h.heapMsgs, func(i, j int) bool { return h.heapMsgs[i].block < h.heapMsgs[j].block })
		var msgs []string
		for _, m := range h.heapMsgs[:min(len(h.heapMsgs), heapFindingMessages)] {
			msgs = append(msgs, m.text)
		}
		var detail []string
		if h.heapErr != "" {
			detail = append(detail, h.heapErr)
		}
		if h.heapRows > 0 {
			detail = append(detail, fmt.Sprintf("verify_heapam reported %d problem(s): %s", h.heapRows, strings.Join(msgs, "; ")))
		}
		findings = append(findings, Finding{Kind: KindHeapCorrupt, Database: db, Schema: h.task.schema,
			Table: h.task.name, Object: h.task.name, Rows: h.heapRows, Detail: strings.Join(detail, "; ")})
	}
	return findings, skipped, checked, nil
}

// runTask runs one check. Corruption and per-object trouble (lock or
// statement timeout, relation dropped or rebuilt meanwhile) become results;
// an error means the whole check cannot go on (cancelled, connection lost,
// no permission).
//
// An error reading an object that still exists is a finding, with the
// error in its detail: a missing data file or a page PostgreSQL cannot
// make sense of is damage, not a reason to report "not checked".
func runTask(ctx context.Context, conn *pgx.Conn, db, amSchema string, t task, opts CheckOptions) (result, error) {
	r := result{task: t}
	var err error
	switch t.kind {
	case taskIndex:
		var checked bool
		checked, err = checkIndex(ctx, conn, amSchema, t, opts)
		if err == nil && !checked {
			r.skip = &Skipped{Database: db, Schema: t.schema, Object: t.name, Reason: indexGoneReason}
			return r, nil
		}
	case taskHeap:
		err = verifyHeap(ctx, conn, amSchema, t, &r)
	case taskPartition, taskConstraint:
		var n int64
		n, t.expr, err = scanViolations(ctx, conn, t)
		if err == nil && n > 0 {
			f := violationFinding(db, t, n)
			r.finding = &f
		}
	}
	if err == nil {
		return r, nil
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return r, fmt.Errorf("%s: %w", t, err)
	}
	if pgErr.Code == sqlstateNoPrivilege {
		return r, fmt.Errorf("%s: %s (see docs/pg-check.md for the grants a non-superuser role needs)", t, pgErr.Message)
	}
	skip := &Skipped{Database: db, Schema: t.schema, Object: t.name}
	// Whatever the error, an object dropped or being rebuilt meanwhile is
	// skipped, not a finding and not a gap in the report.
	state, stErr := objectState(ctx, conn, t)
	switch {
	case stErr != nil && ctx.Err() != nil:
		return r, ctx.Err()
	case stErr != nil:
		return r, fmt.Errorf("%s: %s; then, looking it up: %w", t, pgErr.Message, stErr)
	case state == objectGone:
		skip.Reason = "dropped while the check ran"
		r.skip = skip
		return r, nil
	case state == objectRebuilding:
		skip.Reason = indexGoneReason
		r.skip = skip
		return r, nil
	}
	switch {
	case pgErr.Code == sqlstateLockTimeout:
		skip.Reason = "lock_timeout: " + pgErr.Message
		skip.Error = true
	case pgErr.Code == sqlstateQueryCanceled:
		skip.Reason = "statement_timeout: " + pgErr.Message
		skip.Error = true
	case dataError(pgErr.Code):
		detail := fmt.Sprintf("could not be read: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		if pgErr.Detail != "" {
			detail += ": " + pgErr.Detail
		}
		if t.kind == taskHeap {
			r.heapErr = detail
			return r, nil
		}
		f := Finding{Kind: KindHeapCorrupt, Database: db, Schema: t.schema, Table: t.table, Object: t.name, Detail: detail}
		switch t.kind {
		case taskIndex:
			f.Kind = KindIndexCorrupt
			if pgErr.Code == sqlstateIndexCorrupted || pgErr.Code == sqlstateDataCorrupted {
				f.Detail = pgErr.Message
				if pgErr.Detail != "" {
					f.Detail += ": " + pgErr.Detail
				}
			}
		case taskPartition:
			f.Table = t.name
		case taskConstraint:
			f.Object = t.table
		}
		r.finding = &f
		return r, nil
	default:
		skip.Reason = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		skip.Error = true
	}
	r.skip = skip
	return r, nil
}

// indexGoneReason explains an index skipped because it vanished or stopped
// being valid, ready and live while the check ran: a concurrent REINDEX or
// DROP INDEX CONCURRENTLY. Its replacement is checked when it was listed.
const indexGoneReason = "dropped, or being rebuilt by REINDEX CONCURRENTLY, while the check ran (not valid, ready and live when its turn came)"

// dataError reports whether an error reading an existing relation means its
// data is damaged: amcheck's corruption codes, internal errors (XX000:
// "could not open relation", "could not read block") and system errors
// on its files (58P01: a missing data file).
func dataError(code string) bool {
	return strings.HasPrefix(code, "XX") || strings.HasPrefix(code, "58")
}

// checkIndex runs amcheck on index t, confirming in the same statement
// that the index is still valid, ready and live: false (and no error)
// when it no longer is.
func checkIndex(ctx context.Context, conn *pgx.Conn, amSchema string, t task, opts CheckOptions) (bool, error) {
	fn := "bt_index_check"
	if opts.ParentCheck {
		fn = "bt_index_parent_check"
	}
	var n int
	err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(%s.%s(index => i.indexrelid::regclass, heapallindexed => $2))
		FROM pg_catalog.pg_index i
		WHERE i.indexrelid = $1 AND i.indisvalid AND i.indisready AND i.indislive`,
		QuoteIdent(amSchema), fn), t.oid, opts.HeapAllIndexed).Scan(&n)
	return n > 0, err
}

type objectStateKind int

const (
	objectPresent objectStateKind = iota
	objectGone
	objectRebuilding
)

// objectState looks up t's relation after an error: gone, an index no
// longer valid, ready and live, or present.
func objectState(ctx context.Context, conn *pgx.Conn, t task) (objectStateKind, error) {
	var exists, usable bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_class WHERE oid = $1),
		coalesce((SELECT i.indisvalid AND i.indisready AND i.indislive FROM pg_catalog.pg_index i WHERE i.indexrelid = $1), true)`,
		t.oid).Scan(&exists, &usable)
	switch {
	case err != nil:
		return objectPresent, fmt.Errorf("look up %s: %w", t, err)
	case !exists:
		return objectGone, nil
	case !usable:
		return objectRebuilding, nil
	}
	return objectPresent, nil
}

// verifyHeap runs verify_heapam over t's block range, collecting the
// problems it reports into r. A page that cannot be read at all (a data
// checksum failure, SQLSTATE XX001: initdb enables checksums by default
// from PostgreSQL 18) stops verify_heapam with an error: that page is a
// problem too, and the range is checked on from the next block.
func verifyHeap(ctx context.Context, conn *pgx.Conn, amSchema string, t task, r *result) error {
	var start, end *int64
	if t.startBlock >= 0 {
		start = &t.startBlock
	}
	if t.endBlock >= 0 {
		end = &t.endBlock
	}
	for {
		err := verifyHeapRange(ctx, conn, amSchema, t.oid, start, end, r)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != sqlstateDataCorrupted {
			return err
		}
		blk, ok, perr := unreadableBlock(ctx, conn, t.oid, pgErr.Message)
		if perr != nil {
			return perr
		}
		r.heapRows++
		if len(r.heapMsgs) < heapFindingMessages {
			text := pgErr.Message
			if ok {
				text = formatHeapMessage(blk, nil, nil, pgErr.Message)
			}
			r.heapMsgs = append(r.heapMsgs, heapMessage{blk, text})
		}
		if !ok {
			// A TOAST page or an unknown block: the rest of the range
			// cannot be told apart from it.
			r.heapMsgs[len(r.heapMsgs)-1].text += " (the rest of this block range was not checked)"
			return nil
		}
		next := blk + 1
		if end != nil && next > *end {
			return nil
		}
		start = &next
	}
}

// unreadableBlock returns the block of relation oid named by a "invalid
// page in block N of relation PATH" message, and whether the message is
// about that relation's own file (not its TOAST table's).
func unreadableBlock(ctx context.Context, conn *pgx.Conn, oid uint32, msg string) (int64, bool, error) {
	var blk int64
	var path string
	if _, err := fmt.Sscanf(msg, "invalid page in block %d of relation %s", &blk, &path); err != nil {
		return -1, false, nil
	}
	var own string
	if err := conn.QueryRow(ctx, `SELECT pg_relation_filepath($1::oid::regclass)`, oid).Scan(&own); err != nil {
		return -1, false, fmt.Errorf("relation file of %d: %w", oid, err)
	}
	return blk, strings.Trim(path, `"`) == own, nil
}

// verifyHeapRange runs verify_heapam over blocks start to end of oid.
func verifyHeapRange(ctx context.Context, conn *pgx.Conn, amSchema string, oid uint32, start, end *int64, r *result) error {
	// The plan's block numbers come from pg_class.relpages and may be stale:
	// clamp the range to the relation's size now, and skip a range that
	// lies wholly past its end (the table shrank since). A size of 0 is
	// also what pg_relation_size says of a missing data file: the first
	// range then runs verify_heapam unbounded, which opens the file (an
	// empty relation passes, a missing file is an error: a finding).
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT v.blkno, v.offnum, v.attnum, v.msg
		FROM (SELECT pg_relation_size($1::oid::regclass) / current_setting('block_size')::bigint AS n) s,
		LATERAL %s.verify_heapam(relation => $1::oid::regclass, on_error_stop => false, check_toast => true,
			skip => 'none',
			startblock => CASE WHEN s.n > 0 THEN $2::bigint END,
			endblock => CASE WHEN s.n > 0 THEN least($3::bigint, s.n - 1) END) v
		WHERE (s.n > 0 AND ($2::bigint IS NULL OR $2::bigint < s.n))
		   OR (s.n = 0 AND coalesce($2::bigint, 0) = 0)`, QuoteIdent(amSchema)), oid, start, end)
	if err != nil {
		return err
	}
	var blk int64
	var off, att *int32
	var msg string
	_, err = pgx.ForEachRow(rows, []any{&blk, &off, &att, &msg}, func() error {
		r.heapRows++
		if len(r.heapMsgs) < heapFindingMessages {
			r.heapMsgs = append(r.heapMsgs, heapMessage{blk, formatHeapMessage(blk, off, att, msg)})
		}
		return nil
	})
	return err
}

// heapMessage is one problem verify_heapam reported, with its block.
type heapMessage struct {
	block int64
	text  string
}

func formatHeapMessage(blk int64, off, att *int32, msg string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "block %d", blk)
	if off != nil {
		fmt.Fprintf(&b, ", offset %d", *off)
	}
	if att != nil {
		fmt.Fprintf(&b, ", attribute %d", *att)
	}
	b.WriteString(": " + msg)
	return b.String()
}
