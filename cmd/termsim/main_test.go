package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunDispatchesLoad(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout+stderr
	}{
		{[]string{"help"}, 0, "load"},
		{[]string{"load", "-h"}, 0, "Usage: termsim load"},
		{[]string{"help", "load"}, 0, "--allow-remote"},
		{[]string{"load", "--switch", "192.0.2.1:8583", "--rate", "1", "--duration", "1s"}, 2, "127.0.0.0/8"},
		{[]string{"load"}, 2, "--duration is required"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if out := stdout.String() + stderr.String(); code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
			t.Errorf("termsim %s: exit %d (want %d), output lacks %q?\n%s", strings.Join(tc.args, " "), code, tc.wantCode, tc.wantOut, out)
		}
	}
}
