package cli

import (
	"context"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
)

// componentCommand is `ringfence component`: the status page's components.
func componentCommand() *ucli.Command {
	return apiGroup("component", "status page components: create, set status, list",
		apiCmd("list", "list the components in page order", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			cs, err := c.Components(ctx)
			if err != nil {
				return err
			}
			return emitComponents(cmd, cs, cs)
		}),
		apiCmd("create", "add a component to the status page (incident)", []string{"name"}, []ucli.Flag{
			&ucli.StringFlag{Name: "group", Usage: "the group it belongs to (created if new)"},
			&ucli.StringFlag{Name: "description", Usage: "what it is, for customers"},
			&ucli.StringFlag{Name: "status", Usage: "initial status (default operational)"},
			&ucli.BoolFlag{Name: "only-show-if-degraded", Usage: "hide it from the page while operational"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			nc := client.NewComponent{Name: args[0], Group: cmd.String("group"), Description: cmd.String("description"),
				OnlyShowIfDegraded: cmd.Bool("only-show-if-degraded")}
			if s := cmd.String("status"); s != "" {
				st, err := incident.ParseComponentStatus(s)
				if err != nil {
					return err
				}
				nc.Status = st
			}
			comp, err := c.CreateComponent(ctx, nc)
			if err != nil {
				return err
			}
			return emitComponents(cmd, comp, []incident.Component{comp})
		}),
		apiCmd("update", "rename, describe, regroup or move a component (incident)", []string{"name"}, []ucli.Flag{
			&ucli.StringFlag{Name: "name", Usage: "new name"},
			&ucli.StringFlag{Name: "group", Usage: "move it into this group (created if new); \"\" for the top level"},
			&ucli.StringFlag{Name: "description", Usage: "what it is, for customers"},
			&ucli.IntFlag{Name: "position", Usage: "its place within its group (or the top level), 0 first"},
			&ucli.BoolFlag{Name: "only-show-if-degraded", Usage: "hide it from the page while operational"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			var p client.ComponentPatch
			setIf(cmd, "name", &p.Name, cmd.String)
			setIf(cmd, "group", &p.Group, cmd.String)
			setIf(cmd, "description", &p.Description, cmd.String)
			setIf(cmd, "only-show-if-degraded", &p.OnlyShowIfDegraded, cmd.Bool)
			if cmd.IsSet("position") {
				n := int(cmd.Int("position"))
				p.Position = &n
			}
			comp, err := c.UpdateComponent(ctx, args[0], p)
			if err != nil {
				return err
			}
			return emitComponents(cmd, comp, []incident.Component{comp})
		}),
		apiCmd("set", "set a component's status outside any incident (incident); subscribers are told", []string{"name", "status"}, []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (for the audit log)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			st, err := incident.ParseComponentStatus(args[1])
			if err != nil {
				return err
			}
			comp, err := c.SetComponentStatus(ctx, args[0], st, cmd.String("reason"))
			if err != nil {
				return err
			}
			return emitComponents(cmd, comp, []incident.Component{comp})
		}),
	)
}

func emitComponents(cmd *ucli.Command, v any, cs []incident.Component) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "ID", "NAME", "GROUP", "STATUS", "UPDATED")
		for _, c := range cs {
			row(w, c.ID, c.Name, orDash(c.Group), c.Status, fmtWhen(c.UpdatedAt))
		}
	})
}

// setIf points *dst at the flag's value when the flag was given.
func setIf[T any](cmd *ucli.Command, name string, dst **T, get func(string) T) {
	if cmd.IsSet(name) {
		v := get(name)
		*dst = &v
	}
}
