package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
)

// maintenanceCommand is `ringfence maintenance`: scheduled maintenance,
// started and completed on time by the server.
func maintenanceCommand() *ucli.Command {
	return apiGroup("maintenance", "scheduled maintenance: schedule, list, cancel, set",
		apiCmd("schedule", "announce a maintenance; the server starts and completes it on time (incident)", []string{"title"}, []ucli.Flag{
			&ucli.StringFlag{Name: "start", Usage: "when it starts, RFC 3339 (2026-12-24T02:00:00Z) (required)"},
			&ucli.StringFlag{Name: "end", Usage: "when it ends, RFC 3339 (required)"},
			&ucli.StringSliceFlag{Name: "component", Usage: "a component it touches (repeatable); under maintenance while it runs"},
			&ucli.StringFlag{Name: "message", Usage: "what will happen, for customers (required)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			start, err := timeFlag(cmd, "start")
			if err != nil {
				return err
			}
			end, err := timeFlag(cmd, "end")
			if err != nil {
				return err
			}
			msg, err := requireFlag(cmd, "message")
			if err != nil {
				return err
			}
			m, err := c.ScheduleMaintenance(ctx, client.NewMaintenance{Title: args[0], Message: msg, Start: start, End: end,
				Components: cmd.StringSlice("component")})
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				return printJSON(cmd, m)
			}
			fmt.Fprintln(cmd.Root().Writer, m.ID)
			return nil
		}),
		apiCmd("list", "list maintenances, newest start first", nil, []ucli.Flag{
			&ucli.BoolFlag{Name: "pending", Usage: "only those not yet ended"},
			&ucli.IntFlag{Name: "limit", Value: 50, Usage: "how many (at most 1000)"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			ms, err := c.Maintenances(ctx, cmd.Bool("pending"), int(cmd.Int("limit")))
			if err != nil {
				return err
			}
			return emitMaintenances(cmd, ms, ms)
		}),
		apiCmd("show", "show a maintenance and its timeline", []string{"id"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			id, err := maintenanceArg(args[0])
			if err != nil {
				return err
			}
			m, err := c.Maintenance(ctx, id)
			if err != nil {
				return err
			}
			return emit(cmd, m, func(w io.Writer) {
				fmt.Fprintf(w, "maintenance %d: %s\n", m.ID, m.Title)
				fmt.Fprintf(w, "  status: %s  window: %s to %s\n", m.Status, fmtWhen(m.ScheduledFor), fmtWhen(m.ScheduledUntil))
				for _, u := range m.Updates {
					fmt.Fprintf(w, "  %s %s by %s: %s\n", fmtWhen(u.At), u.Status, u.By, u.Body)
					for _, ch := range u.Components {
						fmt.Fprintf(w, "      %s: %s -> %s\n", ch.Name, ch.OldStatus, ch.NewStatus)
					}
				}
			})
		}),
		apiCmd("cancel", "cancel a maintenance that has not started (incident)", []string{"id"}, []ucli.Flag{
			&ucli.StringFlag{Name: "message", Usage: "why, for customers"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			return moveMaintenance(ctx, cmd, c, args[0], incident.MaintenanceCancelled)
		}),
		apiCmd("set", "move a maintenance by hand: in_progress, verifying or completed (incident)", []string{"id", "status"}, []ucli.Flag{
			&ucli.StringFlag{Name: "message", Usage: "the update, for customers"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			return moveMaintenance(ctx, cmd, c, args[0], incident.MaintenanceStatus(args[1]))
		}),
	)
}

// maintenanceArg parses a maintenance id argument.
func maintenanceArg(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("maintenance id %q: use a positive integer", s)
	}
	return id, nil
}

func moveMaintenance(ctx context.Context, cmd *ucli.Command, c *client.Client, idArg string, to incident.MaintenanceStatus) error {
	id, err := maintenanceArg(idArg)
	if err != nil {
		return err
	}
	m, err := c.MoveMaintenance(ctx, id, to, cmd.String("message"))
	if err != nil {
		return err
	}
	return emitMaintenances(cmd, m, []incident.Maintenance{m})
}

// timeFlag parses a required RFC 3339 time flag.
func timeFlag(cmd *ucli.Command, name string) (time.Time, error) {
	s, err := requireFlag(cmd, name)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: use RFC 3339, such as 2026-12-24T02:00:00Z", name, s)
	}
	return t, nil
}

func emitMaintenances(cmd *ucli.Command, v any, ms []incident.Maintenance) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "ID", "STATUS", "START", "END", "COMPONENTS", "TITLE")
		for _, m := range ms {
			ids := make([]string, len(m.Components))
			for i, c := range m.Components {
				ids[i] = strconv.FormatInt(c, 10)
			}
			row(w, m.ID, m.Status, fmtWhen(m.ScheduledFor), fmtWhen(m.ScheduledUntil), orDash(strings.Join(ids, ",")), m.Title)
		}
	})
}
