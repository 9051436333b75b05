package pgcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// repairLockKey is the session advisory lock that keeps two repairs off one
// database ("rfrepair" in ASCII).
const repairLockKey int64 = 0x7266726570616972

// dedupeBatch bounds the rows one journaled DELETE statement names.
const dedupeBatch = 5000

// ErrRepairRunning is returned when another repair holds the database's
// repair lock.
var ErrRepairRunning = errors.New("another repair is running on this database")

// RepairResult is what one `repair --apply` did.
type RepairResult struct {
	// Plan is the plan computed at the start of the run.
	Plan  *RepairPlan `json:"plan"`
	RunID string      `json:"run_id,omitempty"`
	// Resumed is set when the run continued an interrupted one.
	Resumed bool `json:"resumed"`
	// Stopped says why nothing was changed (duplicates without a rule).
	Stopped []string `json:"stopped,omitempty"`
	// Events lists every action's outcome, in order.
	Events []RepairEvent `json:"events"`
	// Deleted and Moved count the rows copied to the quarantine.
	Deleted int64 `json:"deleted_rows"`
	Moved   int64 `json:"moved_rows"`
	// RunDeleted and RunMoved count the quarantine rows of the whole run,
	// the interrupted invocations it resumed included.
	RunDeleted int64 `json:"run_deleted_rows"`
	RunMoved   int64 `json:"run_moved_rows"`
	// Failed lists actions that failed for good.
	Failed []string `json:"failed,omitempty"`
	// Pending lists the decisions left to the operator.
	Pending []string `json:"pending,omitempty"`
	// Verify holds what the final verification found; empty when clean.
	Verify []Finding `json:"verify"`
	// Finished is set when the collation versions were refreshed (or
	// needed no refresh) and the run finished.
	Finished bool `json:"finished"`
	// NothingFound is set when the plan, amcheck on the indexes at risk
	// and the fingerprint comparison found nothing wrong, so a repair with
	// RepairOptions.RequireFindings changed nothing.
	NothingFound bool `json:"nothing_found"`
	// Verified describes that pre-check when it ran (indexes checked).
	Verified *Checked `json:"verified,omitempty"`
}

// Clean reports whether the repair finished with nothing left to do.
func (r *RepairResult) Clean() bool {
	return r.Finished && len(r.Stopped) == 0 && len(r.Failed) == 0 && len(r.Pending) == 0 && len(r.Verify) == 0
}

// RepairReport is the result of Repair: the plan of a dry run, or what an
// applied repair did (Result, whose Plan is the plan it started from). Its
// JSON form is the plan, or the result (docs/pg-check.md).
type RepairReport struct {
	Plan *RepairPlan
	// Result is nil on a dry run.
	Result   *RepairResult
	Duration time.Duration
}

// MarshalJSON renders the report's documented JSON form.
func (r *RepairReport) MarshalJSON() ([]byte, error) {
	if r.Result != nil {
		return marshalReport(r.Result, r.Duration)
	}
	return marshalReport(r.Plan, r.Duration)
}

