package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

func pgRepairCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "repair",
		Usage:     "plan (default) or --apply the repair of a database after a collation change",
		ArgsUsage: "[DSN]",
		Description: "Without --apply, prints the plan and changes nothing: leftover invalid indexes\n" +
			"to drop, duplicates and which rebuild they block, rows outside their partition's\n" +
			"bounds, violated CHECK constraints, the indexes to rebuild in order, and the\n" +
			"collation-version refresh at the end.\n" +
			"\n" +
			"With --apply: duplicates stop the repair unless a --dedupe rule covers their\n" +
			"table; every row removed or moved is first copied into ringfence.quarantine\n" +
			"(in the same transaction); indexes are rebuilt with REINDEX INDEX CONCURRENTLY\n" +
			"under lock_timeout with retries; collation versions are refreshed only when\n" +
			"everything succeeded and a final pg check is clean. Every action is journaled\n" +
			"with its SQL in ringfence.repair_log; an interrupted repair is resumed by\n" +
			"running it again. Only one repair runs per database (advisory lock).\n" +
			"\n" +
			"--dedupe RULE is [TABLE=]keep-newest:COLUMN, [TABLE=]keep-oldest:COLUMN or\n" +
			"[TABLE=]keep-one (keeps the row with the lowest ctid: for tables with no timestamp\n" +
			"or unique tiebreaker, such as a duplicated text primary key).\n" +
			"When nothing is found wrong (no duplicates, misplaced rows, leftovers or stale\n" +
			"versions, amcheck clean, fingerprints unchanged) --apply changes nothing; rebuild\n" +
			"the indexes at risk anyway with --rebuild-at-risk.\n" +
			"Exit codes: dry run 0 when it found no problem, 1 when it did; --apply 0 when repaired clean, 1 when\n" +
			"work is left (stopped, pending decision, failure); 2 could not run.",
		Flags: append(connFlags(),
			&ucli.BoolFlag{Name: "apply", Usage: "carry out the plan (default: dry run)"},
			&ucli.StringSliceFlag{Name: "index", Aliases: []string{"i"}, Usage: "repair only index or constraint `NAME`"},
			&ucli.StringSliceFlag{Name: "dedupe", Usage: "resolve duplicates by `RULE`: [TABLE=]keep-newest:COLUMN, [TABLE=]keep-oldest:COLUMN or [TABLE=]keep-one"},
			&ucli.BoolFlag{Name: "rebuild-at-risk", Usage: "with --apply, rebuild every index at risk even when nothing is found wrong (otherwise such a repair changes nothing)"},
			&ucli.BoolFlag{Name: "reroute-partitions", Usage: "move rows outside their partition's bounds to the right partition"},
			&ucli.BoolFlag{Name: "blocking", Usage: "allow a plain REINDEX (blocks writes) where CONCURRENTLY is impossible: exclusion constraints"},
			&ucli.BoolFlag{Name: "allow-triggers", Usage: "let the dedupe and the re-route fire the tables' user triggers and rules"},
			&ucli.IntFlag{Name: "attempts", Value: 5, Usage: "tries per step on lock timeouts and deadlocks"},
			&durationFlag{Name: "retry-wait", Value: time.Second, Usage: "first wait between tries (doubles, up to a minute)"},
			&durationFlag{Name: "rebuild-timeout", Usage: "bound on each REINDEX (0: none; lock waits stay bounded by --lock-timeout)"},
			&durationFlag{Name: "rebuild-lock-timeout", Value: 5 * time.Minute, Usage: "lock_timeout of each REINDEX CONCURRENTLY, whose waits for older transactions come after the build; not started while a transaction older than this is open"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines"},
			jsonFlag,
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			opts := pgcheck.RepairOptions{
				Indexes:            cmd.StringSlice("index"),
				ReroutePartitions:  cmd.Bool("reroute-partitions"),
				RequireFindings:    !cmd.Bool("rebuild-at-risk"),
				Blocking:           cmd.Bool("blocking"),
				AllowTriggers:      cmd.Bool("allow-triggers"),
				Attempts:           cmd.Int("attempts"),
				RetryWait:          cmd.Duration("retry-wait"),
				RebuildTimeout:     cmd.Duration("rebuild-timeout"),
				RebuildLockTimeout: cmd.Duration("rebuild-lock-timeout"),
			}
			if opts.Attempts < 1 {
				return withCode(ExitError, errors.New("--attempts must be at least 1"))
			}
			for _, s := range cmd.StringSlice("dedupe") {
				r, err := pgcheck.ParseDedupeRule(s)
				if err != nil {
					return withCode(ExitError, err)
				}
				opts.Dedupe = append(opts.Dedupe, r)
			}
			srv, err := openServer(cmd, false)
			if err != nil {
				return err
			}
			opts.Apply = cmd.Bool("apply")
			if opts.Apply && !cmd.Bool("quiet") {
				opts.Progress = func(p pgcheck.Progress) { printRepairEvent(stderr, *p.Event) }
			}
			rep, err := pgcheck.Repair(ctx, srv, opts)
			err = optionError(err)
			if err != nil && opts.Apply && ctx.Err() == nil {
				return privilegeError(err, srv, repairGrantHint)
			}
			if err != nil {
				return repairError(ctx, err)
			}
			if cmd.Bool("json") {
				if err := writeReport(stdout, rep); err != nil {
					return err
				}
			} else if rep.Result == nil {
				printRepairPlan(stdout, rep.Plan, opts)
			} else {
				printRepairResult(stdout, rep.Result, opts)
			}
			switch {
			case rep.Result == nil && rep.Plan.FoundProblems(), rep.Result != nil && !rep.Result.Clean():
				return errFindings
			}
			return nil
		},
	}
}

