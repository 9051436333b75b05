package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// duplicateGroupsShown bounds the groups printed per index in the readable
// report; --json carries up to --max-groups.
const duplicateGroupsShown = 10

func pgDuplicatesCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "duplicates",
		Usage:     "find keys stored more than once under unique indexes (with index scans off)",
		ArgsUsage: "[DSN]",
		Description: "Searches every unique index and UNIQUE/PRIMARY KEY constraint whose keys depend\n" +
			"on a collation that can change (or the ones named with --index) for key groups\n" +
			"that violate it. Rows are read with sequential scans in a read-only transaction:\n" +
			"through a corrupt index a GROUP BY finds nothing. Partial-index predicates and\n" +
			"NULLS [NOT] DISTINCT are honoured; rows are named by primary key, else by ctid.\n" +
			"Exit codes: 0 no duplicates, 1 duplicates found, 2 could not search.",
		Flags: append(connFlags(),
			&ucli.StringSliceFlag{Name: "index", Aliases: []string{"i"}, Usage: "search only index or constraint `NAME` (optionally schema-qualified)"},
			allDatabasesFlag(),
			&ucli.IntFlag{Name: "max-groups", Value: 100, Usage: "key groups kept per index in the report"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
			jsonFlag,
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if cmd.Int("max-groups") < 1 {
				return withCode(ExitError, fmt.Errorf("--max-groups must be at least 1"))
			}
			srv, err := openServer(cmd, false)
			if err != nil {
				return err
			}
			opts := pgcheck.DuplicatesOptions{AllDatabases: cmd.Bool("all-databases"),
				Indexes: cmd.StringSlice("index"), MaxGroups: cmd.Int("max-groups")}
			if !cmd.Bool("quiet") {
				opts.Progress = func(p pgcheck.Progress) {
					if p.Current != "" {
						fmt.Fprintf(stderr, "duplicates: %d/%d %s\n", p.Done+1, p.Total, p.Current)
					}
				}
			}
			rep, err := pgcheck.Duplicates(ctx, srv, opts)
			if err != nil {
				if ctx.Err() != nil {
					return withCode(ExitError, fmt.Errorf("search interrupted: %w", context.Cause(ctx)))
				}
				return withCode(ExitError, err)
			}
			if cmd.Bool("json") {
				if err := writeReport(stdout, rep); err != nil {
					return err
				}
			} else {
				for _, d := range rep.Databases {
					printDuplicates(stdout, d)
				}
				printNotChecked(stdout, rep.NotChecked)
			}
			if rep.Violated() {
				return errFindings
			}
			return notCheckedError(rep.NotChecked)
		},
	}
}

func printDuplicates(w io.Writer, rep *pgcheck.DatabaseDuplicates) {
	fmt.Fprintf(w, "searched %d unique index(es) in database %s with index scans off\n", rep.Searched, rep.Database)
	violated := rep.Violated()
	if len(violated) == 0 {
		fmt.Fprintln(w, "no duplicates found")
		return
	}
	for _, d := range violated {
		printIndexDuplicates(w, d, "")
	}
}

// printIndexDuplicates prints one violated index and its first groups,
// each line prefixed with indent.
func printIndexDuplicates(w io.Writer, d pgcheck.IndexDuplicates, indent string) {
	idx := d.Index
	what := "unique index"
	if idx.Constraint != "" {
		what = "constraint " + idx.Constraint + ", index"
	}
	fmt.Fprintf(w, "\n%s%s.%s (%s on %s.%s): %d duplicated key(s), %d excess row(s)\n",
		indent, idx.Schema, idx.Name, what, idx.Schema, idx.Table, d.Groups, d.ExcessRows)
	for i, g := range d.Examples {
		if i == duplicateGroupsShown {
			fmt.Fprintf(w, "%s  ... %d more key(s) (--json lists up to --max-groups)\n", indent, d.Groups-int64(i))
			break
		}
		fmt.Fprintf(w, "%s  key %s: %d rows\n", indent, compactJSON(g.Key), len(g.Rows))
		for _, r := range g.Rows {
			fmt.Fprintf(w, "%s    %s %s\n", indent, r.Table, rowLabel(r))
		}
	}
}

// rowLabel names a duplicate row by its primary key (sorted by column),
// falling back to its ctid.
func rowLabel(r pgcheck.DuplicateRow) string {
	if len(r.ID) == 0 {
		return "ctid " + r.CTID
	}
	cols := make([]string, 0, len(r.ID))
	for c := range r.ID {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + "=" + compactJSON(r.ID[c])
	}
	return strings.Join(parts, " ") + " (ctid " + r.CTID + ")"
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
