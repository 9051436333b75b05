package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// This file holds what the commands over the server's API share: the
// --server/--token/--timeout/--json flags, argument checks, the client and
// output helpers; and `ringfence audit`.

// apiFlags are the flags of every API command group; subcommands inherit
// them, so they may be given before or after the subcommand.
func apiFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "server", Sources: ucli.EnvVars("RINGFENCE_SERVER"),
			Usage: "URL of the ringfence server (e.g. https://releases.example.com)"},
		&ucli.StringFlag{Name: "token", Sources: ucli.EnvVars("RINGFENCE_TOKEN"),
			Usage: "API token (the first one comes from: ringfence admin token create)"},
		&durationFlag{Name: "timeout", Value: client.DefaultTimeout, Usage: "bound on each request"},
		&ucli.BoolFlag{Name: "json", Usage: "print the server's JSON instead of a table"},
	}
}

// apiGroup is a top-level command group over the API.
func apiGroup(name, usage string, subs ...*ucli.Command) *ucli.Command {
	return &ucli.Command{Name: name, Usage: usage, Flags: apiFlags(), Commands: subs}
}

// apiFunc runs one API command with its positional arguments checked.
type apiFunc func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error

// apiCmd is a leaf command: args names its positional arguments (all
// required); needToken false lets it run without a token (public routes).
func apiCmd(name, usage string, args []string, flags []ucli.Flag, needToken bool, fn apiFunc) *ucli.Command {
	usageText := name
	for _, a := range args {
		usageText += " " + strings.ToUpper(a)
	}
	return &ucli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: strings.TrimPrefix(usageText, name+" "),
		Flags:     flags,
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if got := cmd.Args().Len(); got != len(args) {
				return withCode(ExitError, fmt.Errorf("%s needs %d argument(s) (%s), got %d", name, len(args), strings.Join(args, ", "), got))
			}
			c, err := newAPIClient(cmd, needToken)
			if err != nil {
				return withCode(ExitError, err)
			}
			return withCode(ExitError, fn(ctx, cmd, c, cmd.Args().Slice()))
		},
	}
}

// releaseFunc runs one command on the release its first two arguments name;
// more holds the arguments after PRODUCT VERSION.
type releaseFunc func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, more []string) error

// releaseCmd is an apiCmd whose arguments start with PRODUCT VERSION (more
// names any after them): it parses the version before fn runs.
func releaseCmd(name, usage string, more []string, flags []ucli.Flag, fn releaseFunc) *ucli.Command {
	args := append([]string{"product", "version"}, more...)
	return apiCmd(name, usage, args, flags, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
		v, err := versionArg(args[1])
		if err != nil {
			return err
		}
		return fn(ctx, cmd, c, args[0], v, args[2:])
	})
}

// releaseChange is a releaseCmd that answers the release as the server
// returns it (after a change, or as it is) and prints it.
func releaseChange(name, usage string, flags []ucli.Flag,
	fn func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version) (release.Release, error)) *ucli.Command {
	return releaseCmd(name, usage, nil, flags, func(ctx context.Context, cmd *ucli.Command, c *client.Client, product string, v release.Version, _ []string) error {
		r, err := fn(ctx, cmd, c, product, v)
		if err != nil {
			return err
		}
		return emitRelease(cmd, r)
	})
}

// newAPIClient builds the client from --server, --token and --timeout.
func newAPIClient(cmd *ucli.Command, needToken bool) (*client.Client, error) {
	token := cmd.String("token")
	if needToken && token == "" {
		return nil, fmt.Errorf("no API token: set --token or RINGFENCE_TOKEN")
	}
	return client.New(cmd.String("server"), token, client.WithHTTPClient(&http.Client{Timeout: cmd.Duration("timeout")}))
}

// emit prints v as JSON with --json, else through human.
func emit(cmd *ucli.Command, v any, human func(w io.Writer)) error {
	out := cmd.Root().Writer
	if cmd.Bool("json") {
		return writeJSON(out, v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// fmtWhen formats a time for tables; "-" for none.
func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// fmtWhenPtr is fmtWhen for optional times.
func fmtWhenPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtWhen(*t)
}

// versionArg parses a version argument.
func versionArg(s string) (release.Version, error) {
	v, err := release.ParseVersion(s)
	if err != nil {
		return v, fmt.Errorf("version argument: %s", release.ErrorMessage(err))
	}
	return v, nil
}

// requireFlag fails unless the string flag is set and not empty.
func requireFlag(cmd *ucli.Command, name string) (string, error) {
	s := cmd.String(name)
	if s == "" {
		return "", fmt.Errorf("--%s is required", name)
	}
	return s, nil
}

// auditCommand is `ringfence audit`: the audit log, newest first.
func auditCommand() *ucli.Command {
	c := apiCmd("audit", "show the audit log, newest first", nil, []ucli.Flag{
		&ucli.IntFlag{Name: "limit", Value: 50, Usage: "entries to show (at most 1000)"},
		&ucli.Int64Flag{Name: "before", Usage: "only entries with an id below this (paging)"},
	}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
		es, err := c.Audit(ctx, cmd.Int64("before"), int(cmd.Int("limit")))
		if err != nil {
			return err
		}
		return emit(cmd, es, func(w io.Writer) {
			row(w, "ID", "AT", "ACTOR", "ACTION", "TARGET")
			for _, e := range es {
				row(w, e.ID, fmtWhen(e.At), e.Actor, e.Action, e.Target)
			}
		})
	})
	c.Flags = append(c.Flags, apiFlags()...)
	return c
}
