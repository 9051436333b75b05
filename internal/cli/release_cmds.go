package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// releaseCommand is `ringfence release`.
func releaseCommand() *ucli.Command {
	return apiGroup("release", "releases: create, pause, resume, pull, promote, status",
		apiCmd("list", "list a product's releases, newest first", []string{"product"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			rs, err := c.Releases(ctx, args[0])
			if err != nil {
				return err
			}
			return emitReleases(cmd, rs, rs)
		}),
		releaseChange("show", "show a release", nil, func(ctx context.Context, _ *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			return c.Release(ctx, product, v)
		}),
		releaseChange("create", "create a release (releaser)", []ucli.Flag{
			&ucli.StringFlag{Name: "notes-url", Usage: "where the release notes are"},
			&ucli.BoolFlag{Name: "required-stop", Usage: "installations may not skip this release"},
			&ucli.StringFlag{Name: "rollback-safe-to", Usage: "lowest version installations on this release can roll back to"},
			&ucli.StringSliceFlag{Name: "waive", Usage: "a preflight finding this release's upgrade repairs itself, so it does not stop the upgrade to it (repeatable): collation_changed, or database_corrupt, which covers every deep-check finding (corrupt indexes, rows outside their partition, CHECK violations): waive it only if the upgrade repairs all of them"},
			&ucli.IntFlag{Name: "requires-postgres", Usage: "the lowest PostgreSQL `MAJOR` version the release runs on: preflight refuses the upgrade to it where a watched database runs an older one"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			nr := client.NewRelease{Version: v, NotesURL: cmd.String("notes-url"), RequiredStop: cmd.Bool("required-stop"), Waives: cmd.StringSlice("waive"),
				RequiresPostgres: int(cmd.Int("requires-postgres"))}
			if s := cmd.String("rollback-safe-to"); s != "" {
				var err error
				if nr.RollbackSafeTo, err = versionArg(s); err != nil {
					return release.Release{}, fmt.Errorf("--rollback-safe-to: %w", err)
				}
			}
			return c.CreateRelease(ctx, product, nr)
		}),
		releaseChange("pause", "stop every new offer of a release (releaser)", []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (required; shown to installations)"},
			&ucli.StringFlag{Name: "incident", Usage: "URL of the incident"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			reason, err := requireFlag(cmd, "reason")
			if err != nil {
				return release.Release{}, err
			}
			return c.PauseRelease(ctx, product, v, reason, cmd.String("incident"))
		}),
		releaseChange("resume", "offer a paused release again (releaser)", []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (for the audit log)"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			return c.ResumeRelease(ctx, product, v, cmd.String("reason"))
		}),
		releaseChange("pull", "withdraw a release for good and tell installations on it what to do (releaser)", []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (required; shown to installations)"},
			&ucli.StringFlag{Name: "incident", Usage: "the incident: an id of ours to link (without one, the pull opens an incident), or a URL elsewhere"},
			&ucli.StringFlag{Name: "upgrade-to", Usage: "guidance: upgrade to this version"},
			&ucli.StringFlag{Name: "rollback-to", Usage: "guidance: roll back to this version (must be rollback-safe)"},
			&ucli.BoolFlag{Name: "hold", Usage: "guidance: stay on the release and wait"},
			&ucli.BoolFlag{Name: "force", Usage: "accept an --upgrade-to target that has not passed the product's gates (needs --force-reason)"},
			&ucli.StringFlag{Name: "force-reason", Usage: "why the --upgrade-to target is offered before passing its gates (in the audit log)"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			p, err := pullFlags(cmd)
			if err != nil {
				return release.Release{}, err
			}
			pulled, err := c.PullReleaseWithIncident(ctx, product, v, p)
			if release.ErrorCode(err) == release.ECONFLICT && strings.Contains(release.ErrorMessage(err), "force_reason") {
				// The server names the request's field; say it with the flags.
				return release.Release{}, fmt.Errorf("%w\nto offer it anyway, say why: --force --force-reason TEXT", err)
			}
			if err == nil && !cmd.Bool("json") {
				reportPullIncident(cmd, pulled)
			}
			return pulled.Release, err
		}),
		releaseChange("promote", "force a release into a ring, past gates, soak, evidence and holds (releaser)", []ucli.Flag{
			&ucli.StringFlag{Name: "ring", Usage: "the ring (required); every ring before it is entered too"},
			&ucli.StringFlag{Name: "reason", Usage: "why (required; in the audit log)"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error) {
			ring, err := requireFlag(cmd, "ring")
			if err != nil {
				return release.Release{}, err
			}
			reason, err := requireFlag(cmd, "reason")
			if err != nil {
				return release.Release{}, err
			}
			return c.PromoteRelease(ctx, product, v, ring, reason)
		}),
		apiCmd("status", "each release per ring: state, adoption, healthy/failed, holds, gates", []string{"product"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			st, err := c.Status(ctx, args[0])
			if err != nil {
				return err
			}
			return emit(cmd, st, func(w io.Writer) { printStatus(w, st) })
		}),
		apiCmd("installations", "list a product's installations, most recently seen first (filter by version, customer, ring, health)", []string{"product"}, []ucli.Flag{
			&ucli.IntFlag{Name: "limit", Value: 100, Usage: "how many to show (at most 10000)"},
			&ucli.IntFlag{Name: "offset", Usage: "pass over this many matching installations first (paging)"},
			&ucli.StringFlag{Name: "version", Usage: "only installations running `VERSION`"},
			&ucli.StringFlag{Name: "customer", Usage: "only installations of `CUSTOMER`"},
			&ucli.StringFlag{Name: "ring", Usage: "only installations in `RING`"},
			&ucli.StringFlag{Name: "health", Usage: "only installations whose last health is `STATUS` (ok, corrupt, collation_changed, ...)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			if v := cmd.String("version"); v != "" {
				if _, err := versionArg(v); err != nil {
					return err
				}
			}
			if cmd.Int("limit") < 1 || cmd.Int("offset") < 0 {
				return fmt.Errorf("--limit must be at least 1 and --offset at least 0")
			}
			is, err := c.QueryInstallations(ctx, args[0], client.InstallationQuery{Limit: int(cmd.Int("limit")), Offset: int(cmd.Int("offset")),
				Version: cmd.String("version"), Customer: cmd.String("customer"), Ring: cmd.String("ring"), Health: release.HealthStatus(cmd.String("health"))})
			if err != nil {
				return err
			}
			return emit(cmd, is, func(w io.Writer) {
				row(w, "INSTANCE", "CUSTOMER", "RING", "VERSION", "HEALTH", "FIRST SEEN", "LAST SEEN")
				for _, in := range is {
					row(w, in.InstanceID, in.Customer, orDash(in.Ring), in.Version, in.Health.Status, fmtWhen(in.FirstSeen), fmtWhen(in.LastSeen))
				}
			})
		}),
		apiCmd("installation", "one installation's history: its record, the events and damage reports it sent", []string{"product", "instance"}, []ucli.Flag{
			&ucli.IntFlag{Name: "limit", Value: 100, Usage: "events and reports to show (at most 10000)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			h, err := c.InstallationHistory(ctx, args[0], args[1], int(cmd.Int("limit")))
			if err != nil {
				return err
			}
			return emit(cmd, h, func(w io.Writer) {
				for _, in := range h.Installations {
					row(w, "installation:", in.InstanceID+" of customer "+in.Customer+", ring "+orDash(in.Ring))
					row(w, "version:", in.Version)
					row(w, "health:", strings.TrimSpace(string(in.Health.Status)+" "+in.Health.Detail))
					row(w, "first seen:", fmtWhen(in.FirstSeen))
					row(w, "last seen:", fmtWhen(in.LastSeen))
				}
				row(w, "")
				row(w, "AT", "EVENT", "FROM", "TO", "DETAIL")
				for _, e := range h.Events {
					row(w, fmtWhen(e.At), e.Kind, orDash(e.From.String()), orDash(e.To.String()), orDash(e.Detail))
				}
				for _, r := range h.Reports {
					row(w, fmtWhen(r.At), "health "+string(r.Status), "-", r.Version, orDash(r.Detail))
				}
			})
		}),
	)
}

// pullFlags reads a pull's reason, incident and guidance: exactly one of
// --upgrade-to, --rollback-to and --hold.
func pullFlags(cmd *ucli.Command) (client.PullRequest, error) {
	p := client.PullRequest{}
	if inc := cmd.String("incident"); inc != "" {
		if id, err := strconv.ParseInt(inc, 10, 64); err == nil && id > 0 {
			p.Incident = id
		} else {
			p.IncidentURL = inc
		}
	}
	var err error
	if p.Reason, err = requireFlag(cmd, "reason"); err != nil {
		return p, err
	}
	var n int
	if s := cmd.String("upgrade-to"); s != "" {
		n++
		p.Action = release.ActionUpgrade
		if p.Target, err = versionArg(s); err != nil {
			return p, fmt.Errorf("--upgrade-to: %w", err)
		}
	}
	if s := cmd.String("rollback-to"); s != "" {
		n++
		p.Action = release.ActionRollback
		if p.Target, err = versionArg(s); err != nil {
			return p, fmt.Errorf("--rollback-to: %w", err)
		}
	}
	if cmd.Bool("hold") {
		n++
		p.Action = release.ActionHold
	}
	if n != 1 {
		return p, fmt.Errorf("give exactly one guidance: --upgrade-to VERSION, --rollback-to VERSION or --hold")
	}
	switch {
	case cmd.Bool("force") && p.Action != release.ActionUpgrade:
		return p, fmt.Errorf("--force only applies to --upgrade-to")
	case cmd.Bool("force") && strings.TrimSpace(cmd.String("force-reason")) == "":
		return p, fmt.Errorf("--force needs --force-reason: why installations are told to upgrade to a release that has not passed its gates")
	case !cmd.Bool("force") && cmd.IsSet("force-reason"):
		return p, fmt.Errorf("--force-reason goes with --force")
	case cmd.Bool("force"):
		p.ForceReason = cmd.String("force-reason")
	}
	return p, nil
}

func emitReleases(cmd *ucli.Command, v any, rs []release.Release) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "VERSION", "STATUS", "STOP", "ROLLBACK-SAFE TO", "RINGS", "CREATED")
		for _, r := range rs {
			stop := ""
			if r.RequiredStop {
				stop = "required"
			}
			var rings []string
			for _, p := range r.Rings {
				rings = append(rings, p.Ring)
			}
			row(w, r.Version, r.Status, orDash(stop), orDash(r.RollbackSafeTo.String()), orDash(strings.Join(rings, ",")), fmtWhen(r.CreatedAt))
		}
	})
}

