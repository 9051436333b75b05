package cli

import (
	"context"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// gateCommand is `ringfence gate`: results of the checks CI runs on a
// release before its first ring.
func gateCommand() *ucli.Command {
	post := func(name string, outcome release.GateOutcome, usage string) *ucli.Command {
		return apiCmd(name, usage, []string{"product", "version", "gate"}, []ucli.Flag{
			&ucli.StringFlag{Name: "url", Usage: "link to the CI run or report"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			v, err := versionArg(args[1])
			if err != nil {
				return err
			}
			g, err := c.PostGateResult(ctx, args[0], v, args[2], outcome, cmd.String("url"))
			if err != nil {
				return err
			}
			return emitGates(cmd, g, []release.GateResult{g})
		})
	}
	return apiGroup("gate", "gate results (posted by CI) that let a release into its first ring",
		apiCmd("list", "list a release's gate results", []string{"product", "version"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			v, err := versionArg(args[1])
			if err != nil {
				return err
			}
			gs, err := c.GateResults(ctx, args[0], v)
			if err != nil {
				return err
			}
			return emitGates(cmd, gs, gs)
		}),
		post("pass", release.GatePass, "record that a release passed a gate (releaser)"),
		post("fail", release.GateFail, "record that a release failed a gate (releaser)"),
	)
}

func emitGates(cmd *ucli.Command, v any, gs []release.GateResult) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "GATE", "STATUS", "POSTED", "BY", "URL")
		for _, g := range gs {
			row(w, g.Name, g.Status, fmtWhen(g.PostedAt), orDash(g.PostedBy), orDash(g.URL))
		}
	})
}
