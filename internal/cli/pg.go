package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/term"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// pgCommand is `ringfence pg`: PostgreSQL integrity.
func pgCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "pg",
		Usage: "prove a PostgreSQL database intact",
		Description: "Every pg command takes a connection string (URL or key=value) or a database name\n" +
			"as its argument, and libpq's -h, -p, -U, -d, -w and -W (help: --help or -?); what is not given comes\n" +
			"from libpq's PG* environment variables and ~/.pgpass. Sessions are read-only\n" +
			"unless a command says otherwise, with a statement_timeout and lock_timeout.\n" +
			"Exit codes: 0 nothing found, 1 findings, 2 could not check.",
		Commands: withQuestionMarkHelp(
			pgCheckCommand(stdout, stderr),
			pgInventoryCommand(stdout),
			pgFingerprintCommand(stdout),
			pgCompareCommand(stdout, stderr),
			pgDuplicatesCommand(stdout, stderr),
			pgRepairCommand(stdout, stderr),
		),
	}
}

// withQuestionMarkHelp makes -? show a command's help, as in psql and
// pg_amcheck. The flag parser takes an argument that starts with "-" and
// a non-letter for a positional one (a negative number) and stops there, so
// -? arrives among the arguments; the help flag declared in connFlags lists
// it for the help text.
func withQuestionMarkHelp(cmds ...*ucli.Command) []*ucli.Command {
	for _, c := range cmds {
		action := c.Action
		c.Action = func(ctx context.Context, cmd *ucli.Command) error {
			if slices.Contains(cmd.Args().Slice(), "-?") {
				return ucli.ShowCommandHelp(ctx, cmd.Lineage()[1], cmd.Name)
			}
			return action(ctx, cmd)
		}
	}
	return cmds
}

// connFlags are the connection and session-limit flags every pg command
// takes: libpq's habits (-h -p -U -d, -w/-W) and the session limits. As in
// psql and pg_amcheck, -h is the host: help is --help or -?.
func connFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "help", Aliases: []string{"?"}, Usage: "show help"},
		&ucli.StringFlag{Name: "host", Aliases: []string{"h"}, Usage: "server host or socket directory (like PGHOST)"},
		&ucli.StringFlag{Name: "port", Aliases: []string{"p"}, Usage: "server port (like PGPORT)"},
		&ucli.StringFlag{Name: "username", Aliases: []string{"U"}, Usage: "role to connect as (like PGUSER)"},
		&ucli.StringFlag{Name: "dbname", Aliases: []string{"d"}, Usage: "database name or connection string (like the positional argument)"},
		&ucli.BoolFlag{Name: "no-password", Aliases: []string{"w"}, Usage: "never ask for a password"},
		&ucli.BoolFlag{Name: "password", Aliases: []string{"W"}, Usage: "ask for the password on the terminal before connecting"},
		&durationFlag{Name: "statement-timeout", Value: 10 * time.Minute, Usage: "bound on every statement"},
		&durationFlag{Name: "lock-timeout", Value: 5 * time.Second, Usage: "bound on every lock wait"},
	}
}

// allDatabasesFlag returns --all-databases/-a of the pg commands that take it.
func allDatabasesFlag() *ucli.BoolFlag {
	return &ucli.BoolFlag{Name: "all-databases", Aliases: []string{"a"},
		Usage: "every database that accepts connections (and the role may connect to), not only the DSN's"}
}

// printNotChecked lists the databases an --all-databases run missed.
func printNotChecked(w io.Writer, failed []pgcheck.NotChecked) {
	for _, f := range failed {
		fmt.Fprintf(w, "NOT CHECKED: database %s: %s\n", f.Database, f.Error)
	}
}

// notCheckedError is the exit-2 error of a run that missed databases.
func notCheckedError(failed []pgcheck.NotChecked) error {
	if len(failed) == 0 {
		return nil
	}
	return withCode(ExitError, fmt.Errorf("%d database(s) could not be read (listed above)", len(failed)))
}

// jsonFlag selects JSON output.
var jsonFlag = &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"}

