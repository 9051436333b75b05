package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// adminUserCommand is `ringfence admin user`: the console's local accounts,
// directly on the store (offline), so the first one needs no server.
func adminUserCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "user",
		Usage: "console accounts (log in at /admin/)",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success (the exit code says it); errors still go to stderr"}},
		Commands: []*ucli.Command{
			{
				Name:      "create",
				Usage:     "create a console account",
				UsageText: "ringfence admin user create --db ringfence.db --role releaser NAME  (password from the terminal, or the first line of --password-file, - for stdin)",
				Flags: []ucli.Flag{
					dbFlag(),
					&ucli.StringFlag{Name: "role", Value: string(release.RoleViewer), Usage: "viewer, releaser, incident or admin"},
					&ucli.StringFlag{Name: "password-file", Usage: "read the password from the first line of this file (- for stdin) instead of the terminal"},
					&ucli.BoolFlag{Name: "init", Usage: "create the store (or migrate it) if needed"},
				},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if cmd.Args().Len() != 1 {
						return withCode(ExitError, fmt.Errorf("admin user create needs one argument (the user's name), got %d", cmd.Args().Len()))
					}
					password, err := readPassword(cmd.String("password-file"), stderr)
					if err != nil {
						return withCode(ExitError, err)
					}
					return withStore(ctx, cmd, func(store *sqlstore.Store) error {
						u, err := store.CreateUser(ctx, "admin-cli", cmd.Args().First(), release.Role(cmd.String("role")), password)
						if err != nil {
							return fmt.Errorf("create user: %s", release.ErrorMessage(err))
						}
						if !cmd.Bool("quiet") {
							fmt.Fprintf(stdout, "created %s user %s (id %s)\n", u.Role, u.Name, u.ID)
						}
						return nil
					})
				},
			},
			{
				Name:  "list",
				Usage: "list console accounts",
				Flags: []ucli.Flag{dbFlag()},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					return withStore(ctx, cmd, func(store *sqlstore.Store) error {
						us, err := store.ListUsers(ctx)
						if err != nil || cmd.Bool("quiet") {
							return err
						}
						tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
						row(tw, "NAME", "ROLE", "CREATED", "BY", "ID")
						for _, u := range us {
							row(tw, u.Name, u.Role, fmtWhen(u.CreatedAt), u.CreatedBy, u.ID)
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "delete",
				Usage:     "delete a console account and end its sessions",
				UsageText: "ringfence admin user delete --db ringfence.db NAME",
				Flags:     []ucli.Flag{dbFlag()},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if cmd.Args().Len() != 1 {
						return withCode(ExitError, fmt.Errorf("admin user delete needs one argument (the user's name), got %d", cmd.Args().Len()))
					}
					return withStore(ctx, cmd, func(store *sqlstore.Store) error {
						if err := store.DeleteUser(ctx, "admin-cli", cmd.Args().First()); err != nil {
							return fmt.Errorf("delete user: %s", release.ErrorMessage(err))
						}
						if !cmd.Bool("quiet") {
							fmt.Fprintf(stdout, "deleted user %s\n", cmd.Args().First())
						}
						return nil
					})
				},
			},
		},
	}
}

// withStore opens the existing store of --db (or, with --init, creates it)
// for fn and closes it; fn's error exits with ExitError.
func withStore(ctx context.Context, cmd *ucli.Command, fn func(*sqlstore.Store) error) error {
	open := sqlstore.OpenExisting
	if cmd.Bool("init") {
		open = sqlstore.Open
	}
	store, err := open(ctx, cmd.String("db"))
	if err != nil {
		return withCode(ExitError, err)
	}
	defer store.Close()
	return withCode(ExitError, fn(store))
}

// readPassword reads a new password: the first line of file ("-" for
// stdin) if given, otherwise twice from the terminal without echo.
func readPassword(file string, prompt io.Writer) (string, error) {
	if file != "" {
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			defer f.Close()
			r = f
		}
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from %s: %w", file, err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("no terminal to read the password from: use --password-file")
	}
	fmt.Fprint(prompt, "password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(prompt, "again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	return string(a), nil
}
