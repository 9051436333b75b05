// Package cli is ringfence's command line: one file per command group. It
// parses flags and environment, wires the library packages together and
// prints; the packages it calls never print.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v3"
)

// Exit codes shared by every command.
const (
	// ExitOK means the command succeeded and found nothing wrong.
	ExitOK = 0
	// ExitFindings means a check ran and found problems.
	ExitFindings = 1
	// ExitError means the command could not do its work (bad input,
	// unreachable server, missing permission).
	ExitError = 2
)

// exitError carries an exit code up to Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that Run exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// findings is returned by a check that completed and found problems; its
// report has already been printed.
var errFindings = &exitError{code: ExitFindings, err: errors.New("findings reported")}

// newRoot builds the command tree writing to stdout and stderr.
func newRoot(stdout, stderr io.Writer) *ucli.Command {
	root := &ucli.Command{
		Name:                  "ringfence",
		Usage:                 "keep bad releases from breaking self-hosted installations",
		Writer:                stdout,
		ErrWriter:             stderr,
		EnableShellCompletion: true,
		Version:               buildVersion(),
		ExitErrHandler:        func(context.Context, *ucli.Command, error) {},
		OnUsageError: func(_ context.Context, _ *ucli.Command, err error, _ bool) error {
			return withCode(ExitError, err)
		},
		Commands: []*ucli.Command{
			pgCommand(stdout, stderr),
			serveCommand(stdout, stderr),
			adminCommand(stdout, stderr),
			productCommand(),
			ringCommand(),
			customerCommand(),
			releaseCommand(),
			gateCommand(),
			holdCommand(),
			tokenCommand(),
			keysCommand(),
			auditCommand(),
			componentCommand(),
			incidentCommand(),
			maintenanceCommand(),
			subscriberCommand(),
			bundleCommand(),
			agentCommand(stdout, stderr),
			whoamiCommand(),
			versionCommand(stdout),
		},
	}
	applyConventions(root)
	return root
}

// Run runs ringfence with args (args[0] is the program name) and returns the
// process exit code. It is the whole program: main only calls it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	err := root.Run(ctx, args)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee != errFindings {
			fmt.Fprintf(stderr, "ringfence: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "ringfence: %v\n", err)
	return ExitError
}
