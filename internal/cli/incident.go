package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
)

// incidentCommand is `ringfence incident`: declare, update, resolve and
// publish incidents, postmortems, templates and the severity configuration.
func incidentCommand() *ucli.Command {
	return apiGroup("incident", "incidents: declare, update, resolve, publish, postmortem, list, show, templates, severities",
		apiCmd("declare", "open an incident and print its id (incident); a severity the policy names pauses the releases named", []string{"title"}, []ucli.Flag{
			&ucli.StringFlag{Name: "impact", Usage: "none, minor, major or critical (required unless the template sets it)"},
			&ucli.StringFlag{Name: "status", Usage: "investigating (default), identified or monitoring"},
			&ucli.StringFlag{Name: "message", Usage: "the first update, for customers (required unless the template sets it)"},
			&ucli.StringFlag{Name: "severity", Usage: "SEV1 to SEV4 by default (see: incident severity list)"},
			&ucli.StringSliceFlag{Name: "component", Usage: "NAME=STATUS, a component this incident changes (repeatable)"},
			&ucli.StringSliceFlag{Name: "release", Usage: "PRODUCT@VERSION the incident concerns (repeatable)"},
			&ucli.StringFlag{Name: "template", Usage: "a template filling title-less fields: message, impact, severity, status"},
			&ucli.BoolFlag{Name: "draft", Usage: "staff-only until published; notifies no one"},
			&ucli.BoolFlag{Name: "no-notify", Usage: "do not tell subscribers of the first update"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			comps, err := componentFlags(cmd)
			if err != nil {
				return err
			}
			d := client.Declaration{Title: args[0], Template: cmd.String("template"), Impact: incident.Impact(cmd.String("impact")),
				Severity: incident.Severity(cmd.String("severity")), Status: incident.Status(cmd.String("status")),
				Message: cmd.String("message"), Components: comps, Releases: cmd.StringSlice("release"), Draft: cmd.Bool("draft")}
			if cmd.Bool("no-notify") {
				f := false
				d.Notify = &f
			}
			out, err := c.DeclareIncident(ctx, d)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(cmd, out)
			}
			fmt.Fprintln(cmd.Root().Writer, out.ID)
			for _, r := range out.PausedReleases {
				fmt.Fprintf(cmd.Root().ErrWriter, "paused release %s (severity %s)\n", r, out.Severity)
			}
			return nil
		}),
		incidentCmd("update", "post an update to an incident (incident)", []ucli.Flag{
			&ucli.StringFlag{Name: "status", Usage: "investigating, identified, monitoring (required)"},
			&ucli.StringFlag{Name: "message", Usage: "the update, for customers (required)"},
			&ucli.StringFlag{Name: "impact", Usage: "change the impact: none, minor, major, critical"},
			&ucli.StringFlag{Name: "severity", Usage: "change the severity; raising it to one that pauses releases pauses those the incident names"},
			&ucli.StringSliceFlag{Name: "release", Usage: "PRODUCT@VERSION the incident now also concerns (repeatable); paused if the severity pauses releases"},
			&ucli.StringSliceFlag{Name: "component", Usage: "NAME=STATUS (repeatable)"},
			&ucli.BoolFlag{Name: "no-notify", Usage: "do not tell subscribers"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
			u, err := updateFlags(cmd)
			if err != nil {
				return incident.Incident{}, err
			}
			st, err := requireFlag(cmd, "status")
			if err != nil {
				return incident.Incident{}, err
			}
			u.Status, u.Impact, u.Severity = incident.Status(st), incident.Impact(cmd.String("impact")), incident.Severity(cmd.String("severity"))
			u.Releases = cmd.StringSlice("release")
			return c.UpdateIncident(ctx, id, u)
		}),
		incidentCmd("resolve", "resolve an incident (incident); components it changed return to operational unless named", []ucli.Flag{
			&ucli.StringFlag{Name: "message", Usage: "the final update, for customers (required)"},
			&ucli.StringSliceFlag{Name: "component", Usage: "NAME=STATUS (repeatable)"},
			&ucli.BoolFlag{Name: "no-notify", Usage: "do not tell subscribers"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
			u, err := updateFlags(cmd)
			if err != nil {
				return incident.Incident{}, err
			}
			return c.ResolveIncident(ctx, id, u)
		}),
		incidentCmd("publish", "publish a draft incident: it shows on the page and subscribers are told (incident)", nil,
			func(ctx context.Context, _ *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
				return c.PublishIncident(ctx, id)
			}),
		incidentCmd("postmortem", "publish or revise the postmortem of a resolved incident (incident)", []ucli.Flag{
			&ucli.StringFlag{Name: "file", Usage: "the postmortem (Markdown); - reads standard input (required)"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
			path, err := requireFlag(cmd, "file")
			if err != nil {
				return incident.Incident{}, err
			}
			var text []byte
			if path == "-" {
				text, err = io.ReadAll(io.LimitReader(cmd.Root().Reader, 1<<20))
			} else {
				text, err = os.ReadFile(path)
			}
			if err != nil {
				return incident.Incident{}, fmt.Errorf("read postmortem: %w", err)
			}
			return c.SetPostmortem(ctx, id, string(text))
		}),
		incidentCmd("assign", "record who holds which role in the response: commander, communications, technical, release manager, scribe (incident); staff-only", append(roleFlags(),
			&ucli.StringSliceFlag{Name: "unassign", Usage: "ROLE to leave unassigned (repeatable)"},
		), func(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
			return assignRoles(ctx, cmd, c, id)
		}),
		incidentCmd("show", "show an incident and its timeline", nil,
			func(ctx context.Context, _ *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
				return c.Incident(ctx, id)
			}),
		apiCmd("list", "list incidents, newest first (drafts too)", nil, []ucli.Flag{
			&ucli.BoolFlag{Name: "unresolved", Usage: "only open incidents"},
			&ucli.IntFlag{Name: "limit", Value: 50, Usage: "how many (at most 1000)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			is, err := c.Incidents(ctx, cmd.Bool("unresolved"), int(cmd.Int("limit")))
			if err != nil {
				return err
			}
			return emit(cmd, is, func(w io.Writer) {
				// LAST UPDATE shows who is behind the communication cadence.
				row(w, "ID", "STATUS", "SEVERITY", "IMPACT", "VISIBILITY", "CREATED", "LAST UPDATE", "COMMANDER", "TITLE")
				for _, i := range is {
					vis := "public"
					if i.Draft {
						vis = "draft"
					}
					last := i.CreatedAt
					if len(i.Updates) > 0 {
						last = i.Updates[0].At
					}
					row(w, i.ID, i.Status, i.Severity, i.Impact, vis, fmtWhen(i.CreatedAt), fmtWhen(last), orDash(i.Holder(incident.RoleCommander)), i.Title)
				}
			})
		}),
		&ucli.Command{Name: "template", Usage: "incident templates", Commands: []*ucli.Command{
			apiCmd("list", "list templates", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
				ts, err := c.Templates(ctx)
				if err != nil {
					return err
				}
				return emit(cmd, ts, func(w io.Writer) {
					row(w, "NAME", "TITLE", "IMPACT", "SEVERITY", "STATUS")
					for _, t := range ts {
						row(w, t.Name, t.Title, orDash(string(t.Impact)), orDash(string(t.Severity)), orDash(string(t.Status)))
					}
				})
			}),
			apiCmd("save", "create or replace a template (incident)", []string{"name"}, []ucli.Flag{
				&ucli.StringFlag{Name: "title", Usage: "the incident title (required)"},
				&ucli.StringFlag{Name: "body", Usage: "the first message (required)"},
				&ucli.StringFlag{Name: "impact", Usage: "default impact"},
				&ucli.StringFlag{Name: "severity", Usage: "default severity"},
				&ucli.StringFlag{Name: "status", Usage: "default status"},
			}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
				t, err := c.SaveTemplate(ctx, incident.Template{Name: args[0], Title: cmd.String("title"), Body: cmd.String("body"),
					Impact: incident.Impact(cmd.String("impact")), Severity: incident.Severity(cmd.String("severity")),
					Status: incident.Status(cmd.String("status"))})
				if err != nil {
					return err
				}
				return emit(cmd, t, func(w io.Writer) { row(w, "saved template", t.Name) })
			}),
		}},
		&ucli.Command{Name: "severity", Usage: "severity levels and the policy over them", Commands: []*ucli.Command{
			apiCmd("list", "show the severity levels and what they do", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
				cfg, err := c.IncidentConfig(ctx)
				if err != nil {
					return err
				}
				return emit(cmd, cfg, func(w io.Writer) { printSeverities(w, cfg) })
			}),
			apiCmd("set", "replace the levels and policy with a JSON file (admin; see incident severity list --json)", []string{"file"}, nil, true,
				func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
					raw, err := os.ReadFile(args[0])
					if err != nil {
						return fmt.Errorf("read severity configuration: %w", err)
					}
					if raw, err = withoutEnvelope(raw); err != nil {
						return fmt.Errorf("severity configuration %s: %w", args[0], err)
					}
					var cfg incident.Config
					dec := json.NewDecoder(strings.NewReader(string(raw)))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&cfg); err != nil {
						return fmt.Errorf("severity configuration %s: %w", args[0], err)
					}
					if cfg, err = c.SetIncidentConfig(ctx, cfg); err != nil {
						return err
					}
					return emit(cmd, cfg, func(w io.Writer) { printSeverities(w, cfg) })
				}),
		}},
	)
}

