// Command termsim simulates POS terminals against the switch: termsim pay
// sends one purchase and prints the answer; termsim run runs scenario files
// (simulator/scenarios) and prints a pass/fail table; termsim load drives a
// load test. See `termsim help`.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kbpay/switch/simulator/load"
	"github.com/kbpay/switch/simulator/scenario"
	"github.com/kbpay/switch/simulator/terminal"
)

func main() {
	// The scenario runner builds on package terminal, so it is linked in
	// here rather than imported by it (terminal's commands() table calls it).
	terminal.RunScenarios = scenario.Command
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches `termsim load` (and `termsim help load`) to simulator/load,
// which builds on the terminal package and so cannot be imported by it;
// every other command goes to terminal.Main.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == load.Name:
		return load.Main(ctx, args[1:], stdout, stderr)
	case len(args) > 1 && args[1] == load.Name && isHelp(args[0]):
		return load.Main(ctx, []string{"-h"}, stdout, stderr)
	}
	return terminal.Main(ctx, args, stdout, stderr)
}

func isHelp(s string) bool {
	switch s {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}
