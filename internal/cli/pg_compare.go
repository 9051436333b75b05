package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// pgCompareCommand is `ringfence pg compare`: the upgrade rehearsal.
func pgCompareCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "compare",
		Usage: "rehearse an upgrade: would the new server order the old server's index keys differently?",
		Description: "Samples the distinct keys of every at-risk index and range/list partition key in\n" +
			"--from's database, sorts them under the same collation on --from and on --to, and\n" +
			"reports for each whether the order would change, with pairs that flip. --to can be\n" +
			"an empty server of the new image: only the collations must exist there.\n" +
			"Keys are sorted in their own type (domains as their base type); multi-column keys\n" +
			"are compared column by column. A collation must be the same on --to (the default\n" +
			"may be stood in for by a --to collation with the same locale).\n" +
			"Read-only on both servers.\n" +
			"Exit 0 same order, 1 order differs, 2 some at-risk index or partition key could not\n" +
			"be compared (and none differs).",
		Flags: append(connFlags(),
			&ucli.StringFlag{Name: "from", Usage: "`DSN` of the old server and the database to sample (required)"},
			&ucli.StringFlag{Name: "to", Usage: "`DSN` of the new server (required)"},
			&ucli.IntFlag{Name: "sample", Value: pgcheck.DefaultCompareSample, Usage: "distinct keys per index key column"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on stderr"},
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if cmd.Args().Len() > 0 {
				return withCode(ExitError, fmt.Errorf("compare takes no arguments: use --from and --to"))
			}
			// Checked here rather than as required flags, which the flag
			// parser would refuse before -? could show the help.
			for _, f := range []string{"from", "to"} {
				if cmd.String(f) == "" {
					return withCode(ExitError, fmt.Errorf("required flag --%s not set", f))
				}
			}
			if cmd.Int("sample") < 2 {
				return withCode(ExitError, fmt.Errorf("--sample must be at least 2, got %d", cmd.Int("sample")))
			}
			opts := pgcheck.ConnOptions{
				StatementTimeout: cmd.Duration("statement-timeout"),
				LockTimeout:      cmd.Duration("lock-timeout"),
			}
			open := func(flag string) (*pgcheck.Target, error) {
				srv, err := pgcheck.Open(cmd.String(flag), opts)
				if err != nil {
					return nil, withCode(ExitError, fmt.Errorf("--%s: %w", flag, err))
				}
				return srv, nil
			}
			from, err := open("from")
			if err != nil {
				return err
			}
			to, err := open("to")
			if err != nil {
				return err
			}
			var last time.Time
			progress := func(p pgcheck.Progress) {
				if !cmd.Bool("quiet") && (p.Done == p.Total || time.Since(last) >= time.Second) {
					last = time.Now()
					fmt.Fprintf(stderr, "compare: %d/%d indexes and partition keys\n", p.Done, p.Total)
				}
			}
			rep, err := pgcheck.Compare(ctx, from, pgcheck.CompareOptions{
				To: to, Sample: int(cmd.Int("sample")), Progress: progress})
			if side := (*pgcheck.CompareSideError)(nil); errors.As(err, &side) {
				return withCode(ExitError, fmt.Errorf("--%s: %w", side.Side, side.Err))
			}
			if err != nil {
				return withCode(ExitError, optionError(err))
			}
			if cmd.Bool("json") {
				err = writeReport(stdout, rep)
			} else {
				err = printCompare(stdout, rep)
			}
			switch {
			case err != nil:
				return withCode(ExitError, err)
			case rep.Differs():
				return errFindings
			case rep.Incomplete():
				return withCode(ExitError, fmt.Errorf("some indexes could not be compared"))
			}
			return nil
		},
	}
}

func printCompare(w io.Writer, rep *pgcheck.CompareReport) error {
	fmt.Fprintf(w, "from: PostgreSQL %s, database %s, default locale %s\n", rep.From.ServerVersion, rep.From.Database, rep.From.DefaultLocale)
	fmt.Fprintf(w, "to:   PostgreSQL %s, database %s, default locale %s\n", rep.To.ServerVersion, rep.To.Database, rep.To.DefaultLocale)
	fmt.Fprintf(w, "up to %d distinct keys per text key column\n\n", rep.Sample)
	all := append(append([]pgcheck.IndexComparison(nil), rep.Indexes...), rep.PartitionKeys...)
	if len(all) == 0 {
		fmt.Fprintln(w, "no index or partition key depends on an at-risk collation: nothing to compare")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tOBJECT\tTABLE\tKEYS\tDETAIL")
	for _, ix := range all {
		keys := 0
		var detail []string
		for _, c := range ix.Columns {
			keys = max(keys, c.Keys)
			switch c.Status {
			case pgcheck.CompareDiffers:
				detail = append(detail, fmt.Sprintf("%s (%s): %d neighbouring pairs flip", c.Expression, c.Collation, c.ChangedPairs))
			case pgcheck.CompareError:
				detail = append(detail, fmt.Sprintf("%s: %s", c.Expression, c.Error))
			}
		}
		if ix.Error != "" {
			detail = append(detail, ix.Error)
		}
		name := ix.Schema + "." + ix.Name
		switch {
		case ix.Type == pgcheck.ObjectPartitionKey:
			name += " (partition key)"
		case ix.Unique:
			name += " (unique)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", ix.Status, name, ix.Schema+"."+ix.Table, keys, strings.Join(detail, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, ix := range all {
		for _, c := range ix.Columns {
			for _, ex := range c.Examples {
				fmt.Fprintf(w, "  %s.%s: %q sorts %s %q on the old server, %s on the new\n",
					ix.Schema, ix.Name, ex.A, ex.Was, ex.B, ex.Now)
			}
		}
	}
	fmt.Fprintln(w)
	summary := func(list []pgcheck.IndexComparison, what, verdict string) string {
		var differs, failed int
		for _, ix := range list {
			switch ix.Status {
			case pgcheck.CompareDiffers:
				differs++
			case pgcheck.CompareError, pgcheck.CompareSkipped:
				failed++
			}
		}
		s := fmt.Sprintf("%d of %d %s %s", differs, len(list), what, verdict)
		if failed > 0 {
			s += fmt.Sprintf(", %d could not be compared", failed)
		}
		return s
	}
	fmt.Fprint(w, summary(rep.Indexes, "indexes", "would be out of order on the new server"))
	if len(rep.PartitionKeys) > 0 {
		fmt.Fprint(w, "; "+summary(rep.PartitionKeys, "partition keys", "would route rows differently"))
	}
	fmt.Fprintf(w, " (%v)\n", time.Duration(rep.Elapsed).Round(time.Millisecond))
	return nil
}
