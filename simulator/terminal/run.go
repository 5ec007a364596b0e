package terminal

import (
	"context"
	"fmt"
	"io"
)

// RunScenarios is `termsim run`: the scenario runner (package
// simulator/scenario), which builds on this package. The binary sets it
// (cmd/termsim: terminal.RunScenarios = scenario.Command) so that this
// package does not import the runner.
var RunScenarios func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// runScenarios is the commands() entry of `termsim run`.
func runScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if RunScenarios == nil {
		fmt.Fprintln(stderr, "termsim run: the scenario runner is not linked into this binary")
		return ExitUsage
	}
	return RunScenarios(ctx, args, stdout, stderr)
}
