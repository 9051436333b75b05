package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
)

// productCommand is `ringfence product`.
func productCommand() *ucli.Command {
	return apiGroup("product", "products, their required gates and auto-halt policy",
		apiCmd("list", "list products", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			ps, err := c.Products(ctx)
			if err != nil {
				return err
			}
			return emit(cmd, ps, func(w io.Writer) {
				row(w, "PRODUCT", "REQUIRED GATES", "AUTO-HALT", "CREATED")
				for _, p := range ps {
					row(w, p.Name, orDash(strings.Join(p.RequiredGates, ",")), fmtPolicy(p.Policy), fmtWhen(p.CreatedAt))
				}
			})
		}),
		apiCmd("show", "show a product", []string{"product"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			p, err := c.Product(ctx, args[0])
			if err != nil {
				return err
			}
			return emitProduct(cmd, p)
		}),
		apiCmd("create", "create a product (admin)", []string{"product"}, productFlags(), true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			np := client.NewProduct{Name: args[0], RequiredGates: cmd.StringSlice("gate")}
			if haltFlagsSet(cmd) {
				pol := release.DefaultPolicy()
				applyHaltFlags(cmd, &pol)
				np.Halt = &pol
			}
			p, err := c.CreateProduct(ctx, np)
			if err != nil {
				return err
			}
			return emitProduct(cmd, p)
		}),
		apiCmd("update", "change a product's required gates or auto-halt policy (admin)", []string{"product"},
			append(productFlags(), &ucli.BoolFlag{Name: "no-gates", Usage: "require no gates"}), true,
			func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
				var patch client.ProductPatch
				switch {
				case cmd.Bool("no-gates") && cmd.IsSet("gate"):
					return fmt.Errorf("--no-gates and --gate exclude each other")
				case cmd.Bool("no-gates"):
					patch.RequiredGates = &[]string{}
				case cmd.IsSet("gate"):
					gates := cmd.StringSlice("gate")
					patch.RequiredGates = &gates
				}
				if patch.RequiredGates == nil && !haltFlagsSet(cmd) {
					return fmt.Errorf("nothing to change: give --gate, --no-gates or --halt-* flags")
				}
				if !haltFlagsSet(cmd) {
					p, err := c.UpdateProduct(ctx, args[0], patch)
					if err != nil {
						return err
					}
					return emitProduct(cmd, p)
				}
				// Read, change the named halt fields, write back only if
				// nobody changed the product meanwhile (If-Match); re-read
				// and retry a few times if somebody did.
				for attempt := 1; ; attempt++ {
					cur, etag, err := c.ProductTagged(ctx, args[0])
					if err != nil {
						return err
					}
					applyHaltFlags(cmd, &cur.Policy)
					if patch.Halt, err = json.Marshal(cur.Policy); err != nil {
						return fmt.Errorf("encode the halt policy: %w", err)
					}
					p, err := c.UpdateProductIfMatch(ctx, args[0], patch, etag)
					if release.ErrorCode(err) == problem.PreconditionFailed && attempt < 3 {
						continue
					}
					if err != nil {
						return err
					}
					return emitProduct(cmd, p)
				}
			}),
	)
}

// productFlags are the settable fields of a product.
func productFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "gate", Usage: "a gate every release must pass before its first ring (repeatable)"},
		&durationFlag{Name: "halt-window", Usage: "auto-halt: how far back failures count (default 1h)"},
		&ucli.IntFlag{Name: "halt-min-failures", Usage: "auto-halt: least failing installations (default 3)"},
		&ucli.IntFlag{Name: "halt-min-customers", Usage: "auto-halt: least distinct customers among the failing installations (default 2)"},
		&ucli.FloatFlag{Name: "halt-failure-share", Usage: "auto-halt: least share of failing among moved installations, 0..1 (default 0.2)"},
		&ucli.BoolFlag{Name: "halt-disabled", Usage: "auto-halt: off (give --halt-disabled=false to turn it on)"},
	}
}

func haltFlagsSet(cmd *ucli.Command) bool {
	for _, f := range []string{"halt-window", "halt-min-failures", "halt-min-customers", "halt-failure-share", "halt-disabled"} {
		if cmd.IsSet(f) {
			return true
		}
	}
	return false
}

func applyHaltFlags(cmd *ucli.Command, p *release.Policy) {
	if cmd.IsSet("halt-window") {
		p.Window = cmd.Duration("halt-window")
	}
	if cmd.IsSet("halt-min-failures") {
		p.MinFailures = int(cmd.Int("halt-min-failures"))
	}
	if cmd.IsSet("halt-min-customers") {
		p.MinCustomers = int(cmd.Int("halt-min-customers"))
	}
	if cmd.IsSet("halt-failure-share") {
		p.MinFailureShare = cmd.Float("halt-failure-share")
	}
	if cmd.IsSet("halt-disabled") {
		p.Disabled = cmd.Bool("halt-disabled")
	}
}

func fmtPolicy(p release.Policy) string {
	if p.Disabled {
		return "off"
	}
	return fmt.Sprintf(">=%d of >=%d customers and >=%.0f%% in %s", p.MinFailures, p.MinCustomers, p.MinFailureShare*100, p.Window)
}

func emitProduct(cmd *ucli.Command, p release.Product) error {
	return emit(cmd, p, func(w io.Writer) {
		row(w, "product:", p.Name)
		row(w, "required gates:", orDash(strings.Join(p.RequiredGates, ", ")))
		row(w, "auto-halt:", fmtPolicy(p.Policy))
		row(w, "created:", fmtWhen(p.CreatedAt))
	})
}
