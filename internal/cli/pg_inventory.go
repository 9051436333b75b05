package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// pgInventoryCommand is `ringfence pg inventory`.
func pgInventoryCommand(stdout io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "inventory",
		Usage:     "list the collations in use and every object that depends on one",
		ArgsUsage: "[DSN]",
		Description: "Reads the catalogs of one database: every collation in use (provider, locale,\n" +
			"recorded and actual version) and every index, constraint and partition key whose\n" +
			"correctness depends on a collation, classified at risk or safe (C, POSIX,\n" +
			"ucs_basic), with sizes. Read-only; works on a hot standby. Exit 0 unless the\n" +
			"inventory could not be read (2).",
		Flags: append(connFlags(),
			&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"},
			&ucli.BoolFlag{Name: "safe", Usage: "list safe objects too, not only those at risk"},
			allDatabasesFlag(),
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output (this command prints none)"},
		),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			srv, err := openServer(cmd, false)
			if err != nil {
				return err
			}
			rep, err := pgcheck.Inventory(ctx, srv, pgcheck.InventoryOptions{AllDatabases: cmd.Bool("all-databases")})
			if err != nil {
				return withCode(ExitError, err)
			}
			if cmd.Bool("json") {
				if err := writeReport(stdout, rep); err != nil {
					return withCode(ExitError, err)
				}
				return notCheckedError(rep.NotChecked)
			}
			for i, inv := range rep.Databases {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				if err := printInventory(stdout, inv, cmd.Bool("safe")); err != nil {
					return err
				}
			}
			printNotChecked(stdout, rep.NotChecked)
			return notCheckedError(rep.NotChecked)
		},
	}
}

// printInventory renders inv for people; safe objects only with all.
func printInventory(w io.Writer, inv *pgcheck.DatabaseInventory, all bool) error {
	role := "primary"
	if inv.InRecovery {
		role = "standby"
	}
	fmt.Fprintf(w, "PostgreSQL %s (%s), database %s\n\n", inv.ServerVersion, role, inv.Database)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLLATION\tPROVIDER\tLOCALE\tRECORDED\tACTUAL\tRISK")
	for _, c := range inv.Collations {
		actual := orDash(c.ActualVersion)
		if c.VersionError != "" {
			actual = "error: " + c.VersionError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Provider, c.Locale,
			orDash(c.RecordedVersion), actual, collationRisk(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var atRisk, indexes, bytes int64
	for _, o := range inv.Objects {
		if !o.AtRisk {
			continue
		}
		atRisk++
		switch o.Type {
		case pgcheck.ObjectIndex, pgcheck.ObjectUniqueConstraint, pgcheck.ObjectPrimaryKey,
			pgcheck.ObjectExclusionConstraint, pgcheck.ObjectMatviewIndex:
			indexes++
			bytes += o.Bytes
		}
	}
	fmt.Fprintf(w, "\n%d objects depend on a collation, %d at risk, of which %d indexes (%s)\n",
		len(inv.Objects), atRisk, indexes, formatBytes(bytes))
	if len(inv.Objects) > 0 && (atRisk > 0 || all) {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tOBJECT\tTABLE\tCOLLATIONS\tSIZE\tNOTES")
		for _, o := range inv.Objects {
			if !o.AtRisk && !all {
				continue
			}
			var notes []string
			if o.Unique {
				notes = append(notes, "unique")
			}
			if !o.Valid {
				notes = append(notes, "invalid")
			}
			if !o.AtRisk {
				notes = append(notes, "safe")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Type, o.Schema+"."+o.Name, o.Schema+"."+o.Table,
				strings.Join(o.Collations, ","),
				formatBytes(o.Bytes), strings.Join(notes, " "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, f := range pgcheck.VersionMismatches(inv) {
		fmt.Fprintf(w, "\nWARNING: %s\n", f.Detail)
	}
	return nil
}

// collationRisk is the RISK column: "at risk", "ctype at risk" (order
// safe, character classes not) or "safe".
func collationRisk(c pgcheck.CollationInfo) string {
	switch {
	case c.AtRisk:
		return "at risk"
	case c.CtypeAtRisk:
		return "ctype at risk"
	}
	return "safe"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatBytes renders a size with binary units (KiB, MiB, ...), like every
// size ringfence prints.
func formatBytes(n int64) string { return humanBytes(n) }
