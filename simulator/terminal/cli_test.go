package terminal

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kbpay/switch/simulator/internal/clitest"
)

func TestRunPay(t *testing.T) {
	fs := startFakeSwitch(t)
	closed := closedAddr(t)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantErrOut []string // substrings of stderr
	}{
		{"approved", []string{"--pan", testPAN, "--amount", "15000", "--expiry", "2812", "--switch", fs.addr},
			ExitOK, []string{"MTI      0210", "DE 39    00 Approved", "DE 38    A1B2C3", "DE 37    000000000042", "941000******0001", "Latency"}, nil},
		{"declined is still a response", []string{"--pan", testPAN, "--amount", "5100", "--switch", fs.addr},
			ExitOK, []string{"DE 39    51 Not sufficient funds"}, nil},
		{"expect matches", []string{"--pan", testPAN, "--amount", "5100", "--switch", fs.addr, "--expect", "51"},
			ExitOK, []string{"51"}, nil},
		{"expect mismatch", []string{"--pan", testPAN, "--amount", "15000", "--switch", fs.addr, "--expect", "51"},
			ExitMismatch, []string{"DE 39    00"}, []string{"expected DE 39 51", "got 00"}},
		{"terminal id", []string{"-pan", testPAN, "-amount", "1400", "-switch", fs.addr, "-terminal", "T9", "-expect", "14"},
			ExitOK, nil, nil},
		{"nothing listening", []string{"--pan", testPAN, "--amount", "100", "--switch", closed, "--timeout", "1s"},
			ExitNoResponse, nil, []string{"switch at " + closed}},
		{"timeout", []string{"--pan", testPAN, "--amount", "9900", "--switch", fs.addr, "--timeout", "200ms"},
			ExitNoResponse, nil, []string{"no response from switch at " + fs.addr}},
		{"missing pan", []string{"--amount", "100"}, ExitUsage, nil, []string{"--pan (or --token) and --amount are required", "Usage"}},
		{"missing amount", []string{"--pan", testPAN}, ExitUsage, nil, []string{"required"}},
		{"bad pan", []string{"--pan", "94100000000000X1", "--amount", "100"}, ExitUsage, nil, []string{"not 12-19 digits"}},
		{"bad amount", []string{"--pan", testPAN, "--amount", "ten"}, ExitUsage, nil, []string{"invalid value"}},
		{"negative amount", []string{"--pan", testPAN, "--amount", "-1"}, ExitUsage, nil, []string{"amount -1"}},
		{"bad expect", []string{"--pan", testPAN, "--amount", "100", "--expect", "5"}, ExitUsage, nil, []string{"--expect"}},
		{"bad header", []string{"--pan", testPAN, "--amount", "100", "--switch", closed, "--header", "x"}, ExitUsage, nil, []string{"unknown length header"}},
		{"long terminal id", []string{"--pan", testPAN, "--amount", "100", "--switch", closed, "--terminal", "TERMINAL9"}, ExitUsage, nil, []string{"terminal ID"}},
		{"stray argument", []string{"--pan", testPAN, "--amount", "100", "extra"}, ExitUsage, nil, []string{"unexpected arguments"}},
		{"unknown flag", []string{"--pan", testPAN, "--amount", "100", "--nope"}, ExitUsage, nil, []string{"not defined"}},
		{"help", []string{"-h"}, ExitOK, nil, []string{"Usage: termsim pay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr := clitest.Run(t, RunPay, tt.args, tt.wantCode, tt.wantOut, tt.wantErrOut)
			// The fake switch echoes DE 2: the full PAN must still never be shown.
			if strings.Contains(stdout+stderr, testPAN) {
				t.Errorf("output shows the full PAN:\n%s\n%s", stdout, stderr)
			}
		})
	}
}

func TestMain_Dispatch(t *testing.T) {
	fs := startFakeSwitch(t)
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string // substring of stdout, or of stderr when the code is not 0
	}{
		{nil, ExitUsage, "termsim: no command given (termsim --help lists the commands)"},
		{[]string{"version"}, ExitOK, "termsim version "},
		{[]string{"--version"}, ExitOK, "termsim version "},
		{[]string{"version", "x"}, ExitUsage, `unexpected argument "x"`},
		{[]string{"--help"}, ExitOK, "SIGTERM"},
		{[]string{"help"}, ExitOK, "pay"},
		{[]string{"--help"}, ExitOK, "Commands:"},
		{[]string{"help", "pay"}, ExitOK, ""},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"pay", "--pan", testPAN, "--amount", "100", "--switch", fs.addr, "--expect", "01"}, ExitOK, "DE 39    01"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, &stdout, &stderr)
			}
			out := stdout.String()
			if code != ExitOK {
				out = stderr.String()
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}