// Repair plans the repair of t's database after a collation change and,
// with opts.Apply, carries it out (see applyRepair for the steps and their
// guarantees). A dry run changes nothing: it runs in read-only sessions and
// reads rows with sequential scans.
func Repair(ctx context.Context, t *Target, opts RepairOptions) (*RepairReport, error) {
	start := time.Now()
	rep := &RepairReport{}
	var err error
	if opts.Apply {
		rep.Result, err = applyRepair(ctx, t, opts)
		if rep.Result != nil {
			rep.Plan = rep.Result.Plan
		}
	} else {
		rep.Plan, err = dryRunRepair(ctx, t, opts)
	}
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// applyRepair carries out the repair plan in srv's database:
//
//  1. drop REINDEX CONCURRENTLY leftovers (DROP INDEX CONCURRENTLY);
//  2. resolve duplicates by the chosen rules, each removed row copied into
//     ringfence.quarantine in the same transaction that deletes it;
//  3. re-route rows outside their partition's bounds, when asked;
//  4. rebuild every index at risk with REINDEX INDEX CONCURRENTLY (plain
//     REINDEX only where the options allow it), retrying lock timeouts;
//  5. verify: no duplicates, no misplaced rows, amcheck clean on every
//     rebuilt index;
//  6. refresh the collation versions, only if all of that succeeded.
//
// Duplicates without a rule stop it before anything changes. It holds a
// session advisory lock for its whole run (ErrRepairRunning if another
// repair has it), never a table lock beyond the statement that needs it, and
// journals every action with its SQL in ringfence.repair_log. Interrupted
// at any point, the next call resumes the unfinished run: every step is
// either atomic or recomputed from the database's state, and rebuilds
// already done are skipped.
func applyRepair(ctx context.Context, srv *Target, opts RepairOptions) (*RepairResult, error) {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.RetryWait <= 0 {
		opts.RetryWait = time.Second
	}
	if opts.RebuildLockTimeout <= 0 {
		opts.RebuildLockTimeout = 5 * time.Minute
	}
	rw := srv.WithOptions(ConnOptions{ReadWrite: true})
	conn, err := rw.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	// Let the server notice a dead client during a long REINDEX and give up
	// its locks (PostgreSQL 14+; older servers ignore it).
	_, _ = conn.Exec(ctx, "SET client_connection_check_interval = '1s'")

	var standby bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return nil, fmt.Errorf("read recovery state: %w", err)
	}
	if standby {
		return nil, errors.New("this server is a hot standby: repair the primary (the standby replays the repair, but its own locale data must match the primary's)")
	}
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", repairLockKey).Scan(&locked); err != nil {
		return nil, fmt.Errorf("take the repair lock: %w", err)
	}
	if !locked {
		return nil, ErrRepairRunning
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", repairLockKey)
	}()

	plan, err := planRepair(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Plan: plan, Events: []RepairEvent{}, Verify: []Finding{}}
	if b := plan.Blockers(); len(b) > 0 {
		res.Stopped = b
		return res, nil
	}
	if plan.empty() {
		// Nothing at risk, nothing broken: leave the database untouched
		// (no ringfence schema, no amcheck).
		res.Finished = true
		return res, nil
	}
	if !plan.FoundProblems() && len(opts.Indexes) == 0 && opts.RequireFindings {
		// The plan found nothing; only amcheck and the fingerprints can
		// tell an index damaged by an invisible collation change from one
		// merely at risk. Rebuild only when they find something.
		found, checked, err := atRiskDamaged(ctx, srv)
		if err != nil {
			return nil, err
		}
		res.Verified = checked
		if !found {
			res.NothingFound, res.Finished = true, true
			return res, nil
		}
	}
	if err := ensureRepairTables(ctx, conn); err != nil {
		return nil, err
	}
	a := &applier{srv: srv, conn: conn, opts: opts, res: res}
	recorded := runOptions{opts.Indexes, opts.Dedupe, opts.ReroutePartitions, opts.Blocking, opts.AllowTriggers}
	if plan.ResumeRun != "" {
		a.run, res.Resumed = plan.ResumeRun, true
		if err := checkResumeOptions(ctx, conn, a.run, recorded); err != nil {
			return nil, err
		}
	} else {
		a.run = uuid.NewString()
		optsJSON, err := json.Marshal(recorded)
		if err != nil {
			return nil, fmt.Errorf("record repair run: %w", err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO ringfence.repair_run (id, options) VALUES ($1, $2)`, a.run, optsJSON); err != nil {
			return nil, fmt.Errorf("record repair run: %w", err)
		}
	}
	res.RunID = a.run
	if err := a.apply(ctx, plan); err != nil {
		return res, err
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = $2), count(*) FILTER (WHERE action = $3)
		FROM ringfence.quarantine WHERE run_id = $1`, a.run, QuarantineDeleted, QuarantineMoved).Scan(&res.RunDeleted, &res.RunMoved)
	if err != nil {
		return res, fmt.Errorf("count quarantined rows: %w", err)
	}
	return res, nil
}

// runOptions are the options a repair run records when it starts.
type runOptions struct {
	Indexes           []string     `json:"indexes,omitempty"`
	Dedupe            []DedupeRule `json:"dedupe,omitempty"`
	ReroutePartitions bool         `json:"reroute_partitions"`
	Blocking          bool         `json:"blocking"`
	AllowTriggers     bool         `json:"allow_triggers"`
}

// checkResumeOptions refuses to resume run with dedupe rules other than
// the ones it started with: rows removed by one rule and then by another
// would leave a run whose outcome no single rule explains. Giving no rule
// is allowed (duplicates then stop the run); so are the options that only
// widen or narrow what is done (--index, --blocking, --reroute-partitions,
// --allow-triggers), which the plan and the pending list account for.
func checkResumeOptions(ctx context.Context, conn *pgx.Conn, run string, now runOptions) error {
	var raw []byte
	if err := conn.QueryRow(ctx, `SELECT options FROM ringfence.repair_run WHERE id = $1`, run).Scan(&raw); err != nil {
		return fmt.Errorf("read the options of repair run %s: %w", run, err)
	}
	var then runOptions
	if err := json.Unmarshal(raw, &then); err != nil {
		return fmt.Errorf("read the options of repair run %s: %w", run, err)
	}
	if len(now.Dedupe) == 0 || slices.Equal(now.Dedupe, then.Dedupe) {
		return nil
	}
	rules := func(rs []DedupeRule) string {
		if len(rs) == 0 {
			return "none"
		}
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = "--dedupe " + r.String()
		}
		return strings.Join(s, " ")
	}
	return fmt.Errorf("repair run %s is unfinished and started with dedupe rules %s, not %s: resume it with the same rules, "+
		"or close it first (UPDATE ringfence.repair_run SET status = 'abandoned', finished_at = now() WHERE id = '%s')",
		run, rules(then.Dedupe), rules(now.Dedupe), run)
}