// isConnString reports whether s is a connection string (URL or
// key=value) rather than a bare database name.
func isConnString(s string) bool {
	return strings.Contains(s, "=") || strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// connString builds the connection string from the positional argument
// (a URL, key=value string, or database name, as psql takes it) and
// --host/-p/-U/-d; empty parts come from libpq's PG* environment.
func connString(cmd *ucli.Command) (string, error) {
	if cmd.Args().Len() > 1 {
		return "", fmt.Errorf("expected at most one connection string or database name, got %d arguments", cmd.Args().Len())
	}
	arg := cmd.Args().First()
	if d := cmd.String("dbname"); d != "" {
		if arg != "" {
			return "", fmt.Errorf("give the database either as an argument or with -d, not both")
		}
		arg = d
	}
	var kv []string
	for _, f := range []struct{ flag, key string }{{"host", "host"}, {"port", "port"}, {"username", "user"}} {
		if v := cmd.String(f.flag); v != "" {
			kv = append(kv, f.key+"="+quoteConnValue(v))
		}
	}
	switch {
	case arg == "":
	case strings.HasPrefix(arg, "postgres://") || strings.HasPrefix(arg, "postgresql://"):
		if len(kv) > 0 {
			return "", fmt.Errorf("give either a postgres:// URL or --host/-p/-U, not both (write them into the URL)")
		}
		return arg, nil
	case isConnString(arg):
		// libpq reads key=value left to right: the flags come last and win.
		return strings.Join(append([]string{arg}, kv...), " "), nil
	default:
		kv = append([]string{"dbname=" + quoteConnValue(arg)}, kv...)
	}
	return strings.Join(kv, " "), nil
}

// quoteConnValue quotes a key=value connection string value.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// openServer parses the connection (see connString) with the session
// limits from connFlags, asking for the password with -W. A bad DSN exits 2.
func openServer(cmd *ucli.Command, readWrite bool) (*pgcheck.Target, error) {
	dsn, err := connString(cmd)
	if err != nil {
		return nil, withCode(ExitError, err)
	}
	if cmd.Bool("password") && cmd.Bool("no-password") {
		return nil, withCode(ExitError, errors.New("-W (ask for the password) and -w (never ask) exclude each other"))
	}
	srv, err := pgcheck.Open(dsn, pgcheck.ConnOptions{
		StatementTimeout: cmd.Duration("statement-timeout"),
		LockTimeout:      cmd.Duration("lock-timeout"),
		ReadWrite:        readWrite,
	})
	if err != nil {
		return nil, withCode(ExitError, err)
	}
	if cmd.Bool("password") {
		pw, err := askPassword(cmd.Root().ErrWriter, fmt.Sprintf("Password for user %s: ", srv.User()))
		if err != nil {
			return nil, withCode(ExitError, err)
		}
		srv = srv.WithPassword(pw)
	}
	return srv, nil
}

// askPassword reads a password from the terminal without echo, prompting
// on w. It refuses when stdin is not a terminal: a password is never read
// from a pipe by surprise.
func askPassword(w io.Writer, prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("-W asks for the password on a terminal, and stdin is not one: use PGPASSWORD, ~/.pgpass or the connection string instead")
	}
	fmt.Fprint(w, prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(pw), nil
}

// optionFlags are the flags that set pgcheck's option fields, as
// pgcheck.OptionError names them.
var optionFlags = map[string]string{
	"AllDatabases": "--all-databases",
	"BaselineFile": "--baseline FILE",
	"Record":       "--record",
	"SampleKeys":   "--sample-keys",
	"ParentCheck":  "--parent-check",
	"To":           "--to",
	"Schemas":      "--schema",
	"Tables":       "--table",
	"Indexes":      "--index",
	"Dedupe":       "--dedupe",

	"CheckOptions.InstallMissing": "--install-missing",
	"RequireFindings=false":       "--rebuild-at-risk",
}

// optionError words the pgcheck.OptionError in err with the flags
// (optionFlags), keeping what err wraps it in; other errors pass unchanged.
func optionError(err error) error {
	var oe *pgcheck.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	phrased := oe.Phrase(func(field string) string {
		if f, ok := optionFlags[field]; ok {
			return f
		}
		return field
	})
	return errors.New(strings.Replace(err.Error(), oe.Error(), phrased, 1))
}

// recordGrantHint explains what recording a baseline in the database needs.
func recordGrantHint(role, db string) string {
	return fmt.Sprintf("recording the baseline in the database needs CREATE on the database (for schema ringfence), "+
		"or ownership of schema ringfence and its table; role %s lacks it: GRANT CREATE ON DATABASE %s TO %[1]s, "+
		"or keep the baseline in a file instead (pg fingerprint --record --baseline FILE, then pg check --baseline FILE); "+
		"see docs/pg-check.md", role, db)
}

// repairGrantHint explains what role repair --apply must run as.
func repairGrantHint(role, _ string) string {
	return fmt.Sprintf("repair --apply must run as the owner of the tables it repairs (REINDEX, and DELETE of duplicates), "+
		"with CREATE on the database (schema ringfence journals and quarantines); role %s lacks that: "+
		"connect as the tables' owner or a superuser (the dry run works as any role with pg_read_all_data); "+
		"a fingerprint baseline can be kept in a file (--baseline FILE); see docs/pg-check.md", role)
}

// privilegeError adds hint (given the role and database) to an
// insufficient_privilege error (42501: "permission denied", "must be
// owner"); other errors pass unchanged. Both exit 2.
func privilegeError(err error, srv *pgcheck.Target, hint func(role, db string) string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return withCode(ExitError, fmt.Errorf("%w\n%s", err, hint(sqlName(srv.User()), sqlName(srv.Database()))))
	}
	return withCode(ExitError, err)
}

// plainName is an identifier SQL takes without quotes.
var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// sqlName writes an identifier as a person would in SQL: quoted only when
// it must be.
func sqlName(s string) string {
	if plainName.MatchString(s) {
		return s
	}
	return pgcheck.QuoteIdent(s)
}

// writeReport prints a pg command's report, which carries its own JSON
// form (schema_version first, duration_seconds last), indented.
func writeReport(w io.Writer, rep json.Marshaler) error {
	raw, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("render JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
