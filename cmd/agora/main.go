// Command agora runs the Agora commerce backend. See `agora --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/agora-commerce/agora/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
