package cli

import (
	"context"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// adminCommand is `ringfence admin`: offline operations on the store, for
// when there is no API token yet.
func adminCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "admin",
		Usage: "operate on the store directly (offline)",
		Commands: []*ucli.Command{{
			Name:  "token",
			Usage: "API tokens",
			Commands: []*ucli.Command{{
				Name:      "create",
				Usage:     "create an API token and print it once",
				UsageText: "ringfence admin token create --db ringfence.db --role admin [--name NAME] [--init]",
				Flags: []ucli.Flag{
					dbFlag(),
					&ucli.StringFlag{Name: "role", Value: string(release.RoleAdmin), Usage: "viewer, releaser, incident or admin"},
					&ucli.StringFlag{Name: "name", Value: "admin", Usage: "who the token is for (shown in the audit log)"},
					&ucli.BoolFlag{Name: "init", Usage: "create the store (or migrate it) if needed; without it the store must exist with the current schema"},
					&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no note on stderr (the token still goes to stdout)"},
				},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if cmd.Args().Len() > 0 {
						return withCode(ExitError, fmt.Errorf("admin token create takes no arguments, got %q", cmd.Args().Slice()))
					}
					open := sqlstore.OpenExisting
					if cmd.Bool("init") {
						open = sqlstore.Open
					}
					store, err := open(ctx, cmd.String("db"))
					if err != nil {
						return withCode(ExitError, err)
					}
					defer store.Close()
					tok, secret, err := store.CreateToken(ctx, "admin-cli", cmd.String("name"), release.Role(cmd.String("role")))
					if err != nil {
						return withCode(ExitError, fmt.Errorf("create token: %s", release.ErrorMessage(err)))
					}
					fmt.Fprintln(stdout, secret)
					if !cmd.Bool("quiet") {
						fmt.Fprintf(stderr, "created %s token %q (id %s); it is shown only now\n", tok.Role, tok.Name, tok.ID)
					}
					return nil
				},
			}},
		}, adminUserCommand(stdout, stderr)},
	}
}
