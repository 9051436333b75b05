package cli

import (
	"context"
	"errors"
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

// fingerprintSummary is one fingerprint without its strings.
type fingerprintSummary struct {
	Collation string `json:"collation"`
	Provider  string `json:"provider"`
	Locale    string `json:"locale"`
	Version   string `json:"version,omitempty"`
	Strings   int    `json:"strings"`
	// SampledKeys is how many of Strings are the database's own keys.
	SampledKeys int    `json:"sampled_keys,omitempty"`
	SHA256      string `json:"sha256"`
}

// fingerprintReport is the command's output.
type fingerprintReport struct {
	Database string `json:"database"`
	// Baseline is where the baseline is (a file or the table).
	Baseline string `json:"baseline"`
	// Recorded is true when this run recorded the baseline.
	Recorded bool `json:"recorded"`
	// BaselineFound is false when there was no baseline to compare with.
	BaselineFound      bool                        `json:"baseline_found"`
	BaselineRecordedAt *time.Time                  `json:"baseline_recorded_at,omitempty"`
	Fingerprints       []fingerprintSummary        `json:"fingerprints,omitempty"`
	Results            []pgcheck.FingerprintResult `json:"results,omitempty"`
	Findings           []pgcheck.Finding           `json:"findings"`
	Elapsed            pgcheck.Duration            `json:"elapsed_seconds"`
}

func runFingerprint(ctx context.Context, cmd *ucli.Command, stdout io.Writer) error {
	start := time.Now()
	file := cmd.String("baseline")
	record := cmd.Bool("record")
	sampleKeys := int(cmd.Int("sample-keys"))
	if sampleKeys < 0 || (sampleKeys > 0 && !record) {
		return withCode(ExitError, fmt.Errorf("--sample-keys takes a positive number and needs --record"))
	}
	srv, err := openServer(cmd, record && file == "")
	if err != nil {
		return err
	}
	all := cmd.Bool("all-databases")
	switch {
	case all && file != "":
		return withCode(ExitError, fmt.Errorf("--baseline FILE holds one database's fingerprints: use it without --all-databases"))
	case all && record:
		// It would also record into template1, and so into every database
		// created from it later.
		return withCode(ExitError, fmt.Errorf("--record --all-databases is refused: record each database's baseline on its own (templates must not get one)"))
	}
	var reps []fingerprintReport
	failed, err := forEachDatabase(ctx, cmd, srv, func(srv *pgcheck.Target) error {
		rep, err := fingerprintDatabase(ctx, srv, file, record, sampleKeys, time.Now())
		if err == nil {
			reps = append(reps, rep)
		}
		return err
	})
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return withCode(ExitError, err)
	}
	findings := []pgcheck.Finding{}
	var uncovered error
	for _, rep := range reps {
		findings = append(findings, rep.Findings...)
		if err := pgcheck.Uncovered(rep.Results); err != nil && uncovered == nil {
			uncovered = fmt.Errorf("database %s: %w", rep.Database, err)
		}
	}
	switch {
	case cmd.Bool("json") && all:
		err = writeReport(stdout, struct {
			Databases  []fingerprintReport `json:"databases"`
			Findings   []pgcheck.Finding   `json:"findings"`
			NotChecked []notChecked        `json:"not_checked"`
		}{reps, findings, failed}, start)
	case cmd.Bool("json"):
		err = writeReport(stdout, reps[0], start)
	default:
		for i, rep := range reps {
			if all {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				fmt.Fprintf(stdout, "== database %s\n", rep.Database)
			}
			if err = printFingerprint(stdout, rep); err != nil {
				break
			}
		}
		printNotChecked(stdout, failed)
	}
	if err != nil {
		return withCode(ExitError, err)
	}
	if len(findings) > 0 {
		return errFindings
	}
	if uncovered != nil {
		return withCode(ExitError, uncovered)
	}
	return notCheckedError(failed)
}

// fingerprintDatabase fingerprints srv's database: records the baseline,
// or compares with it (the database's, or file).
func fingerprintDatabase(ctx context.Context, srv *pgcheck.Target, file string, record bool, sampleKeys int, start time.Time) (fingerprintReport, error) {
	var rep fingerprintReport
	conn, err := srv.Connect(ctx, "")
	if err != nil {
		return rep, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	inv, err := pgcheck.ReadInventory(ctx, conn)
	if err != nil {
		return rep, err
	}
	rep = fingerprintReport{Database: inv.Database, Baseline: file, Findings: []pgcheck.Finding{}}
	if file == "" {
		rep.Baseline = pgcheck.BaselineTable
	}

	var base *pgcheck.Baseline
	switch {
	case record:
		base, err = pgcheck.NewBaseline(ctx, conn, inv)
		if err == nil {
			err = pgcheck.AddKeySample(ctx, conn, inv, base, sampleKeys)
		}
		if err == nil {
			if file != "" {
				err = pgcheck.WriteBaselineFile(file, base)
			} else {
				err = pgcheck.RecordBaseline(ctx, conn, base)
			}
		}
		if err != nil {
			return rep, privilegeError(err, srv, recordGrantHint)
		}
		rep.Recorded, rep.BaselineFound = true, true
	case file != "":
		base, err = pgcheck.ReadBaselineFile(file)
		if err != nil {
			return rep, err
		}
		rep.BaselineFound = true
	default:
		base, rep.BaselineFound, err = pgcheck.LoadBaseline(ctx, conn)
		if err != nil {
			return rep, err
		}
	}

	switch {
	case record:
		rep.Fingerprints = summarize(base.Fingerprints)
	case rep.BaselineFound:
		rep.Results, rep.Findings, err = pgcheck.CompareFingerprints(ctx, conn, inv, base)
		if err != nil {
			return rep, err
		}
		if rep.Findings == nil {
			rep.Findings = []pgcheck.Finding{}
		}
	default:
		fps, err := pgcheck.TakeFingerprints(ctx, conn, inv)
		if err != nil {
			return rep, err
		}
		rep.Fingerprints = summarize(fps)
	}
	if base != nil && !base.RecordedAt.IsZero() {
		at := base.RecordedAt
		rep.BaselineRecordedAt = &at
	}
	rep.Elapsed = pgcheck.Duration(time.Since(start))
	return rep, nil
}

func summarize(fps []pgcheck.Fingerprint) []fingerprintSummary {
	out := make([]fingerprintSummary, 0, len(fps))
	for _, f := range fps {
		out = append(out, fingerprintSummary{Collation: f.Collation, Provider: f.Provider, Locale: f.Locale,
			Version: f.Version, Strings: len(f.Order), SampledKeys: f.SampledKeys, SHA256: f.SHA256})
	}
	return out
}

func printFingerprint(w io.Writer, rep fingerprintReport) error {
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
		result := r.Status
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
