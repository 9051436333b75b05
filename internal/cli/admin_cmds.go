package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
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
		&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a table: the server's answer between schema_version and duration_seconds (a list as items)"},
		&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success (the exit code says it); errors still go to stderr"},
		&ucli.StringFlag{Name: "product", Sources: ucli.EnvVars("RINGFENCE_PRODUCT"),
			Usage: "the product for commands whose first argument is PRODUCT, when that argument is left out"},
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
			given := cmd.Args().Slice()
			if p := cmd.String("product"); p != "" && len(args) > 0 && args[0] == "product" && len(given) == len(args)-1 {
				given = append([]string{p}, given...) // the default product (--product, RINGFENCE_PRODUCT)
			}
			if got := len(given); got != len(args) {
				return withCode(ExitError, fmt.Errorf("%s needs %d argument(s) (%s), got %d", name, len(args), strings.Join(args, ", "), got))
			}
			c, err := newAPIClient(cmd, needToken)
			if err != nil {
				return withCode(ExitError, err)
			}
			return withCode(ExitError, fn(ctx, cmd, c, given))
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

// newAPIClient builds the client from --server, --token and --timeout,
// and starts the command's clock (duration_seconds of its --json).
func newAPIClient(cmd *ucli.Command, needToken bool) (*client.Client, error) {
	startClock(cmd)
	if cmd.String("server") == "" {
		return nil, fmt.Errorf("no server: set --server or RINGFENCE_SERVER")
	}
	token := cmd.String("token")
	if needToken && token == "" {
		return nil, fmt.Errorf("no API token: set --token or RINGFENCE_TOKEN")
	}
	return client.New(cmd.String("server"), token, client.WithHTTPClient(&http.Client{Timeout: cmd.Duration("timeout")}))
}

// emit prints v as JSON with --json (see printJSON), else through human.
func emit(cmd *ucli.Command, v any, human func(w io.Writer)) error {
	if cmd.Bool("quiet") {
		return nil
	}
	return emitSecret(cmd, v, human)
}

// emitSecret is emit for output that is shown only once (a new token or
// enrollment key): --quiet does not swallow it.
func emitSecret(cmd *ucli.Command, v any, human func(w io.Writer)) error {
	if cmd.Bool("json") {
		return printJSON(cmd, v)
	}
	tw := tabwriter.NewWriter(cmd.Root().Writer, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

// jsonSchemaVersion versions the --json documents of the API commands.
const jsonSchemaVersion = 1

// startKey is where startClock keeps a command's start in its Metadata.
const startKey = "ringfence.start"

// startClock records when cmd began, for its duration_seconds.
func startClock(cmd *ucli.Command) {
	if cmd.Metadata == nil {
		cmd.Metadata = map[string]any{}
	}
	cmd.Metadata[startKey] = time.Now()
}

// withoutEnvelope takes schema_version and duration_seconds out of a
// document printJSON printed, so it can be sent back (severity set takes
// what severity list --json printed). Anything else is left as it is.
func withoutEnvelope(doc []byte) ([]byte, error) {
	var members map[string]json.RawMessage
	if json.Unmarshal(doc, &members) != nil {
		return doc, nil // not an object: the decoder that follows says why
	}
	if _, ok := members["schema_version"]; !ok {
		return doc, nil
	}
	delete(members, "schema_version")
	delete(members, "duration_seconds")
	return json.Marshal(members)
}

// printJSON prints v as an API command's --json document, the shape of
// the pg commands' reports: one object, "schema_version" first and
// "duration_seconds" (since startClock) last, v's members between them. A
// list is the document's "items".
func printJSON(cmd *ucli.Command, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("render JSON: %w", err)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
		if rv.IsNil() {
			body = []byte("[]")
		}
		body = append(append([]byte(`{"items":`), body...), '}')
	}
	members := bytes.TrimSpace(body)
	if len(members) < 2 || members[0] != '{' {
		return fmt.Errorf("render JSON: %T is not a JSON object", v)
	}
	members = bytes.TrimSpace(members[1 : len(members)-1])
	start, _ := cmd.Metadata[startKey].(time.Time)
	var doc bytes.Buffer
	fmt.Fprintf(&doc, `{"schema_version":%d,`, jsonSchemaVersion)
	if len(members) > 0 {
		doc.Write(members)
		doc.WriteByte(',')
	}
	fmt.Fprintf(&doc, `"duration_seconds":%s}`, strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64))
	var out bytes.Buffer
	if err := json.Indent(&out, doc.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("render JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = cmd.Root().Writer.Write(out.Bytes())
	return err
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

// auditCommand is `ringfence audit`: the audit log, newest first, filtered
// by the server.
func auditCommand() *ucli.Command {
	c := apiCmd("audit", "show the audit log, newest first (filter by product, release, action, actor, since)", nil, []ucli.Flag{
		&ucli.IntFlag{Name: "limit", Value: 50, Usage: "entries to show"},
		&ucli.Int64Flag{Name: "before", Usage: "only entries with an id below this (paging)"},
		&ucli.StringFlag{Name: "release", Usage: "only entries about release `VERSION` (of --product, or any product)"},
		&ucli.StringFlag{Name: "action", Usage: "only this action, or actions starting with it (e.g. release.pull, gate)"},
		&ucli.StringFlag{Name: "actor", Usage: "only entries whose actor's name or token id contains this"},
		&durationFlag{Name: "since", Usage: "only entries at most this old (e.g. 2h, 7d)"},
	}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
		q := client.AuditQuery{Before: cmd.Int64("before"), Product: cmd.String("product"), Release: cmd.String("release"),
			Action: cmd.String("action"), Actor: cmd.String("actor")}
		if cmd.IsSet("since") {
			q.Since = time.Now().Add(-cmd.Duration("since"))
		}
		if q.Release != "" {
			if _, err := versionArg(q.Release); err != nil {
				return err
			}
		}
		limit := int(cmd.Int("limit"))
		if limit < 1 {
			return fmt.Errorf("--limit must be at least 1")
		}
		es, err := auditPages(ctx, c, q, limit)
		if err != nil {
			return err
		}
		return emit(cmd, es, func(w io.Writer) {
			row(w, "ID", "AT", "ACTOR", "ACTION", "TARGET", "REASON")
			for _, e := range es {
				row(w, e.ID, fmtWhen(e.At), e.Actor, e.Action, e.Target, orDash(e.Reason))
			}
		})
	})
	c.Flags = append(c.Flags, apiFlags()...)
	return c
}

// auditPage is the most entries the server answers at once.
const auditPage = 1000

// auditPages asks the server for up to limit entries that q selects, a
// page of at most auditPage at a time.
func auditPages(ctx context.Context, c *client.Client, q client.AuditQuery, limit int) ([]release.AuditEntry, error) {
	out := []release.AuditEntry{}
	for len(out) < limit {
		q.Limit = min(limit-len(out), auditPage)
		page, err := c.QueryAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	return out, nil
}

// whoamiCommand is `ringfence whoami`: whose token this is, and where.
func whoamiCommand() *ucli.Command {
	c := apiCmd("whoami", "show the name and role of the API token in use, and the server", nil, nil, true,
		func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			id, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			return emit(cmd, id, func(w io.Writer) {
				row(w, "name:", id.Name)
				row(w, "role:", id.Role)
				row(w, "token id:", id.TokenID)
				row(w, "server:", cmd.String("server"))
				if p := cmd.String("product"); p != "" {
					row(w, "default product:", p)
				}
			})
		})
	c.Flags = append(c.Flags, apiFlags()...)
	return c
}
