// Package clitest runs a command's Main in a test and checks what it
// printed: the table-driven CLI tests of the commands share it.
package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// Main is a command's entry point: arguments without the program name,
// output streams, exit code.
type Main func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run runs main with args and checks that it exits with wantCode, that
// stdout holds every string of wantOut and stderr every string of wantErr.
// It returns both streams for further checks.
func Run(t testing.TB, main Main, args []string, wantCode int, wantOut, wantErr []string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := main(context.Background(), args, &out, &errOut); code != wantCode {
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
