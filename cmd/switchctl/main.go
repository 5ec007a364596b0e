// Command switchctl is the operators' command line over switchd's admin
// API: transaction look-up, SAF actions, reconciliations, readiness.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/kbpay/switch/switch/switchctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := switchctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