func repairError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return withCode(ExitError, fmt.Errorf("repair interrupted (run it again to resume): %w", context.Cause(ctx)))
	}
	return withCode(ExitError, err)
}

// printRepairEvent prints one progress line per action outcome.
func printRepairEvent(w io.Writer, e pgcheck.RepairEvent) {
	switch e.Status {
	case pgcheck.StatusStarted:
		fmt.Fprintf(w, "repair: %s %s: %s\n", e.Step, e.Target, oneLine(e.SQL))
	case pgcheck.StatusDone:
		rows := ""
		if e.Rows > 0 {
			rows = fmt.Sprintf(", %d row(s)", e.Rows)
		}
		fmt.Fprintf(w, "repair: %s %s: done in %.2fs%s\n", e.Step, e.Target, time.Duration(e.Elapsed).Seconds(), rows)
	case pgcheck.StatusRetry:
		fmt.Fprintf(w, "repair: %s %s: attempt %d failed, retrying: %s\n", e.Step, e.Target, e.Attempt, e.Error)
	case pgcheck.StatusSkipped:
		fmt.Fprintf(w, "repair: %s %s: skipped: %s\n", e.Step, e.Target, e.Error)
	case pgcheck.StatusFailed:
		fmt.Fprintf(w, "repair: %s %s: FAILED: %s\n", e.Step, e.Target, e.Error)
	}
}

