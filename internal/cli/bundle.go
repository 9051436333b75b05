package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/atomicfile"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// bundleCommand is `ringfence bundle`: signed files carried into and out of
// air-gapped sites (docs/air-gapped.md).
func bundleCommand() *ucli.Command {
	return apiGroup("bundle", "offline bundles for air-gapped sites, and the exports they send back",
		apiCmd("create", "issue a signed offline bundle for a customer and write it to -o FILE (releaser)", []string{"product", "customer"},
			[]ucli.Flag{
				&ucli.StringFlag{Name: "valid", Value: "30d", Usage: "how long the bundle is valid: a number of days (30d) or a duration (720h); at most 366d"},
				&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "`FILE` to write the bundle to (required)"},
			}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
				out, err := requireFlag(cmd, "output")
				if err != nil {
					return err
				}
				if _, err := release.ParseValidity(cmd.String("valid")); err != nil {
					return fmt.Errorf("--valid: %s", release.ErrorMessage(err))
				}
				env, err := c.CreateBundle(ctx, args[0], args[1], cmd.String("valid"))
				if err != nil {
					return err
				}
				b, err := release.DecodeBundle(env.Payload)
				if err != nil {
					return fmt.Errorf("the server's bundle: %w", err)
				}
				data, err := json.MarshalIndent(env, "", "  ")
				if err != nil {
					return err
				}
				if err := atomicfile.Write(out, append(data, '\n'), 0o644); err != nil {
					return fmt.Errorf("write bundle: %w", err)
				}
				return emit(cmd, b, func(w io.Writer) { printBundle(w, b, env, out) })
			}),
		apiCmd("import", "record a signed export carried out of an air-gapped site (releaser)", []string{"file"}, nil, true,
			func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
				data, err := os.ReadFile(args[0])
				if err != nil {
					return fmt.Errorf("read export: %w", err)
				}
				var env sign.Envelope
				if err := json.Unmarshal(data, &env); err != nil {
					return fmt.Errorf("export %s is not a signed envelope: %w", args[0], err)
				}
				res, err := c.ImportExport(ctx, env)
				if err != nil {
					return err
				}
				return emit(cmd, res, func(w io.Writer) {
					if res.Duplicate {
						row(w, "already imported:", args[0]+" (nothing recorded again)")
					}
					row(w, "export:", res.ID)
					row(w, "installation:", res.InstanceID+" of "+res.Customer)
					row(w, "reports:", fmt.Sprintf("%d in the file, %d new (%d events) recorded as check-ins", res.Reports, res.Recorded, res.Events))
					row(w, "acknowledged:", fmt.Sprintf("through report %d in the customer's next bundle", res.Through))
					if len(res.Failing) > 0 {
						vs := make([]string, len(res.Failing))
						for i, v := range res.Failing {
							vs[i] = v.String()
						}
						row(w, "failures of:", strings.Join(vs, ", ")+" (auto-halt evaluates them)")
					}
				})
			}),
	)
}

// printBundle describes a bundle just written to path.
func printBundle(w io.Writer, b release.Bundle, env sign.Envelope, path string) {
	keys := make([]string, len(env.Signatures))
	for i, s := range env.Signatures {
		keys[i] = s.KeyID
	}
	row(w, "bundle:", fmt.Sprintf("%s for %s/%s, sequence %d", path, b.Product, b.Customer, b.Sequence))
	ring := "- (the product has no rings)"
	if b.Ring != nil {
		ring = b.Ring.Name + ", rollout " + b.Ring.RolloutPercent + "%"
	}
	row(w, "ring:", ring)
	row(w, "valid:", b.IssuedAt.Format(time.RFC3339)+" until "+b.ExpiresAt.Format(time.RFC3339))
	row(w, "signed by:", strings.Join(keys, ", "))
	row(w, "acknowledges:", fmt.Sprintf("exports of %d installations", len(b.Acknowledged)))
	row(w, "VERSION", "STATUS", "IN RING SINCE", "GUIDANCE")
	for _, r := range b.Releases {
		since := "-"
		if r.AvailableSince != nil {
			since = r.AvailableSince.Format(time.RFC3339)
		}
		g := ""
		switch {
		case r.Pulled != nil:
			g = string(r.Pulled.Action)
			if !r.Pulled.Target.IsZero() {
				g += " " + r.Pulled.Target.String()
			}
			g += ": " + r.Pulled.Reason
		case r.Paused != nil:
			g = r.Paused.Reason
		}
		if r.RequiredStop {
			g = strings.TrimPrefix(g+"; required stop", "; ")
		}
		if len(r.Waives) > 0 {
			g = strings.TrimPrefix(g+"; waives "+strings.Join(r.Waives, ", "), "; ")
		}
		if r.RequiresPostgres > 0 {
			g = strings.TrimPrefix(g+fmt.Sprintf("; requires PostgreSQL %d", r.RequiresPostgres), "; ")
		}
		row(w, r.Version, r.Status, since, g)
	}
}
