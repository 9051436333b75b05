package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// subscriberCommand is `ringfence subscriber`: who the status page tells
// of incidents and maintenance, and the deliveries to them.
func subscriberCommand() *ucli.Command {
	return apiGroup("subscriber", "status page subscribers (webhooks, email) and their deliveries",
		apiCmd("list", "list subscribers", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			subs, err := c.Subscribers(ctx)
			if err != nil {
				return err
			}
			return emit(cmd, subs, func(w io.Writer) {
				row(w, "ID", "KIND", "TARGET", "COMPONENTS", "CREATED", "CONFIRMED")
				for _, s := range subs {
					row(w, s.ID, s.Kind, s.Target, components(s.Components), fmtWhen(s.CreatedAt), fmtWhenPtr(s.ConfirmedAt))
				}
			})
		}),
		apiCmd("create", "add a webhook or email subscriber (incident); a webhook's secret is printed once", nil, []ucli.Flag{
			&ucli.StringFlag{Name: "webhook", Usage: "URL that receives Statuspage-shaped POSTs signed per Standard Webhooks"},
			&ucli.StringFlag{Name: "secret", Usage: "the webhook's signing secret (whsec_...; generated if not given)"},
			&ucli.StringFlag{Name: "email", Usage: "address sent an opt-in link, then every notification"},
			&ucli.StringSliceFlag{Name: "component", Usage: "only notifications about this component (repeatable; none: everything)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			if (cmd.String("webhook") == "") == (cmd.String("email") == "") {
				return withCode(ExitError, fmt.Errorf("give exactly one of --webhook URL and --email ADDR"))
			}
			s, err := c.CreateSubscriber(ctx, client.NewSubscriber{Webhook: cmd.String("webhook"), Secret: cmd.String("secret"),
				Email: cmd.String("email"), Components: cmd.StringSlice("component")})
			if release.ErrorCode(err) == release.ECONFLICT && strings.Contains(release.ErrorMessage(err), "SMTP") {
				return fmt.Errorf("%w\nemail subscribers need the server started with --smtp and --smtp-from", err)
			}
			if err != nil {
				return err
			}
			return emit(cmd, s, func(w io.Writer) {
				row(w, "id:", s.ID)
				row(w, "kind:", s.Kind)
				row(w, "target:", s.Target)
				row(w, "components:", components(s.Components))
				if s.Secret != "" {
					row(w, "secret:", s.Secret)
					row(w, "", "(shown only now; verify webhook-signature with it)")
				}
				if s.Kind == incident.SubscriberEmail {
					row(w, "", "(an opt-in link was sent; nothing else is until it is followed)")
				}
			})
		}),
		apiCmd("delete", "delete a subscriber and its deliveries (incident)", []string{"id"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			if err := c.DeleteSubscriber(ctx, args[0]); err != nil {
				return err
			}
			return emit(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { row(w, "deleted subscriber", args[0]) })
		}),
		apiCmd("deliveries", "list deliveries, newest first", nil, []ucli.Flag{
			&ucli.BoolFlag{Name: "dead", Usage: "only dead ones (every attempt failed; replay them)"},
			&ucli.StringFlag{Name: "state", Usage: "only pending, delivered or dead ones"},
			&ucli.IntFlag{Name: "limit", Value: 100, Usage: "at most this many"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			state := incident.DeliveryState(cmd.String("state"))
			if cmd.Bool("dead") {
				state = incident.DeliveryDead
			}
			ds, err := c.Deliveries(ctx, state, int(cmd.Int("limit")))
			if err != nil {
				return err
			}
			return emit(cmd, ds, func(w io.Writer) {
				row(w, "ID", "SUBSCRIBER", "TARGET", "MESSAGE", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR")
				for _, d := range ds {
					next := "-"
					if d.State == incident.DeliveryPending {
						next = fmtWhen(d.NextAttemptAt)
					}
					row(w, d.ID, d.SubscriberID, d.Target, d.EventID+" "+d.MessageKind, d.State, d.Attempts, next, orDash(d.LastError))
				}
			})
		}),
		apiCmd("replay", "make a dead delivery pending again (incident)", []string{"id"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return withCode(ExitError, fmt.Errorf("delivery id %q is not a positive integer", args[0]))
			}
			if err := c.ReplayDelivery(ctx, id); err != nil {
				return err
			}
			return emit(cmd, map[string]any{"replayed": id}, func(w io.Writer) { row(w, "replayed delivery", id) })
		}),
	)
}

// components writes component ids, or "all".
func components(ids []int64) string {
	if len(ids) == 0 {
		return "all"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}
