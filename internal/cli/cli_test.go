package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		done     bool
		out, err string
	}{
		{nil, 0, false, "", ""},
		{[]string{"--help"}, 0, true, "usage: prog", ""},
		{[]string{"-h"}, 0, true, "usage: prog", ""},
		{[]string{"--nope"}, ExitUsage, true, "", "prog: flag provided but not defined: -nope (prog --help shows the usage)\n"},
		{[]string{"--n", "x"}, ExitUsage, true, "", `prog: invalid value "x" for flag -n`},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		fs.Int("n", 0, "")
		var out, errb bytes.Buffer
		code, done := Parse(fs, tt.args, "usage: prog", &out, &errb)
		if code != tt.code || done != tt.done || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
			t.Errorf("%v: %d %v out %q err %q", tt.args, code, done, out.String(), errb.String())
		}
		if strings.Count(errb.String(), "\n") > 1 {
			t.Errorf("%v: more than one line: %q", tt.args, errb.String())
		}
	}
	fs := flag.NewFlagSet("prog run", flag.ContinueOnError)
	_ = fs.Parse([]string{"stray"})
	var errb bytes.Buffer
	if code, done := NoArgs(fs, &errb); code != ExitUsage || !done || errb.String() != "prog run: unexpected argument \"stray\" (prog --help shows the usage)\n" {
		t.Errorf("%d %v %q", code, done, errb.String())
	}
}
