package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

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

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