// oneLine squeezes an SQL statement's whitespace for a log line, cut at
// 300 characters (the journal keeps it whole).
func oneLine(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

func printRepairPlan(w io.Writer, p *pgcheck.RepairPlan, opts pgcheck.RepairOptions) {
	fmt.Fprintf(w, "Repair plan for database %s (dry run: nothing was changed; run with --apply to carry it out)\n", p.Database)
	if !p.FoundProblems() && len(p.Rebuilds) > 0 && len(opts.Indexes) == 0 {
		fmt.Fprintln(w, "no problems found by the plan. --apply first runs amcheck on the indexes at risk and compares the\n"+
			"collation fingerprints, and rebuilds them only if that finds something; --rebuild-at-risk rebuilds them anyway.")
	}
	if p.ResumeRun != "" {
		done := 0
		for _, r := range p.Rebuilds {
			if r.Done {
				done++
			}
		}
		fmt.Fprintf(w, "An interrupted repair run %s will be resumed: %d rebuild(s) already done.\n", p.ResumeRun, done)
	}

	fmt.Fprintln(w, "\n1. Drop leftover invalid indexes of failed REINDEX CONCURRENTLY runs:")
	leftovers := 0
	for _, ii := range p.Invalid {
		if ii.Leftover {
			leftovers++
			fmt.Fprintf(w, "     %s\n", ii.SQL)
		}
	}
	if leftovers == 0 {
		fmt.Fprintln(w, "     none")
	}
	for _, ii := range p.Invalid {
		if !ii.Leftover {
			fmt.Fprintf(w, "   left alone (invalid, not a REINDEX leftover; rebuild or drop it yourself): %s.%s on %s\n", ii.Schema, ii.Name, ii.Table)
		}
	}

	fmt.Fprintln(w, "\n2. Resolve duplicates (each blocks the rebuild of its index):")
	if len(p.Duplicates) == 0 {
		fmt.Fprintln(w, "     none")
	}
	for _, d := range p.Duplicates {
		switch {
		case d.Resolvable():
			fmt.Fprintf(w, "   rule %s: remove %d row(s) into ringfence.quarantine", d.Rule, d.ExcessRows)
		case d.Problem != "":
			fmt.Fprintf(w, "   BLOCKS THE REPAIR: %s", d.Problem)
		default:
			fmt.Fprint(w, "   BLOCKS THE REPAIR: no --dedupe rule covers this table (--dedupe TABLE=keep-newest:COLUMN, keep-oldest:COLUMN or keep-one)")
		}
		printIndexDuplicates(w, d.IndexDuplicates, "   ")
	}

	fmt.Fprintln(w, "\n3. Rows outside their partition's bounds (invisible to queries that prune partitions):")
	if len(p.Partitions) == 0 {
		fmt.Fprintln(w, "     none")
	}
	for _, v := range p.Partitions {
		fmt.Fprintf(w, "     %s.%s: %d row(s)", v.Schema, v.Partition, v.Rows)
		if opts.ReroutePartitions && v.Problem == "" {
			fmt.Fprintf(w, " -> re-routed through %s (copied to ringfence.quarantine first)\n", v.Root)
			continue
		}
		if v.Problem != "" {
			fmt.Fprintf(w, " -> the repair does not move them (%s); by hand:\n", v.Problem)
		} else {
			fmt.Fprintf(w, " -> needs a decision: --reroute-partitions, or by hand:\n")
		}
		fmt.Fprintf(w, "        list:  %s;\n", v.ListSQL)
		fmt.Fprintf(w, "        move:  BEGIN;\n")
		for _, set := range pgcheck.SeqScanSettings() {
			fmt.Fprintf(w, "               %s;\n", set)
		}
		fmt.Fprintf(w, "               %s;\n", v.CopySQL)
		fmt.Fprintf(w, "               %s;\n               COMMIT;\n", v.RerouteSQL)
	}

	fmt.Fprintln(w, "\n4. CHECK constraints violated by stored rows (the operator decides the right values):")
	if len(p.Checks) == 0 {
		fmt.Fprintln(w, "     none")
	}
	for _, c := range p.Checks {
		fmt.Fprintf(w, "     %s on %s.%s: %d row(s) violate CHECK (%s)\n        list: %s;\n",
			c.Constraint, c.Schema, c.Table, c.Rows, c.Expression, c.ListSQL)
	}

	fmt.Fprintln(w, "\n5. Rebuild indexes, in this order (unique ones first, then smallest first):")
	if len(p.Rebuilds) == 0 {
		fmt.Fprintln(w, "     none")
	}
	for i, r := range p.Rebuilds {
		var notes []string
		notes = append(notes, r.Type, humanBytes(r.Bytes))
		if r.Done {
			notes = append(notes, "already done by the interrupted run")
		}
		if r.BlockedBy != "" {
			notes = append(notes, "blocked by "+r.BlockedBy)
		}
		if !r.Concurrent && !opts.Blocking {
			notes = append(notes, "cannot run CONCURRENTLY: needs --blocking (blocks writes while it runs)")
		}
		fmt.Fprintf(w, "   %2d. %s  (%s)\n", i+1, r.SQL, strings.Join(notes, "; "))
	}

	fmt.Fprintln(w, "\n6. Verify: duplicate search and pg check --scope collation --heapallindexed must be clean.")
	fmt.Fprintln(w, "\n7. Then, and only if everything above succeeded, refresh the collation versions:")
	if len(p.Refresh) == 0 {
		fmt.Fprintln(w, "     none needed: PostgreSQL's recorded versions match (the change was invisible to it)")
	}
	for _, s := range p.Refresh {
		fmt.Fprintf(w, "     %s\n", s)
	}
	if p.Baseline {
		fmt.Fprintln(w, "     and record the collation fingerprint baseline again")
	}
	for _, o := range p.System {
		fmt.Fprintf(w, "\nnot touched: system catalog %s %s.%s is at risk (REINDEX SYSTEM is your decision)\n", o.Type, o.Schema, o.Object)
	}

	if b := p.Blockers(); len(b) > 0 {
		fmt.Fprintln(w, "\n--apply would stop before changing anything:")
		for _, s := range b {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	if d := p.Decisions(opts); len(d) > 0 {
		fmt.Fprintln(w, "\nLeft to the operator (collation versions stay unrefreshed until resolved):")
		for _, s := range d {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
}

func printRepairResult(w io.Writer, r *pgcheck.RepairResult, opts pgcheck.RepairOptions) {
	if len(r.Stopped) > 0 {
		fmt.Fprintf(w, "Repair of database %s stopped before changing anything: duplicates need a --dedupe rule.\n", r.Plan.Database)
		for _, s := range r.Stopped {
			fmt.Fprintf(w, "  - %s\n", s)
		}
		for _, d := range r.Plan.Duplicates {
			if !d.Resolvable() {
				printIndexDuplicates(w, d.IndexDuplicates, "  ")
			}
		}
		fmt.Fprintf(w, "\nChoose the row to keep per table with --dedupe %s,\n"+
			"e.g. --dedupe users=keep-newest:updated_at or --dedupe public.tags=keep-one; removed rows go to ringfence.quarantine.\n", pgcheck.DedupeSyntax)
		return
	}
	if r.NothingFound && r.Verified != nil {
		fmt.Fprintf(w, "Nothing found wrong in database %s: no duplicates, misplaced rows or leftovers, amcheck clean on %d index(es) at risk",
			r.Plan.Database, r.Verified.Indexes)
		if r.Verified.Fingerprint {
			fmt.Fprint(w, ", collation fingerprints unchanged")
		}
		fmt.Fprintf(w, ".\nNothing was changed. To rebuild the %d index(es) at risk anyway, run again with --rebuild-at-risk.\n", len(r.Plan.Rebuilds))
		return
	}
	if r.RunID == "" {
		fmt.Fprintf(w, "Nothing to repair in database %s: no index, partition or constraint depends on a collation that can change.\n", r.Plan.Database)
		return
	}
	resumed := ""
	if r.Resumed {
		resumed = " (resumed)"
	}
	done, failed, skipped := 0, 0, 0
	for _, e := range r.Events {
		switch e.Status {
		case pgcheck.StatusDone:
			done++
		case pgcheck.StatusFailed:
			failed++
		case pgcheck.StatusSkipped:
			skipped++
		}
	}
	fmt.Fprintf(w, "Repair run %s%s of database %s: %d action(s) done, %d skipped, %d failed\n",
		r.RunID, resumed, r.Plan.Database, done, skipped, failed)
	fmt.Fprintf(w, "  rows deleted into ringfence.quarantine: %d; rows moved to their partition (copy kept): %d\n", r.Deleted, r.Moved)
	if r.Resumed {
		fmt.Fprintf(w, "  whole run, interrupted parts included: %d deleted, %d moved\n", r.RunDeleted, r.RunMoved)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "  FAILED: %s\n", f)
	}
	if len(r.Verify) == 0 {
		fmt.Fprintln(w, "  verification: no duplicates, pg check clean")
	} else {
		fmt.Fprintf(w, "  verification found %d problem(s):\n", len(r.Verify))
		for _, f := range r.Verify {
			printFinding(w, f)
		}
	}
	for _, p := range r.Pending {
		fmt.Fprintf(w, "  left to the operator: %s\n", p)
	}
	if r.Finished {
		if len(r.Plan.Refresh) > 0 {
			fmt.Fprintf(w, "  collation versions refreshed (%d statement(s))\n", len(r.Plan.Refresh))
		}
		fmt.Fprintln(w, "  finished: the database is repaired")
		return
	}
	fmt.Fprintln(w, "  NOT finished: collation versions were not refreshed; resolve the above and run the repair again (it resumes this run)")
}