// incidentCmd is a command on one incident: ID as its argument, or
// --latest for the newest unresolved one. It prints the incident fn returns.
func incidentCmd(name, usage string, flags []ucli.Flag,
	fn func(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error)) *ucli.Command {
	flags = append(flags, &ucli.BoolFlag{Name: "latest", Usage: "the newest unresolved incident instead of ID"})
	return &ucli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID|--latest",
		Flags:     flags,
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			id := ""
			switch n := cmd.Args().Len(); {
			case n == 1 && !cmd.Bool("latest"):
				id = cmd.Args().First()
			case n == 0 && cmd.Bool("latest"):
				id = "latest"
			default:
				return withCode(ExitError, fmt.Errorf("%s needs an incident ID or --latest", name))
			}
			c, err := newAPIClient(cmd, true)
			if err != nil {
				return withCode(ExitError, err)
			}
			inc, err := fn(ctx, cmd, c, id)
			if err != nil {
				return withCode(ExitError, err)
			}
			return withCode(ExitError, emit(cmd, inc, func(w io.Writer) { printIncident(w, inc) }))
		},
	}
}

// roleFlags are assign's flags, one per incident role (--release-manager
// for release_manager).
func roleFlags() []ucli.Flag {
	var out []ucli.Flag
	for _, r := range incident.Roles {
		out = append(out, &ucli.StringFlag{Name: roleFlag(r), Usage: "who holds the " + strings.ReplaceAll(string(r), "_", " ") + " role"})
	}
	return out
}

