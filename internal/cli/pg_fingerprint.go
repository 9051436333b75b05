package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// pgFingerprintCommand is `ringfence pg fingerprint`.
func pgFingerprintCommand(stdout io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "fingerprint",
		Usage:     "detect collation changes PostgreSQL cannot see, against a recorded baseline",
		ArgsUsage: "[DSN]",
		Description: "Sorts a built-in probe corpus under every at-risk collation in use, by asking the\n" +
			"server, and hashes the order. With --record the fingerprints become the baseline:\n" +
			"in the database's own ringfence schema (a read-write session), or in --baseline\n" +
			"FILE. Without --record the baseline is compared: a collation that orders the\n" +
			"corpus differently is reported as collation_changed with the objects at risk,\n" +
			"whatever PostgreSQL's version columns say; so is a collation whose locale no longer\n" +
			"loads. Exit 0 same (or no baseline yet), 1 changed, 2 could not check or an\n" +
			"at-risk collation in use is not in the baseline.",
		Flags: append(connFlags(),
			&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"},
			&ucli.BoolFlag{Name: "record", Usage: "record the fingerprints as the new baseline"},
			&ucli.StringFlag{Name: "baseline", Usage: "baseline `FILE` instead of the database's ringfence schema"},
			allDatabasesFlag(),
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output (this command prints none)"},
			&ucli.IntFlag{Name: "sample-keys", Usage: "with --record, add up to `N` of the database's own index keys per collation"},
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			return runFingerprint(ctx, cmd, stdout)
		},
	}
}

func runFingerprint(ctx context.Context, cmd *ucli.Command, stdout io.Writer) error {
	opts := pgcheck.FingerprintOptions{
		AllDatabases: cmd.Bool("all-databases"),
		Record:       cmd.Bool("record"),
		BaselineFile: cmd.String("baseline"),
		SampleKeys:   int(cmd.Int("sample-keys")),
	}
	srv, err := openServer(cmd, false)
	if err != nil {
		return err
	}
	rep, err := pgcheck.Fingerprint(ctx, srv, opts)
	switch {
	case err != nil && opts.Record:
		return privilegeError(optionError(err), srv, recordGrantHint)
	case err != nil:
		return withCode(ExitError, optionError(err))
	}
	findings := rep.Findings()
	if cmd.Bool("json") {
		err = writeReport(stdout, rep)
	} else {
		for i, d := range rep.Databases {
			if opts.AllDatabases {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				fmt.Fprintf(stdout, "== database %s\n", d.Database)
			}
			if err = printFingerprint(stdout, d); err != nil {
				break
			}
		}
		printNotChecked(stdout, rep.NotChecked)
	}
	if err != nil {
		return withCode(ExitError, err)
	}
	if len(findings) > 0 {
		return errFindings
	}
	if err := rep.Uncovered(); err != nil {
		return withCode(ExitError, fmt.Errorf("%w (ringfence pg fingerprint --record)", err))
	}
	return notCheckedError(rep.NotChecked)
}

func printFingerprint(w io.Writer, rep pgcheck.DatabaseFingerprint) error {
	elapsed := time.Duration(rep.Elapsed).Round(time.Millisecond)
	if len(rep.Fingerprints) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COLLATION\tPROVIDER\tLOCALE\tVERSION\tSTRINGS\tSHA-256")
		for _, f := range rep.Fingerprints {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.16s\n", f.Collation, f.Provider, f.Locale, orDash(f.Version), f.Strings, f.SHA256)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case rep.Recorded:
		fmt.Fprintf(w, "\nrecorded %d collation fingerprints of database %s in %s (%v)\n",
			len(rep.Fingerprints), rep.Database, rep.Baseline, elapsed)
		return nil
	case !rep.BaselineFound:
		fmt.Fprintf(w, "\nno baseline in %s: run with --record to keep these as the baseline (%v)\n", rep.Baseline, elapsed)
		return nil
	}
	recorded := ""
	if rep.BaselineRecordedAt != nil {
		recorded = " recorded " + rep.BaselineRecordedAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "database %s against the baseline in %s%s\n\n", rep.Database, rep.Baseline, recorded)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLLATION\tLOCALE\tVERSION THEN\tNOW\tRESULT")
	for _, r := range rep.Results {
		result := string(r.Status)
		switch r.Status {
		case pgcheck.FingerprintChanged:
			result = fmt.Sprintf("CHANGED: %d of %d neighbouring pairs", r.ChangedPairs, r.Strings-1)
		case pgcheck.FingerprintNew:
			result = "no baseline yet (record again)"
		case pgcheck.FingerprintMissing:
			result = "collation no longer exists"
		case pgcheck.FingerprintUnavailable:
			result = "UNAVAILABLE: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Collation, r.Locale, orDash(r.BaselineVersion), orDash(r.Version), result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		for _, ex := range r.Examples {
			fmt.Fprintf(w, "  %s: %s\n", r.Collation, ex)
		}
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "\n%s: %s\n", f.Kind, f.Detail)
		for _, o := range f.AtRisk {
			fmt.Fprintf(w, "  at risk: %s %s.%s (table %s)\n", o.Type, o.Schema, o.Object, o.Table)
		}
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintf(w, "\nno collation changed (%v)\n", elapsed)
	} else {
		fmt.Fprintf(w, "\n%d collations changed (%v)\n", len(rep.Findings), elapsed)
	}
	return nil
}
