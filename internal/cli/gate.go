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
		return releaseCmd(name, usage, []string{"gate"}, []ucli.Flag{
			&ucli.StringFlag{Name: "url", Usage: "link to the CI run or report"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, more []string) error {
			g, err := c.PostGateResult(ctx, product, v, more[0], outcome, cmd.String("url"))
			if err != nil {
				return err
			}
			return emitGates(cmd, g, []release.GateResult{g})
		})
	}
	return apiGroup("gate", "gate results (posted by CI) that let a release into its first ring",
		releaseCmd("list", "list a release's gate results", nil, nil, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, _ []string) error {
			gs, err := c.GateResults(ctx, product, v)
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
