// Command rotor keeps Microsoft Entra ID application credentials fresh.
// Everything lives in internal/; this is the process edge: a context that
// SIGINT/SIGTERM cancel, the CLI, and the exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rotor-dev/rotor/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
