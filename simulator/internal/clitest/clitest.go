// Package clitest runs a simulator command line in a test and checks its
// exit code and output: the one table-test loop termsim's subcommands
// share.
package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// Main is a termsim subcommand: args without the command name, the exit
// code returned.
type Main func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run runs main with args and fails t unless it exits wantCode with every
// string of wantOut in its stdout and every string of wantErr in its
// stderr. It returns both outputs for further checks.
func Run(t testing.TB, main Main, args []string, wantCode int, wantOut, wantErr []string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := main(context.Background(), args, &out, &errOut)
	if code != wantCode {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, &out, &errOut)
	}
	for _, w := range wantOut {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, &out)
		}
	}
	for _, w := range wantErr {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, &errOut)
		}
	}
	return out.String(), errOut.String()
}
