package cli

import (
	"context"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// customerCommand is `ringfence customer`.
func customerCommand() *ucli.Command {
	// withRing is a command that puts a customer in the ring --ring names.
	withRing := func(name, usage string, put func(c *client.Client, ctx context.Context, product, customer, ring string) (release.Customer, error)) *ucli.Command {
		flags := []ucli.Flag{&ucli.StringFlag{Name: "ring", Usage: "the customer's ring (required)"}}
		return apiCmd(name, usage, []string{"product", "customer"}, flags, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			ring, err := requireFlag(cmd, "ring")
			if err != nil {
				return err
			}
			out, err := put(c, ctx, args[0], args[1], ring)
			if err != nil {
				return err
			}
			return emitCustomers(cmd, out, []release.Customer{out})
		})
	}
	return apiGroup("customer", "a product's customers, their rings and enrollment keys",
		apiCmd("list", "list a product's customers", []string{"product"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			cs, err := c.Customers(ctx, args[0])
			if err != nil {
				return err
			}
			return emitCustomers(cmd, cs, cs)
		}),
		apiCmd("show", "show one customer", []string{"product", "customer"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			out, err := c.Customer(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return emitCustomers(cmd, out, []release.Customer{out})
		}),
		withRing("create", "add a customer to a ring (admin)", (*client.Client).CreateCustomer),
		withRing("move", "move a customer to another ring (admin)", (*client.Client).MoveCustomer),
		&ucli.Command{
			Name:  "key",
			Usage: "enrollment keys: what a customer's installations check in with (admin)",
			Commands: []*ucli.Command{
				apiCmd("list", "list a customer's enrollment keys", []string{"product", "customer"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
					ks, err := c.EnrollmentKeys(ctx, args[0], args[1])
					if err != nil {
						return err
					}
					return emitKeys(cmd, ks, ks)
				}),
				apiCmd("create", "issue an enrollment key; the key is printed once", []string{"product", "customer"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
					k, err := c.CreateEnrollmentKey(ctx, args[0], args[1])
					if err != nil {
						return err
					}
					return emitSecret(cmd, k, func(w io.Writer) {
						row(w, "id:", k.ID)
						row(w, "customer:", k.Product+"/"+k.Customer)
						row(w, "key:", k.Key)
						row(w, "", "(shown only now: give it to the customer's installations)")
					})
				}),
				apiCmd("revoke", "revoke an enrollment key", []string{"product", "customer", "id"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
					if err := c.RevokeEnrollmentKey(ctx, args[0], args[1], args[2]); err != nil {
						return err
					}
					return emit(cmd, map[string]string{"revoked": args[2]}, func(w io.Writer) { row(w, "revoked enrollment key", args[2]) })
				}),
			},
		},
	)
}

func emitCustomers(cmd *ucli.Command, v any, cs []release.Customer) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "CUSTOMER", "RING", "CREATED")
		for _, c := range cs {
			row(w, c.Name, c.Ring, fmtWhen(c.CreatedAt))
		}
	})
}

func emitKeys(cmd *ucli.Command, v any, ks []client.EnrollmentKey) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "ID", "PREFIX", "CREATED", "BY", "REVOKED")
		for _, k := range ks {
			row(w, k.ID, k.Prefix, fmtWhen(k.CreatedAt), k.CreatedBy, fmtWhenPtr(k.RevokedAt))
		}
	})
}