// applier carries one repair run.
type applier struct {
	srv  *Target
	conn *pgx.Conn
	opts RepairOptions
	res  *RepairResult
	run  string
}

func (a *applier) apply(ctx context.Context, plan *RepairPlan) error {
	for _, ii := range plan.Invalid {
		if !ii.Leftover {
			continue
		}
		err := a.step(ctx, StepDropLeftover, QuoteIdent(ii.Schema, ii.Name), ii.SQL, func(ctx context.Context) (int64, error) {
			_, err := a.conn.Exec(ctx, ii.SQL)
			return 0, err
		})
		// A leftover that cannot be dropped yet blocks nothing else: it is
		// recorded as failed, and the next run tries again.
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}

	failedDedupe := map[uint32]bool{}
	for _, d := range plan.Duplicates {
		if err := a.dedupe(ctx, d.Index, *d.Rule); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failedDedupe[d.Index.OID] = true
		}
	}

	if a.opts.ReroutePartitions {
		for _, v := range plan.Partitions {
			if v.Problem != "" {
				a.event(RepairEvent{Step: StepReroute, Target: QuoteIdent(v.Schema, v.Partition), Status: StatusSkipped,
					SQL: v.RerouteSQL, Error: v.Problem})
				continue
			}
			if err := a.reroute(ctx, v); err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	var rebuilt []PlannedRebuild
	for _, r := range plan.Rebuilds {
		target := r.QualifiedName()
		switch {
		case r.Done:
			a.event(RepairEvent{Step: StepRebuild, Target: target, Status: StatusSkipped, SQL: r.SQL, Error: "already rebuilt by this run"})
			rebuilt = append(rebuilt, r)
			continue
		case failedDedupe[r.root]:
			a.event(RepairEvent{Step: StepRebuild, Target: target, Status: StatusSkipped, SQL: r.SQL, Error: "its duplicates could not be resolved"})
			a.res.Failed = append(a.res.Failed, target+": not rebuilt, duplicates remain")
			continue
		case !r.Concurrent && !a.opts.Blocking:
			a.event(RepairEvent{Step: StepRebuild, Target: target, Status: StatusSkipped, SQL: r.SQL, Error: "needs --blocking"})
			continue
		}
		if err := a.rebuild(ctx, r, plan); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		rebuilt = append(rebuilt, r)
	}

	if err := a.verify(ctx, plan, rebuilt); err != nil {
		return err
	}
	a.res.Pending = plan.Decisions(a.opts)
	if len(a.res.Failed) > 0 || len(a.res.Pending) > 0 || len(a.res.Verify) > 0 {
		_, err := a.conn.Exec(ctx, `UPDATE ringfence.repair_run SET status = 'incomplete' WHERE id = $1`, a.run)
		if err != nil {
			return fmt.Errorf("record repair run: %w", err)
		}
		return nil
	}
	for _, sql := range plan.Refresh {
		err := a.step(ctx, StepRefresh, sql, sql, func(ctx context.Context) (int64, error) {
			_, err := a.conn.Exec(ctx, sql)
			return 0, err
		})
		if err != nil {
			return err
		}
	}
	if plan.Baseline {
		if err := a.recordBaseline(ctx); err != nil {
			return err
		}
	}
	if _, err := a.conn.Exec(ctx, `UPDATE ringfence.repair_run SET status = 'done', finished_at = now() WHERE id = $1`, a.run); err != nil {
		return fmt.Errorf("record repair run: %w", err)
	}
	a.res.Finished = true
	return nil
}

// event records e in the result and reports it.
func (a *applier) event(e RepairEvent) {
	if e.Status != StatusStarted && e.Status != StatusRetry {
		a.res.Events = append(a.res.Events, e)
	}
	if a.opts.Progress != nil {
		a.opts.Progress(Progress{Database: a.conn.Config().Database, Event: &e})
	}
}

// journal appends a row to ringfence.repair_log through q (the session or
// the transaction the action ran in).
func (a *applier) journal(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, e RepairEvent) error {
	var rows *int64
	if e.Rows != 0 {
		rows = &e.Rows
	}
	var errText *string
	if e.Error != "" {
		errText = &e.Error
	}
	_, err := q.Exec(ctx, `INSERT INTO ringfence.repair_log (run_id, step, target, status, sql, rows, attempt, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, a.run, e.Step, e.Target, e.Status, e.SQL, rows, e.Attempt, errText)
	if err != nil {
		return fmt.Errorf("write repair journal: %w", err)
	}
	return nil
}

// step runs one action with retries on lock timeouts, deadlocks and
// serialization failures, journaling its start and outcome. fn returns the
// rows it changed.
func (a *applier) step(ctx context.Context, step RepairStep, target, sql string, fn func(context.Context) (int64, error)) error {
	return a.stepWithRecovery(ctx, step, target, sql, fn, nil)
}

// stepWithRecovery is step with a recovery hook, run after every failed
// attempt; it returns whether another attempt is worth making even for an
// error that is not transient.
func (a *applier) stepWithRecovery(ctx context.Context, step RepairStep, target, sql string,
	fn func(context.Context) (int64, error), recoverFn func(context.Context, error) bool) error {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		ev := RepairEvent{Step: step, Target: target, SQL: sql, Attempt: attempt, Status: StatusStarted}
		if err := a.journal(ctx, a.conn, ev); err != nil {
			return err
		}
		a.event(ev)
		n, err := fn(ctx)
		ev.Elapsed = Duration(time.Since(start))
		if err == nil {
			ev.Status, ev.Rows = StatusDone, n
			if step == StepDedupe || step == StepReroute {
				// The transaction that changed the rows already journaled
				// their completion.
				a.event(ev)
				return nil
			}
			if jerr := a.journal(ctx, a.conn, ev); jerr != nil {
				return jerr
			}
			a.event(ev)
			return nil
		}
		ev.Error = err.Error()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		again := transient(err)
		if recoverFn != nil && recoverFn(ctx, err) {
			again = true
		}
		if again && attempt < a.opts.Attempts {
			ev.Status = StatusRetry
			if jerr := a.journal(ctx, a.conn, ev); jerr != nil {
				return jerr
			}
			a.event(ev)
			if err := sleep(ctx, backoff(a.opts.RetryWait, attempt)); err != nil {
				return err
			}
			continue
		}
		ev.Status = StatusFailed
		if jerr := a.journal(ctx, a.conn, ev); jerr != nil {
			return jerr
		}
		a.event(ev)
		a.res.Failed = append(a.res.Failed, fmt.Sprintf("%s %s: %v", step, target, err))
		return fmt.Errorf("%s %s: %w", step, target, err)
	}
}

// transient reports whether err is worth retrying: a lock wait that hit
// lock_timeout (55P03), a deadlock (40P01), a serialization failure, rows
// that changed under a dedupe, or old transactions a rebuild would wait for.
func transient(err error) bool {
	if errors.Is(err, errRowsChanged) || errors.Is(err, errOldTransactions) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "55P03", "40P01", "40001":
		return true
	}
	return false
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// backoff is the wait before attempt+1: base doubled per attempt, capped at
// a minute, with ±25% jitter so that retries of several repairs spread out.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d > time.Minute || d <= 0 {
		d = time.Minute
	}
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errRowsChanged reports that rows picked for removal no longer hold the key
// they were picked for; the dedupe is rolled back and tried again.
var errRowsChanged = errors.New("rows picked for removal changed before they were deleted")

// dedupe resolves idx's duplicates by rule in one REPEATABLE READ
// transaction: it picks the rows to remove with a sequential scan, deletes
// them by ctid, each only if it still holds the key it was picked for, and
// copies exactly the deleted rows into the quarantine, and journals the
// deletion. The snapshot cannot lose sight of a picked row, so its ctid
// cannot be reused under it; a row updated or deleted concurrently makes
// the DELETE fail with a serialization failure, and the whole dedupe is
// tried again on fresh data. A group with no single row to keep (its best
// value is NULL or shared) fails the step and changes nothing.
func (a *applier) dedupe(ctx context.Context, idx UniqueIndex, rule DedupeRule) error {
	pick := victimsSQL(idx, rule)
	return a.step(ctx, StepDedupe, idx.QualifiedName(), pick, func(ctx context.Context) (int64, error) {
		var total int64
		err := pgx.BeginTxFunc(ctx, a.conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
			if err := seqScanOnly(ctx, tx); err != nil {
				return err
			}
			leaves, err := pickVictims(ctx, tx, pick)
			if err != nil {
				return err
			}
			if a.opts.afterPick != nil {
				a.opts.afterPick()
			}
			if len(leaves) > 0 && leaves[0].ambiguous > 0 {
				return fmt.Errorf("%d duplicated key(s) have no single row to keep by %s: %s", leaves[0].ambiguous, rule, ambiguityHint)
			}
			sql := deleteDuplicatesSQL(idx)
			for _, l := range leaves {
				if l.name == "" {
					continue // only the ambiguity count: nothing to remove
				}
				// Batches keep each journaled statement's parameters
				// bounded; they all commit or roll back together.
				for i := 0; i < len(l.ctids); i += dedupeBatch {
					j := min(i+dedupeBatch, len(l.ctids))
					tag, err := tx.Exec(ctx, fmt.Sprintf(sql, l.name), l.ctids[i:j], l.keys[i:j],
						a.run, string(KindDuplicateKey), QuarantineDeleted, l.name, idx.QualifiedTable(), idx.QualifiedName())
					if err != nil {
						return fmt.Errorf("remove duplicates from %s: %w", l.name, err)
					}
					if n := tag.RowsAffected(); n != int64(j-i) {
						return fmt.Errorf("remove duplicates from %s: %d of %d row(s) deleted: %w", l.name, n, j-i, errRowsChanged)
					}
					total += int64(j - i)
					journaled := fmt.Sprintf(sql, l.name) + fmt.Sprintf("\n-- $1: %d ctid(s); the rows are in the quarantine", j-i)
					if err := a.journal(ctx, tx, RepairEvent{Step: StepDedupe, Target: idx.QualifiedName(), Status: StatusDone,
						SQL: journaled, Rows: int64(j - i)}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil {
			a.res.Deleted += total
		}
		return total, err
	})
}

// reroute moves v's misplaced rows through the partitioned root in one
// statement, copying each into the quarantine first.
func (a *applier) reroute(ctx context.Context, v PartitionViolation) error {
	sql := v.reroute(a.run)
	target := QuoteIdent(v.Schema, v.Partition)
	return a.step(ctx, StepReroute, target, sql, func(ctx context.Context) (int64, error) {
		var n int64
		err := pgx.BeginTxFunc(ctx, a.conn, pgx.TxOptions{}, func(tx pgx.Tx) error {
			if err := seqScanOnly(ctx, tx); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sql)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			return a.journal(ctx, tx, RepairEvent{Step: StepReroute, Target: target, Status: StatusDone, SQL: sql, Rows: n})
		})
		if err == nil {
			a.res.Moved += n
		}
		return n, err
	})
}

// rebuild reindexes r. A failed REINDEX CONCURRENTLY leaves an invalid
// copy (*_ccnew) behind: it is dropped after every failed attempt. A
// unique violation (new duplicates arrived through the still-corrupt index
// since the dedupe) is resolved again when a rule exists, then retried.
func (a *applier) rebuild(ctx context.Context, r PlannedRebuild, plan *RepairPlan) error {
	var rule *DedupeRule
	var idx UniqueIndex
	for _, d := range plan.Duplicates {
		if d.Index.OID == r.root {
			rule, idx = d.Rule, d.Index
		}
	}
	if rule == nil {
		// No duplicates were planned for this index; new ones may still
		// appear: resolve them with the table's rule if there is one.
		if rr := ruleFor(a.opts.Dedupe, r.Schema, r.Table); rr != nil {
			if u, err := loadUniqueIndexes(ctx, a.conn, []uint32{r.root}); err == nil && len(u) == 1 {
				if problem, err := dedupeProblem(ctx, a.conn, u[0], *rr, a.opts.AllowTriggers); err == nil && problem == "" {
					rule, idx = rr, u[0]
				}
			}
		}
	}
	recoverFn := func(ctx context.Context, err error) bool {
		if r.Concurrent {
			if derr := a.dropLeftoversOf(ctx, r); derr != nil {
				return false
			}
		}
		if sqlState(err) == "23505" && rule != nil {
			return a.dedupe(ctx, idx, *rule) == nil
		}
		return false
	}
	return a.stepWithRecovery(ctx, StepRebuild, r.QualifiedName(), r.SQL, func(ctx context.Context) (int64, error) {
		settings := []string{"SET statement_timeout = " + fmt.Sprint(a.opts.RebuildTimeout.Milliseconds())}
		if r.Concurrent {
			if err := a.noOldTransactions(ctx); err != nil {
				return 0, err
			}
			settings = append(settings, "SET lock_timeout = "+fmt.Sprint(a.opts.RebuildLockTimeout.Milliseconds()))
		}
		for _, set := range settings {
			if _, err := a.conn.Exec(ctx, set); err != nil {
				return 0, fmt.Errorf("prepare the rebuild: %w", err)
			}
		}
		_, err := a.conn.Exec(ctx, r.SQL)
		// Back to the session's bounds (set when it connected).
		for _, reset := range []string{"RESET statement_timeout", "RESET lock_timeout"} {
			if _, rerr := a.conn.Exec(ctx, reset); rerr != nil && err == nil {
				err = rerr
			}
		}
		return 0, err
	}, recoverFn)
}

// errOldTransactions is returned, instead of starting a REINDEX
// CONCURRENTLY, while transactions it would wait for have been open for
// longer than the rebuild's lock_timeout: the rebuild would most likely
// build the whole index, time out waiting and throw it away. It is retried.
var errOldTransactions = errors.New("transactions open for longer than the rebuild lock timeout")

// noOldTransactions returns errOldTransactions, naming them, if other
// sessions in this database hold a snapshot or a transaction ID in a
// transaction open for longer than RebuildLockTimeout.
func (a *applier) noOldTransactions(ctx context.Context) error {
	var old []string
	err := a.conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(format('pid %s (%s, open since %s)', pid, state, xact_start) ORDER BY xact_start), '{}')
		  FROM pg_stat_activity
		 WHERE datname = current_database() AND pid <> pg_backend_pid()
		   AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
		   AND xact_start < now() - $1 * interval '1 millisecond'`, a.opts.RebuildLockTimeout.Milliseconds()).Scan(&old)
	if err != nil {
		return fmt.Errorf("look for old transactions: %w", err)
	}
	if len(old) > 0 {
		return fmt.Errorf("%w (%s): not started, since it would wait for them", errOldTransactions, strings.Join(old, ", "))
	}
	return nil
}

// dropLeftoversOf drops the invalid *_ccnew / *_ccold copies a failed
// REINDEX CONCURRENTLY of r left on its table.
func (a *applier) dropLeftoversOf(ctx context.Context, r PlannedRebuild) error {
	rows, err := a.conn.Query(ctx, `
		SELECT c.relname::text
		  FROM pg_index i
		  JOIN pg_class c ON c.oid = i.indexrelid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_class t ON t.oid = i.indrelid
		 WHERE NOT i.indisvalid AND n.nspname = $1 AND t.relname = $2
		   AND `+leftoverSQL+` AND starts_with(c.relname, left($3, 40))`,
		r.Schema, r.Table, r.Name)
	if err != nil {
		return fmt.Errorf("find leftovers of %s: %w", r.QualifiedName(), err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find leftovers of %s: %w", r.QualifiedName(), err)
	}
	for _, relname := range names {
		name := QuoteIdent(r.Schema, relname)
		sql := "DROP INDEX CONCURRENTLY IF EXISTS " + name
		err := a.step(ctx, StepDropLeftover, name, sql, func(ctx context.Context) (int64, error) {
			_, err := a.conn.Exec(ctx, sql)
			return 0, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// verify re-reads the database: no duplicates under the unique indexes
// rebuilt, and pg check (amcheck with heapallindexed on every
// collation-dependent index, partition bounds, CHECK constraints) clean
// apart from the collation version and fingerprint findings that the
// refresh step resolves.
func (a *applier) verify(ctx context.Context, plan *RepairPlan, rebuilt []PlannedRebuild) error {
	start := time.Now()
	ev := RepairEvent{Step: StepVerify, Target: plan.Database, Status: StatusStarted,
		SQL: "pg check --scope collation --heapallindexed; duplicate search with index scans off"}
	if err := a.journal(ctx, a.conn, ev); err != nil {
		return err
	}
	a.event(ev)
	var roots []uint32
	seen := map[uint32]bool{}
	for _, r := range rebuilt {
		if !seen[r.root] {
			seen[r.root] = true
			roots = append(roots, r.root)
		}
	}
	uniq, err := uniqueOnly(ctx, a.conn, roots)
	if err != nil {
		return err
	}
	indexes, err := loadUniqueIndexes(ctx, a.conn, uniq)
	if err != nil {
		return err
	}
	rep := &DatabaseDuplicates{Database: plan.Database}
	for _, idx := range indexes {
		d, err := searchDuplicates(ctx, a.conn, idx, 1)
		if err != nil {
			return err
		}
		rep.Indexes = append(rep.Indexes, *d)
	}
	a.res.Verify = append(a.res.Verify, rep.Findings()...)

	if err := a.ensureAmcheck(ctx); err != nil {
		return err
	}
	filter := Filter{ExcludeCatalogs: true}
	if len(a.opts.Indexes) > 0 {
		// A repair limited to some indexes verifies those.
		filter.Indexes = []string{}
		for _, r := range rebuilt {
			filter.Indexes = append(filter.Indexes, globEscape(r.Schema)+"."+globEscape(r.Name))
		}
	}
	check := &CheckReport{}
	if len(a.opts.Indexes) == 0 || len(filter.Indexes) > 0 {
		// (A repair limited to indexes it did not rebuild has none to verify.)
		if check, err = Check(ctx, a.srv, CheckOptions{Scope: ScopeCollation, HeapAllIndexed: true, Filter: filter}); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	for _, f := range check.Findings {
		switch f.Kind {
		case KindCollationVersionMismatch, KindCollationChanged:
			// What the refresh step resolves once everything else is clean.
		default:
			a.res.Verify = append(a.res.Verify, f)
		}
	}
	for _, s := range check.Skipped {
		if s.Error {
			a.res.Verify = append(a.res.Verify, Finding{Kind: KindIndexCorrupt, Database: s.Database, Schema: s.Schema,
				Object: s.Object, Detail: "could not be verified: " + s.Reason})
		}
	}
	ev.Status, ev.Elapsed = StatusDone, Duration(time.Since(start))
	if len(a.res.Verify) > 0 {
		ev.Status, ev.Error = StatusFailed, fmt.Sprintf("%d finding(s) after repair", len(a.res.Verify))
	}
	a.event(ev)
	return a.journal(ctx, a.conn, ev)
}

// atRiskDamaged runs pg check on the indexes at risk (amcheck, partition
// bounds, CHECK constraints, fingerprints against a recorded baseline) and
// reports whether it found anything. A check that could not be completed
// is an error: nothing is decided on an incomplete answer.
func atRiskDamaged(ctx context.Context, srv *Target) (bool, *Checked, error) {
	rep, err := Check(ctx, srv.WithOptions(ConnOptions{ReadWrite: false}),
		CheckOptions{Scope: ScopeCollation, Filter: Filter{ExcludeCatalogs: true}})
	if errors.Is(err, ErrNoAmcheck) {
		return false, nil, optionErrorf(ErrNoAmcheck, "the plan found nothing wrong, and only amcheck can tell whether the indexes at risk are damaged, "+
			"but %s in database %q: CREATE EXTENSION amcheck (or run pg check {{CheckOptions.InstallMissing}} once) and repair again, "+
			"or rebuild them all with {{RequireFindings=false}}; nothing was changed",
			ErrNoAmcheck, srv.Database())
	}
	if err != nil {
		return false, nil, fmt.Errorf("check the indexes at risk: %w", err)
	}
	for _, s := range rep.Skipped {
		if s.Error {
			return false, nil, optionErrorf(nil, "check the indexes at risk: %s.%s could not be checked (%s): nothing was changed; run again, or rebuild them all with {{RequireFindings=false}}",
				s.Schema, s.Object, s.Reason)
		}
	}
	return len(rep.Findings) > 0, &rep.Checked, nil
}

// ensureAmcheck installs the amcheck extension if the database lacks it
// (journaled like every other change).
func (a *applier) ensureAmcheck(ctx context.Context) error {
	var installed bool
	if err := a.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck')").Scan(&installed); err != nil {
		return fmt.Errorf("look for amcheck: %w", err)
	}
	if installed {
		return nil
	}
	sql := "CREATE EXTENSION IF NOT EXISTS amcheck"
	return a.step(ctx, StepInstall, "amcheck", sql, func(ctx context.Context) (int64, error) {
		_, err := a.conn.Exec(ctx, sql)
		return 0, err
	})
}

// recordBaseline replaces the database's collation baseline with the
// fingerprints of the current order: the indexes now follow it, so it is
// the order later checks must compare with.
func (a *applier) recordBaseline(ctx context.Context) error {
	return a.step(ctx, StepBaseline, BaselineTable, "ringfence pg fingerprint --record", func(ctx context.Context) (int64, error) {
		return 0, RecordFingerprints(ctx, a.conn)
	})
}

// globEscape quotes the path.Match metacharacters in a name.
func globEscape(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
