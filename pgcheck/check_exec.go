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
	sqlstateUndefinedTable = "42P01"
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
	skip     *Skipped
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
func execute(ctx context.Context, srv *Server, db string, p *dbPlan, opts CheckOptions, prog *progressTracker) ([]Finding, []Skipped, error) {
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
	for r := range results {
		switch {
		case r.skip != nil:
			skipped = append(skipped, *r.skip)
		case r.finding != nil:
			findings = append(findings, *r.finding)
		case r.heapRows > 0:
			h, ok := heap[r.task.oid]
			if !ok {
				h = &result{task: r.task}
				heap[r.task.oid] = h
				heapOrder = append(heapOrder, r.task.oid)
			}
			h.heapRows += r.heapRows
			h.heapMsgs = append(h.heapMsgs, r.heapMsgs...)
		}
	}
	if err := context.Cause(ctx); err != nil {
		return nil, nil, err
	}
	for _, oid := range heapOrder {
		h := heap[oid]
		// Each block range kept its first problems: quote the lowest blocks.
		sort.SliceStable(h.heapMsgs, func(i, j int) bool { return h.heapMsgs[i].block < h.heapMsgs[j].block })
		var msgs []string
		for _, m := range h.heapMsgs[:min(len(h.heapMsgs), heapFindingMessages)] {
			msgs = append(msgs, m.text)
		}
		findings = append(findings, Finding{Kind: KindHeapCorrupt, Database: db, Schema: h.task.schema,
			Table: h.task.name, Object: h.task.name, Rows: h.heapRows,
			Detail: fmt.Sprintf("verify_heapam reported %d problem(s): %s", h.heapRows, strings.Join(msgs, "; "))})
	}
	return findings, skipped, nil
}

// runTask runs one check. Corruption and per-object trouble (lock or
// statement timeout, relation dropped meanwhile) become results; an error
// means the whole check cannot go on (cancelled, connection lost, no
// permission).
func runTask(ctx context.Context, conn *pgx.Conn, db, amSchema string, t task, opts CheckOptions) (result, error) {
	r := result{task: t}
	var err error
	switch t.kind {
	case taskIndex:
		fn := "bt_index_check(index => $1::oid::regclass, heapallindexed => $2)"
		if opts.ParentCheck {
			fn = "bt_index_parent_check(index => $1::oid::regclass, heapallindexed => $2)"
		}
		_, err = conn.Exec(ctx, fmt.Sprintf("SELECT %s.%s", QuoteIdent(amSchema), fn), t.oid, opts.HeapAllIndexed)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == sqlstateIndexCorrupted || pgErr.Code == sqlstateDataCorrupted) {
			detail := pgErr.Message
			if pgErr.Detail != "" {
				detail += ": " + pgErr.Detail
			}
			r.finding = &Finding{Kind: KindIndexCorrupt, Database: db, Schema: t.schema, Table: t.table,
				Object: t.name, Detail: detail}
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
	if errors.As(err, &pgErr) {
		skip := &Skipped{Database: db, Schema: t.schema, Object: t.name}
		switch pgErr.Code {
		case sqlstateUndefinedTable:
			skip.Reason = "dropped while the check ran"
		case sqlstateLockTimeout:
			skip.Reason = "lock_timeout: " + pgErr.Message
			skip.Error = true
		case sqlstateQueryCanceled:
			skip.Reason = "statement_timeout: " + pgErr.Message
			skip.Error = true
		case sqlstateNoPrivilege:
			return r, fmt.Errorf("%s: %s (see docs/pg-check.md for the grants a non-superuser role needs)", t, pgErr.Message)
		default:
			skip.Reason = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
			skip.Error = true
		}
		r.skip = skip
		return r, nil
	}
	return r, fmt.Errorf("%s: %w", t, err)
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
	// lies wholly past its end (the table shrank since).
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT v.blkno, v.offnum, v.attnum, v.msg
		FROM (SELECT pg_relation_size($1::oid::regclass) / current_setting('block_size')::bigint AS n) s,
		LATERAL %s.verify_heapam(relation => $1::oid::regclass, on_error_stop => false, check_toast => true,
			skip => 'none', startblock => $2::bigint, endblock => least($3::bigint, s.n - 1)) v
		WHERE s.n > 0 AND ($2::bigint IS NULL OR $2::bigint < s.n)`, QuoteIdent(amSchema)), oid, start, end)
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
