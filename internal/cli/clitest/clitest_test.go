package clitest

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed int
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed++ }

func TestRun(t *testing.T) {
	main := func(_ context.Context, args []string, stdout, stderr io.Writer) int {
		fmt.Fprintln(stdout, "out:", args)
		fmt.Fprintln(stderr, "err line")
		return len(args)
	}
	tests := []struct {
		name             string
		args             []string
		code             int
		wantOut, wantErr []string
		failures         int
	}{
		{"all match", []string{"a"}, 1, []string{"out: [a]"}, []string{"err line"}, 0},
		{"wrong code", []string{"a"}, 2, nil, nil, 1},
		{"stdout lacks", nil, 0, []string{"missing"}, nil, 1},
		{"stderr lacks", nil, 0, nil, []string{"missing", "also missing"}, 2},
	}
	for _, tt := range tests {
		r := &recorder{TB: t}
		out, errOut := Run(r, main, tt.args, tt.code, tt.wantOut, tt.wantErr)
		if r.failed != tt.failures {
			t.Errorf("%s: %d failures, want %d", tt.name, r.failed, tt.failures)
		}
		if errOut != "err line\n" || out == "" {
			t.Errorf("%s: outputs %q, %q", tt.name, out, errOut)
		}
	}
}