func roleFlag(r incident.Role) string { return strings.ReplaceAll(string(r), "_", "-") }

// assignRoles makes each assignment and unassignment the flags ask for, in
// role order, and returns the incident after the last; at least one is
// needed. Each is its own audited change: when one fails, those before it
// stand, and the error says which failed.
func assignRoles(ctx context.Context, cmd *ucli.Command, c *client.Client, id string) (incident.Incident, error) {
	var inc incident.Incident
	done := 0
	for _, r := range incident.Roles {
		if !cmd.IsSet(roleFlag(r)) {
			continue
		}
		who := strings.TrimSpace(cmd.String(roleFlag(r)))
		if who == "" {
			return inc, fmt.Errorf("--%s needs a name (--unassign %s leaves the role free)", roleFlag(r), r)
		}
		var err error
		if inc, err = c.AssignRole(ctx, id, r, who); err != nil {
			return inc, fmt.Errorf("assign %s (%d before it assigned): %w", r, done, err)
		}
		done++
	}
	for _, name := range cmd.StringSlice("unassign") {
		r, err := incident.ParseRole(strings.ReplaceAll(name, "-", "_"))
		if err != nil {
			return inc, err
		}
		if err := c.UnassignRole(ctx, id, r); err != nil {
			return inc, fmt.Errorf("unassign %s (%d before it done): %w", r, done, err)
		}
		done++
	}
	if done == 0 {
		names := make([]string, len(incident.Roles))
		for i, r := range incident.Roles {
			names[i] = "--" + roleFlag(r)
		}
		return inc, fmt.Errorf("assign needs a role: %s NAME, or --unassign ROLE", strings.Join(names, ", "))
	}
	if len(cmd.StringSlice("unassign")) > 0 {
		return c.Incident(ctx, id)
	}
	return inc, nil
}

