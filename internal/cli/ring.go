package cli

import (
	"context"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// ringCommand is `ringfence ring`.
func ringCommand() *ucli.Command {
	return apiGroup("ring", "a product's rollout rings",
		apiCmd("list", "list a product's rings in rollout order", []string{"product"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			rs, err := c.Rings(ctx, args[0])
			if err != nil {
				return err
			}
			return emitRings(cmd, rs, rs)
		}),
		apiCmd("show", "show one ring", []string{"product", "ring"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			r, err := c.Ring(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return emitRings(cmd, r, []release.Ring{r})
		}),
		apiCmd("create", "add a ring to a product (admin)", []string{"product", "ring"}, ringFlags(), true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			r := release.Ring{Name: args[1], Position: int(cmd.Int("position")), SoakTime: cmd.Duration("soak"),
				RolloutPercent: cmd.Float("rollout"), MinHealthy: int(cmd.Int("min-healthy"))}
			if !cmd.IsSet("rollout") {
				r.RolloutPercent = 100
			}
			out, err := c.CreateRing(ctx, args[0], r)
			if err != nil {
				return err
			}
			return emitRings(cmd, out, []release.Ring{out})
		}),
		apiCmd("update", "change a ring (admin)", []string{"product", "ring"}, ringFlags(), true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			var p client.RingPatch
			if cmd.IsSet("position") {
				n := int(cmd.Int("position"))
				p.Position = &n
			}
			if cmd.IsSet("soak") {
				soak := cmd.Duration("soak").String()
				p.Soak = &soak
			}
			if cmd.IsSet("rollout") {
				f := cmd.Float("rollout")
				p.RolloutPercent = &f
			}
			if cmd.IsSet("min-healthy") {
				n := int(cmd.Int("min-healthy"))
				p.MinHealthy = &n
			}
			if p == (client.RingPatch{}) {
				return fmt.Errorf("nothing to change: give --position, --soak, --rollout or --min-healthy")
			}
			out, err := c.UpdateRing(ctx, args[0], args[1], p)
			if err != nil {
				return err
			}
			return emitRings(cmd, out, []release.Ring{out})
		}),
	)
}

func ringFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.IntFlag{Name: "position", Usage: "rollout order, 0 = the first ring a release enters"},
		&durationFlag{Name: "soak", Usage: "time a release spends here before the next ring (e.g. 24h)"},
		&ucli.FloatFlag{Name: "rollout", Usage: "percent of the ring's installations offered a release (create: default 100)"},
		&ucli.IntFlag{Name: "min-healthy", Usage: "healthy installations on a release needed here before the next ring"},
	}
}

func emitRings(cmd *ucli.Command, v any, rs []release.Ring) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "POSITION", "RING", "SOAK", "ROLLOUT", "MIN HEALTHY")
		for _, r := range rs {
			row(w, r.Position, r.Name, r.SoakTime, fmt.Sprintf("%g%%", r.RolloutPercent), r.MinHealthy)
		}
	})
}
