package main

import (
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
