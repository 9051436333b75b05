package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

func pgCheckCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "check",
		Usage:     "verify B-tree indexes (amcheck), heap, partition bounds and CHECK constraints",
		ArgsUsage: "[DSN]",
		Description: "Runs amcheck's bt_index_check on every valid B-tree index (system catalogs\n" +
			"included unless --exclude-catalogs), verify_heapam with --heap, and scans for\n" +
			"rows that a collation change left outside their partition or CHECK constraint.\n" +
			"Read-only; never a lock stronger than AccessShareLock unless --parent-check.\n" +
			"Patterns are shell globs on the name, or on schema.name when they contain a dot.\n" +
			"Exit codes: 0 nothing found, 1 findings, 2 could not check.",
		Flags: append(connFlags(),
			&ucli.BoolFlag{Name: "all-databases", Aliases: []string{"a"}, Usage: "check every database that accepts connections"},
			&ucli.StringFlag{Name: "scope", Value: "all", Usage: "all, or collation: only objects that depend on a non-C collation"},
			&ucli.BoolFlag{Name: "parent-check", Usage: "use bt_index_parent_check (takes ShareLock: blocks writes; not on a standby)"},
			&ucli.BoolFlag{Name: "heapallindexed", Usage: "also verify every heap tuple has an index entry"},
			&ucli.BoolFlag{Name: "heap", Usage: "also run verify_heapam on tables, materialized views and TOAST"},
			&ucli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, Usage: "concurrent sessions"},
			&ucli.StringSliceFlag{Name: "schema", Aliases: []string{"s"}, Usage: "only schemas matching `PATTERN`"},
			&ucli.StringSliceFlag{Name: "exclude-schema", Aliases: []string{"S"}, Usage: "skip schemas matching `PATTERN`"},
			&ucli.StringSliceFlag{Name: "table", Aliases: []string{"t"}, Usage: "only tables matching `PATTERN`"},
			&ucli.StringSliceFlag{Name: "exclude-table", Aliases: []string{"T"}, Usage: "skip tables matching `PATTERN`"},
			&ucli.StringSliceFlag{Name: "index", Aliases: []string{"i"}, Usage: "only indexes matching `PATTERN`"},
			&ucli.StringSliceFlag{Name: "exclude-index", Aliases: []string{"I"}, Usage: "skip indexes matching `PATTERN`"},
			&ucli.BoolFlag{Name: "exclude-catalogs", Usage: "skip pg_catalog, pg_toast and information_schema"},
			&ucli.BoolFlag{Name: "install-missing", Usage: "CREATE EXTENSION amcheck where it is missing"},
			&ucli.StringFlag{Name: "baseline", Usage: "compare collation fingerprints with baseline `FILE` (default: the database's ringfence schema, when recorded)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
			jsonFlag,
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			scope, err := pgcheck.ParseScope(cmd.String("scope"))
			if err != nil {
				return withCode(ExitError, err)
			}
			if cmd.Int("jobs") < 1 {
				return withCode(ExitError, errors.New("--jobs must be at least 1"))
			}
			srv, err := openServer(cmd, false)
			if err != nil {
				return err
			}
			progress := newProgressView(stderr, cmd.Int("jobs"), cmd.Bool("quiet"))
			rep, err := pgcheck.Check(ctx, srv, pgcheck.CheckOptions{
				AllDatabases:   cmd.Bool("all-databases"),
				Scope:          scope,
				ParentCheck:    cmd.Bool("parent-check"),
				HeapAllIndexed: cmd.Bool("heapallindexed"),
				Heap:           cmd.Bool("heap"),
				Jobs:           cmd.Int("jobs"),
				InstallMissing: cmd.Bool("install-missing"),
				BaselineFile:   cmd.String("baseline"),
				Filter: pgcheck.Filter{
					Schemas: cmd.StringSlice("schema"), ExcludeSchemas: cmd.StringSlice("exclude-schema"),
					Tables: cmd.StringSlice("table"), ExcludeTables: cmd.StringSlice("exclude-table"),
					Indexes: cmd.StringSlice("index"), ExcludeIndexes: cmd.StringSlice("exclude-index"),
					ExcludeCatalogs: cmd.Bool("exclude-catalogs"),
				},
				Progress: progress.Update,
			})
			progress.Close()
			if err != nil {
				if ctx.Err() != nil {
					return withCode(ExitError, fmt.Errorf("check interrupted: %w", context.Cause(ctx)))
				}
				return withCode(ExitError, optionError(err))
			}
			if cmd.Bool("json") {
				if err := writeJSON(stdout, rep); err != nil {
					return err
				}
			} else {
				printCheckReport(stdout, rep)
			}
			return checkExit(rep)
		},
	}
}

// checkExit maps a report to the exit code: findings 1; otherwise objects
// that could not be checked 2; otherwise 0.
func checkExit(rep *pgcheck.CheckReport) error {
	if len(rep.Findings) > 0 {
		return errFindings
	}
	for _, s := range rep.Skipped {
		if s.Error {
			return withCode(ExitError, errors.New("some objects could not be checked (see skipped)"))
		}
	}
	return nil
}

func printCheckReport(w io.Writer, rep *pgcheck.CheckReport) {
	role := "primary"
	if rep.Server.InRecovery {
		role = "standby"
	}
	c := rep.Checked
	fmt.Fprintf(w, "PostgreSQL %s (%s), database(s): %s", rep.Server.Version, role, strings.Join(rep.Databases, ", "))
	if c.Databases < len(rep.Databases) {
		fmt.Fprintf(w, " (%d of %d databases checked)", c.Databases, len(rep.Databases))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "checked %d B-tree indexes (%s)", c.Indexes, humanBytes(c.IndexBytes))
	if rep.Options.Heap {
		fmt.Fprintf(w, ", %d heap relations (%s)", c.HeapRelations, humanBytes(c.HeapBytes))
	}
	fmt.Fprintf(w, ", %d partitions, %d CHECK constraints, %d collations", c.Partitions, c.CheckConstraints, c.Collations)
	if c.Fingerprint {
		fmt.Fprint(w, ", collation fingerprints")
	}
	fmt.Fprintf(w, " in %.1fs (scope %s, %d jobs)\n", float64(rep.Duration)/1e9, rep.Options.Scope, rep.Options.Jobs)
	for _, s := range rep.Skipped {
		label := "skipped"
		if s.Error {
			label = "NOT CHECKED"
		}
		fmt.Fprintf(w, "%s: %s %s.%s: %s\n", label, s.Database, s.Schema, s.Object, s.Reason)
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintln(w, "no problems found")
		return
	}
	fmt.Fprintf(w, "\n%d finding(s):\n", len(rep.Findings))
	for _, f := range rep.Findings {
		printFinding(w, f)
	}
}

// printFinding prints one finding as a heading line and an indented detail.
func printFinding(w io.Writer, f pgcheck.Finding) {
	where := f.Schema + "." + f.Object
	if f.Schema == "" {
		where = f.Object
	}
	if f.Table != "" && f.Table != f.Object {
		where += " on " + f.Schema + "." + f.Table
	}
	fmt.Fprintf(w, "  %-28s %s  %s\n", f.Kind, f.Database, where)
	fmt.Fprintf(w, "      %s\n", f.Detail)
	for _, o := range f.AtRisk {
		fmt.Fprintf(w, "      at risk: %s %s.%s\n", o.Type, o.Schema, o.Object)
	}
}