func emitRelease(cmd *ucli.Command, r release.Release) error {
	return emit(cmd, r, func(w io.Writer) {
		row(w, "release:", r.ID())
		row(w, "status:", r.Status)
		if p := r.Paused; p != nil {
			row(w, "paused:", fmt.Sprintf("%s by %s at %s", p.Reason, p.By, fmtWhen(p.At)))
			if p.IncidentURL != "" {
				row(w, "", p.IncidentURL)
			}
		}
		if p := r.Pulled; p != nil {
			guidance := string(p.Action)
			if !p.Target.IsZero() {
				guidance += " to " + p.Target.String()
			}
			row(w, "pulled:", fmt.Sprintf("%s by %s at %s", p.Reason, orDash(p.By), fmtWhen(p.At)))
			row(w, "guidance:", guidance)
			if p.IncidentURL != "" {
				row(w, "incident:", p.IncidentURL)
			}
		}
		row(w, "notes:", orDash(r.NotesURL))
		row(w, "required stop:", r.RequiredStop)
		row(w, "rollback-safe to:", orDash(r.RollbackSafeTo.String()))
		if r.RequiresPostgres > 0 {
			row(w, "requires:", fmt.Sprintf("PostgreSQL %d or later", r.RequiresPostgres))
		}
		if len(r.Waives) > 0 {
			row(w, "waives:", strings.Join(r.Waives, ", ")+" (preflight lets the upgrade to it go on such databases)")
		}
		for _, p := range r.Rings {
			how := "by the rules"
			if p.Forced {
				how = fmt.Sprintf("forced by %s: %s", p.By, p.Reason)
			}
			row(w, "entered "+p.Ring+":", fmtWhen(p.EnteredAt)+" "+how)
		}
		row(w, "created:", fmtWhen(r.CreatedAt))
	})
}

