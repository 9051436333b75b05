// Command ringfence keeps a bad release from breaking self-hosted
// installations: it proves PostgreSQL databases intact (ringfence pg), runs the
// release control plane (ringfence serve) and the installation agent
// (ringfence agent).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringfence/ringfence/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process the usual way.
	context.AfterFunc(ctx, stop)
	code := cli.Run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
