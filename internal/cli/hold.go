package cli

import (
	"context"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// holdCommand is `ringfence hold`: raise a flag on a release.
func holdCommand() *ucli.Command {
	return apiGroup("hold", "holds: flags anyone can raise to stop a release's promotion",
		releaseCmd("list", "list a release's holds, open and resolved", nil, nil, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, _ []string) error {
			hs, err := c.Holds(ctx, product, v)
			if err != nil {
				return err
			}
			return emitHolds(cmd, hs, hs)
		}),
		releaseCmd("raise", "put a hold on a release (any role)", nil, []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (required; visible to everyone)"},
		}, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, _ []string) error {
			reason, err := requireFlag(cmd, "reason")
			if err != nil {
				return err
			}
			h, err := c.RaiseHold(ctx, product, v, reason)
			if err != nil {
				return err
			}
			return emitHolds(cmd, h, []release.Hold{h})
		}),
		apiCmd("resolve", "resolve a hold (releaser)", []string{"product", "id"}, []ucli.Flag{
			&ucli.StringFlag{Name: "resolution", Usage: "what was found or done (required)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			res, err := requireFlag(cmd, "resolution")
			if err != nil {
				return err
			}
			h, err := c.ResolveHold(ctx, args[0], args[1], res)
			if err != nil {
				return err
			}
			return emitHolds(cmd, h, []release.Hold{h})
		}),
	)
}

func emitHolds(cmd *ucli.Command, v any, hs []release.Hold) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "ID", "RELEASE", "RAISED", "BY", "REASON", "RESOLVED", "RESOLUTION")
		for _, h := range hs {
			row(w, h.ID, h.Version, fmtWhen(h.RaisedAt), h.RaisedBy, h.Reason, fmtWhenPtr(h.ResolvedAt), orDash(h.Resolution))
		}
	})
}