// printStatus prints a block per release: header lines (no tabs, so they
// do not widen the columns) with gates and holds, then its rings.
func printStatus(w io.Writer, st client.Status) {
	if len(st.Releases) == 0 {
		fmt.Fprintf(w, "no releases of %s\n", st.Product)
		printQuotas(w, st.Quotas)
		return
	}
	for i, r := range st.Releases {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s: %s\n", st.Product, r.Version, r.Status)
		if p := r.Pulled; p != nil {
			guidance := string(p.Action)
			if !p.Target.IsZero() {
				guidance += " to " + p.Target.String()
			}
			fmt.Fprintf(w, "  pulled: %s; installations on it: %s\n", p.Reason, guidance)
		} else if p := r.Paused; p != nil {
			fmt.Fprintf(w, "  paused: %s (by %s, %s)\n", p.Reason, p.By, fmtWhen(p.At))
		}
		var gates []string
		for _, g := range r.Gates {
			gates = append(gates, g.Name+"="+string(g.Status))
		}
		for _, g := range r.MissingGates {
			gates = append(gates, g+"=missing")
		}
		fmt.Fprintf(w, "  gates: %s\n", orDash(strings.Join(gates, ", ")))
		if len(r.Holds) == 0 {
			fmt.Fprintln(w, "  holds: none open")
		}
		for _, h := range r.Holds {
			fmt.Fprintf(w, "  hold %s: %s (by %s, %s)\n", h.ID, h.Reason, h.RaisedBy, fmtWhen(h.RaisedAt))
		}
		row(w, "  RING", "STATE", "ENTERED", "ADOPTION", "HEALTHY", "FAILED", "NOTE")
		for _, rs := range r.Rings {
			row(w, "  "+rs.Ring, rs.State, fmtWhenPtr(rs.EnteredAt), fmt.Sprintf("%d/%d", rs.Adoption, rs.Installations),
				rs.Healthy, rs.Failed, orDash(rs.Reason))
		}
	}
	printQuotas(w, st.Quotas)
}

// printQuotas shows each customer's use of its check-in quotas.
func printQuotas(w io.Writer, qs []release.QuotaUsage) {
	if len(qs) == 0 {
		return
	}
	limit := func(n, max int64) string {
		if max == 0 {
			return fmt.Sprint(n)
		}
		return fmt.Sprintf("%d/%d", n, max)
	}
	fmt.Fprintln(w)
	row(w, "CUSTOMER", "NEW INSTANCES (HOUR)", "MAX EVENTS (DAY)", "STORED BYTES")
	for _, q := range qs {
		row(w, q.Customer, limit(int64(q.NewInstances), int64(q.NewInstancesLimit)), limit(int64(q.MaxEvents), int64(q.EventsLimit)), limit(q.StoredBytes, q.StoredBytesLimit))
	}
}
