// Command tokenctl provisions and manages tokens through switchd's API.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := tokenapi.CtlMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
