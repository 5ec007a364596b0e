package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/simulator/issuer"
)

// The YAML layout -h prints is a valid configuration.
func TestConfigHelpParses(t *testing.T) {
	_, layout, ok := strings.Cut(configHelp, "\n\n")
	if !ok {
		t.Fatal("no layout in configHelp")
	}
	layout = strings.ReplaceAll(layout, "<32 or 48 hex digits>", devkeys.ZPKHex)
	layout = strings.ReplaceAll(layout, "<card number>", "9410000000000005") // a Luhn-valid card under 9410
	cfgs, err := issuer.ParseConfig([]byte(layout))
	if err != nil {
		t.Fatalf("configHelp does not parse: %v\n%s", err, layout)
	}
	c := cfgs[0]
	if c.LatencyDist.Kind != issuer.LatencyLognormal || c.Seed != 42 || c.Fault.GarbagePercent != 2 || len(c.Schedule) != 2 {
		t.Errorf("parsed %+v", c)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "POST /reset"},
		{[]string{"help"}, 0, "SIGTERM"},
		{[]string{"version"}, 0, "issuersim version "},
		{[]string{"--version"}, 0, "issuersim version "},
		{[]string{"bogus"}, 2, `issuersim: unknown command "bogus"`},
		{[]string{"--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"--mode", "loud"}, 2, "--mode"},
		{[]string{"--config", "/nonexistent.yaml"}, 2, "issuersim: "},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := run(context.Background(), tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tt.args, code, out.String(), tt.code, tt.want)
		}
		if tt.code != 0 && strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
			t.Errorf("%v: more than one line: %q", tt.args, out.String())
		}
	}
}
