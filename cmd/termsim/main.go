// Command termsim simulates POS terminals against the switch: termsim pay
// sends one purchase and prints the answer. See `termsim help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kbpay/switch/simulator/terminal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := terminal.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