// componentFlags parses the repeatable --component NAME=STATUS.
func componentFlags(cmd *ucli.Command) ([]client.ComponentStatus, error) {
	var out []client.ComponentStatus
	for _, kv := range cmd.StringSlice("component") {
		name, st, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--component %q: write NAME=STATUS", kv)
		}
		status, err := incident.ParseComponentStatus(st)
		if err != nil {
			return nil, fmt.Errorf("--component %s: %w", name, err)
		}
		out = append(out, client.ComponentStatus{Name: name, Status: status})
	}
	return out, nil
}

// updateFlags reads --message (required), --component and --no-notify.
func updateFlags(cmd *ucli.Command) (client.IncidentUpdate, error) {
	msg, err := requireFlag(cmd, "message")
	if err != nil {
		return client.IncidentUpdate{}, err
	}
	comps, err := componentFlags(cmd)
	if err != nil {
		return client.IncidentUpdate{}, err
	}
	u := client.IncidentUpdate{Message: msg, Components: comps}
	if cmd.Bool("no-notify") {
		f := false
		u.Notify = &f
	}
	return u, nil
}

// printIncident prints an incident's header and its timeline, newest first.
func printIncident(w io.Writer, i incident.Incident) {
	vis := "public"
	if i.Draft {
		vis = "draft (not public)"
	}
	fmt.Fprintf(w, "incident %d: %s\n", i.ID, i.Title)
	fmt.Fprintf(w, "  status: %s  severity: %s  impact: %s  %s\n", i.Status, i.Severity, i.Impact, vis)
	fmt.Fprintf(w, "  declared: %s by %s\n", fmtWhen(i.CreatedAt), i.By)
	if i.ResolvedAt != nil {
		fmt.Fprintf(w, "  resolved: %s\n", fmtWhen(*i.ResolvedAt))
	}
	for _, a := range i.Roles {
		fmt.Fprintf(w, "  %s: %s (since %s, assigned by %s)\n", strings.ReplaceAll(string(a.Role), "_", " "), a.Who, fmtWhen(a.Since), a.By)
	}
	if i.Unresolved() && i.Holder(incident.RoleCommander) == "" {
		fmt.Fprintf(w, "  commander: nobody; name one: ringfence incident assign %d --commander NAME\n", i.ID)
	}
	if len(i.Releases) > 0 {
		refs := make([]string, len(i.Releases))
		for n, r := range i.Releases {
			refs[n] = r.String()
		}
		fmt.Fprintf(w, "  releases: %s\n", strings.Join(refs, ", "))
	}
	for _, u := range i.Updates {
		note := ""
		if !u.Notify {
			note = " (subscribers not told)"
		}
		fmt.Fprintf(w, "  %s %s by %s%s: %s\n", fmtWhen(u.At), u.Status, u.By, note, u.Body)
		for _, c := range u.Components {
			fmt.Fprintf(w, "      %s: %s -> %s\n", c.Name, c.OldStatus, c.NewStatus)
		}
	}
	if i.Postmortem != "" {
		fmt.Fprintf(w, "  postmortem (%s):\n%s\n", fmtWhenPtr(i.PostmortemAt), i.Postmortem)
	}
}

func printSeverities(w io.Writer, cfg incident.Config) {
	row(w, "SEVERITY", "PAUSES NAMED RELEASES", "DESCRIPTION")
	for _, l := range cfg.Severities {
		row(w, l.Name, cfg.Policy.Pauses(l.Name), l.Description)
	}
	ah := cfg.Policy.AutoHalt
	what := "opens no incident"
	if ah.Open {
		vis := "a draft"
		if ah.Publish {
			vis = "a published"
		}
		what = fmt.Sprintf("opens %s %s incident of %s impact", vis, ah.Severity, ah.Impact)
	}
	row(w, "auto-halt:", what, "")
	row(w, "pull without --incident:", fmt.Sprintf("opens a published %s incident of %s impact", cfg.Policy.Pull.Severity, cfg.Policy.Pull.Impact), "")
}

// reportPullIncident says which incident a pull linked or opened.
func reportPullIncident(cmd *ucli.Command, p client.PulledRelease) {
	if p.IncidentID == 0 {
		return
	}
	verb := "linked to"
	if p.IncidentOpened {
		verb = "opened"
	}
	fmt.Fprintf(cmd.Root().ErrWriter, "incident %d %s\n", p.IncidentID, verb)
}
