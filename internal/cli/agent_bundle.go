package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/internal/atomicfile"
)

// This file holds the air-gapped parts of `ringfence agent`
// (docs/air-gapped.md): `agent export`, and what preflight, run and status
// do with bundles.

// agentExportCommand is `ringfence agent export -o FILE`.
func agentExportCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "export",
		Usage: "write the installation's unacknowledged offline reports, signed, to -o FILE (air-gapped sites)",
		Description: "Makes an offline check-in (version, database watch, queued events), then writes every\n" +
			"report no bundle has acknowledged yet, signed with this installation's export key and bound\n" +
			"to its enrollment key, for `ringfence bundle import FILE` at the vendor. The reports stay\n" +
			"here until a later bundle acknowledges them: exporting again is always safe.",
		Flags: append(agentCheckInFlags(),
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`FILE` to write the export to (required)"},
			agentJSONFlag()),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			out := cmd.String("output")
			if out == "" {
				return withCode(ExitError, fmt.Errorf("--output (-o) FILE is required"))
			}
			a, _, _, err := newAgent(cmd, stderr, nil)
			if err != nil {
				return withCode(ExitError, err)
			}
			env, exp, left, err := a.Export(ctx)
			if err != nil {
				return withCode(ExitError, err)
			}
			data, err := json.MarshalIndent(env, "", "  ")
			if err != nil {
				return withCode(ExitError, err)
			}
			if err := atomicfile.Write(out, append(data, '\n'), 0o644); err != nil {
				return withCode(ExitError, fmt.Errorf("write export: %w", err))
			}
			summary := map[string]any{"file": out, "instance_id": exp.InstanceID, "reports": len(exp.Reports), "left_out": left,
				"signed_by": env.Signatures[0].KeyID}
			if cmd.Bool("json") {
				return withCode(ExitError, writeJSON(stdout, summary))
			}
			events := 0
			for _, r := range exp.Reports {
				events += len(r.Events)
			}
			fmt.Fprintf(stdout, "exported %d reports (%d events) of installation %s to %s, signed by export key %s\n",
				len(exp.Reports), events, exp.InstanceID, out, env.Signatures[0].KeyID)
			if left > 0 {
				fmt.Fprintf(stdout, "%d more reports did not fit: export again after this one is acknowledged\n", left)
			}
			fmt.Fprintln(stdout, "carry it to the vendor: ringfence bundle import "+out)
			return nil
		},
	}
}

// printBundleStatus prints the air-gapped part of `agent status`.
func printBundleStatus(w io.Writer, bs *agent.BundleStatus, now time.Time) {
	if bs == nil {
		return
	}
	switch {
	case bs.Sequence == 0:
		fmt.Fprintln(w, "bundle:      none accepted yet: no upgrade")
	case !bs.Verified:
		fmt.Fprintf(w, "bundle:      %d of %s does NOT verify (%s): no upgrade\n", bs.Sequence, bs.Customer, bs.Error)
	default:
		when := fmt.Sprintf("valid until %s (%s left)", bs.ExpiresAt.Format(time.RFC3339), bs.ExpiresAt.Sub(now).Round(time.Minute))
		switch {
		case bs.Expired:
			when = "EXPIRED at " + bs.ExpiresAt.Format(time.RFC3339) + ": no upgrade until a newer bundle is carried in"
		case bs.ExpiresSoon:
			when += ": EXPIRES SOON, carry in a new bundle"
		}
		fmt.Fprintf(w, "bundle:      %d of %s, issued %s, %s\n", bs.Sequence, bs.Customer, bs.IssuedAt.Format(time.RFC3339), when)
		if bs.File != "" {
			fmt.Fprintf(w, "             from %s, accepted %s\n", bs.File, bs.AcceptedAt.Format(time.RFC3339))
		}
		if bs.Answer != nil {
			fmt.Fprintf(w, "offline:     %s\n", agent.Guidance(*bs.Answer))
			for _, n := range bs.Answer.Notices {
				fmt.Fprintf(w, "notice:      (%s) %s\n", n.Kind, n.Message)
			}
		}
	}
	if bs.ClockBehind {
		fmt.Fprintf(w, "CLOCK:       behind the latest signed time seen (%s): no upgrade until it is fixed\n", bs.ClockFloor.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "exports:     %d reports not acknowledged yet (latest %d)%s\n", bs.UnacknowledgedReports, bs.LastReport,
		map[bool]string{true: ": run `ringfence agent export -o FILE` and carry it out", false: ""}[bs.UnacknowledgedReports > 0])
}

// bundleFlag is preflight's --bundle.
func bundleFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "bundle", Sources: agentEnv("bundle"), Usage: "decide offline from the signed bundle `FILE` (air-gapped sites) instead of checking in"}
}

// bundleDirFlag is run's --bundle-dir.
func bundleDirFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "bundle-dir", Sources: agentEnv("bundle-dir"), Usage: "run offline on the newest valid signed bundle dropped in `DIR` (air-gapped sites)"}
}
