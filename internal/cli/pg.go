package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/pgcheck"
)

// pgCommand is `ringfence pg`: PostgreSQL integrity.
func pgCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "pg",
		Usage: "prove a PostgreSQL database intact",
		Description: "Every pg command takes a connection string (URL or key=value) as its argument;\n" +
			"without one it uses libpq's PG* environment variables. Sessions are read-only\n" +
			"unless a command says otherwise, with a statement_timeout and lock_timeout.\n" +
			"Exit codes: 0 nothing found, 1 findings, 2 could not check.",
		Commands: []*ucli.Command{
			pgCheckCommand(stdout, stderr),
			pgInventoryCommand(stdout),
			pgFingerprintCommand(stdout),
			pgCompareCommand(stdout, stderr),
			pgDuplicatesCommand(stdout, stderr),
			pgRepairCommand(stdout, stderr),
		},
	}
}

// connFlags are the session-limit flags every pg command takes.
func connFlags() []ucli.Flag {
	return []ucli.Flag{
		&durationFlag{Name: "statement-timeout", Value: 10 * time.Minute, Usage: "bound on every statement"},
		&durationFlag{Name: "lock-timeout", Value: 5 * time.Second, Usage: "bound on every lock wait"},
	}
}

// jsonFlag selects JSON output.
var jsonFlag = &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"}

// openServer parses the DSN argument (or PG* environment) with the session
// limits from connFlags. A bad DSN exits 2.
func openServer(cmd *ucli.Command, readWrite bool) (*pgcheck.Server, error) {
	if cmd.Args().Len() > 1 {
		return nil, withCode(ExitError, fmt.Errorf("expected at most one connection string, got %d arguments", cmd.Args().Len()))
	}
	srv, err := pgcheck.Open(cmd.Args().First(), pgcheck.ConnOptions{
		StatementTimeout: cmd.Duration("statement-timeout"),
		LockTimeout:      cmd.Duration("lock-timeout"),
		ReadWrite:        readWrite,
	})
	return srv, withCode(ExitError, err)
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
func privilegeError(err error, srv *pgcheck.Server, hint func(role, db string) string) error {
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

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
