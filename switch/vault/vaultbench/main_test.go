package vaultbench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandLine: version and help never run the benchmark; stray
// arguments and bad flags are one line and exit 2.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "vaultbench version "},
		{[]string{"--version"}, 0, "vaultbench version "},
		{[]string{"--help"}, 0, "-tokens"},
		{[]string{"stray"}, 2, `vaultbench: unexpected argument "stray"`},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"--tokens", "0"}, 2, "must be positive"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := Main(context.Background(), tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}
