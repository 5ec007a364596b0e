package issuer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/specs"
)

func TestDefaultIssuers(t *testing.T) {
	want := []struct{ name, addr, bin string }{
		{"card-a", "127.0.0.1:9101", "9410"},
		{"card-b", "127.0.0.1:9102", "9420"},
		{"prepaid", "127.0.0.1:9103", "9430"},
	}
	got := DefaultIssuers()
	if len(got) != len(want) {
		t.Fatalf("%d default issuers, want %d", len(got), len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.Name != w.name || c.Addr != w.addr || !reflect.DeepEqual(c.BINs, []string{w.bin}) ||
			c.DefaultBalance != 1_000_000 || c.Spec != specs.IssuerDialect || c.Header != "ascii4" ||
			c.ZPK != devkeys.ZPKHex || c.PIN != devkeys.DemoPIN {
			t.Errorf("issuer %d = %+v, want %s on %s owning %s", i, c, w.name, w.addr, w.bin)
		}
		if wantRev := w.name != "prepaid"; c.AcceptsReversals() != wantRev {
			t.Errorf("issuer %s takes reversals: %v, want %v", c.Name, c.AcceptsReversals(), wantRev)
		}
		is, err := New(c, nil)
		if err != nil {
			t.Errorf("New(%s): %v", c.Name, err)
		} else if is.AcceptsReversals() != c.AcceptsReversals() {
			t.Errorf("New(%s) takes reversals: %v", c.Name, is.AcceptsReversals())
		}
	}
}

func TestNewValidates(t *testing.T) {
	valid := func() Config { return Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}} }
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name is empty"},
		{"no address", func(c *Config) { c.Addr = "" }, "listen address is empty"},
		{"no BIN", func(c *Config) { c.BINs = nil }, "no BIN prefixes"},
		{"BIN not digits", func(c *Config) { c.BINs = []string{"94A0"} }, `BIN prefix "94A0"`},
		{"negative balance", func(c *Config) { c.DefaultBalance = -1 }, "negative"},
		{"negative latency", func(c *Config) { c.Latency = -time.Second }, "latency"},
		{"override outside BIN", func(c *Config) { c.Balances = map[string]int64{card("9420"): 5} }, "942000******0003"},
		{"override fails Luhn", func(c *Config) { c.Balances = map[string]int64{badLuhn(card("9410")): 5} }, "not a Luhn-valid PAN"},
		{"unknown spec", func(c *Config) { c.Spec = "nosuch/spec.json" }, "nosuch/spec.json"},
		{"unknown header", func(c *Config) { c.Header = "ascii6" }, "ascii6"},
		{"other header", func(c *Config) { c.Header = "binary2" }, ""},
		{"triple-length ZPK", func(c *Config) { c.ZPK = strings.Repeat("0123456789ABCDEF", 3) }, ""},
		{"ZPK not hex", func(c *Config) { c.ZPK = "C1D0F8FB4958670DBA40AB1F3752EF0G" }, "zpk is not valid hex"},
		{"ZPK odd length", func(c *Config) { c.ZPK = "C1D" }, "zpk is not valid hex"},
		{"ZPK single length", func(c *Config) { c.ZPK = "C1D0F8FB4958670D" }, "zpk must be 16 or 24 bytes"},
		{"ZPK AES-256 length", func(c *Config) { c.ZPK = strings.Repeat("AB", 32) }, "got 32 bytes"},
		{"PIN too short", func(c *Config) { c.PIN = "987" }, "PIN is not 4-12 digits"},
		{"PIN not digits", func(c *Config) { c.PIN = "98x7" }, "PIN is not 4-12 digits"},
		{"PIN too long", func(c *Config) { c.PIN = "9876543210987" }, "PIN is not 4-12 digits"},
		{"PIN override", func(c *Config) { c.PINs = map[string]string{card("9410"): "987654"} }, ""},
		{"PIN override outside BIN", func(c *Config) { c.PINs = map[string]string{card("9420"): "9876"} }, "PIN override for 942000******0003"},
		{"PIN override fails Luhn", func(c *Config) { c.PINs = map[string]string{badLuhn(card("9410")): "9876"} }, "not a Luhn-valid PAN"},
		{"PIN override bad", func(c *Config) { c.PINs = map[string]string{card("9410"): "98765x"} }, "PIN override for 941000******0005 is not 4-12 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			_, err := New(c, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New error %v, want one containing %q", err, tt.wantErr)
			}
			// Secrets never appear in errors.
			for _, secret := range []string{c.ZPK, c.PIN, c.PINs[card("9410")]} {
				if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a key or PIN", err)
				}
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "issuers.yaml")
	yaml := `issuers:
  - name: card-a
    addr: 127.0.0.1:0
    bins: ["9410", "9411"]
    default_balance: 500000
    balances:
      "9410000000000005": 100
    latency: 150ms
  - name: prepaid
    addr: 127.0.0.1:0
    bins: ["9430"]
    spec: terminal87
    header: binary2
    zpk: 0123456789ABCDEFFEDCBA98765432100123456789ABCDEF
    pin: "0000"
    pins:
      "9430000000000001": "123456"
    reversals: false
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgs, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Config{
		{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410", "9411"}, DefaultBalance: 500_000,
			Balances: map[string]int64{"9410000000000005": 100}, Latency: 150 * time.Millisecond,
			Spec: specs.IssuerDialect, Header: "ascii4", ZPK: devkeys.ZPKHex, PIN: devkeys.DemoPIN},
		{Name: "prepaid", Addr: "127.0.0.1:0", BINs: []string{"9430"}, DefaultBalance: DefaultOpenToBuy,
			Spec: specs.TerminalDialect, Header: "binary2", ZPK: "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF",
			PIN: "0000", PINs: map[string]string{"9430000000000001": "123456"}, Reversals: Bool(false)},
	}
	if !reflect.DeepEqual(cfgs, want) {
		t.Errorf("LoadConfig =\n%+v\nwant\n%+v", cfgs, want)
	}
	is, err := New(cfgs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := is.Balance("9410000000000005"); b != 100 {
		t.Errorf("override balance %d", b)
	}
	if b := is.Balance("9411000000000004"); b != 500_000 {
		t.Errorf("default balance %d", b)
	}
	if !cfgs[0].AcceptsReversals() || cfgs[1].AcceptsReversals() {
		t.Errorf("reversals: card-a %v, prepaid %v; want true (default), false", cfgs[0].AcceptsReversals(), cfgs[1].AcceptsReversals())
	}
}

func TestConfigReversalsDefault(t *testing.T) {
	if !(Config{}).AcceptsReversals() {
		t.Error("a Config literal without Reversals refuses reversals")
	}
	if (Config{Reversals: Bool(false)}).AcceptsReversals() || !(Config{Reversals: Bool(true)}).AcceptsReversals() {
		t.Error("Reversals not honoured")
	}
	off := Bool(false)
	is, err := New(Config{Name: "p", Addr: "127.0.0.1:0", BINs: []string{"9430"}, Reversals: off}, nil)
	if err != nil {
		t.Fatal(err)
	}
	*off = true // New keeps its own copy
	if is.AcceptsReversals() || is.cfg.AcceptsReversals() {
		t.Error("issuer shares the caller's Reversals pointer")
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, wantErr string }{
		{"empty", "issuers: []", "no issuers"},
		{"unknown key", "issuers:\n  - name: a\n    adr: x\n", "adr"},
		{"invalid issuer", "issuers:\n  - name: a\n    addr: 127.0.0.1:1\n", "no BIN"},
		{"duplicate name", "issuers:\n  - {name: a, addr: ':1', bins: ['9']}\n  - {name: a, addr: ':2', bins: ['8']}\n", "duplicate name"},
		{"duplicate addr", "issuers:\n  - {name: a, addr: ':1', bins: ['9']}\n  - {name: b, addr: ':1', bins: ['8']}\n", "already used"},
		{"bad latency", "issuers:\n  - {name: a, addr: ':1', bins: ['9'], latency: soon}\n", "soon"},
		{"bad spec", "issuers:\n  - {name: a, addr: ':1', bins: ['9'], spec: /nope.json}\n", "/nope.json"},
		{"bad zpk", "issuers:\n  - {name: a, addr: ':1', bins: ['9'], zpk: C1D0}\n", "zpk must be 16 or 24 bytes"},
		{"bad pin", "issuers:\n  - {name: a, addr: ':1', bins: ['9'], pin: '12'}\n", "PIN is not 4-12 digits"},
		{"bad reversals", "issuers:\n  - {name: a, addr: ':1', bins: ['9'], reversals: maybe}\n", "maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"normal": Normal, "silent": Silent, "": Normal} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
		if in != "" && want.String() != in {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	if _, err := ParseMode("down"); err == nil {
		t.Error("ParseMode(down) succeeded")
	}
}

func TestParseConfigLatencyFaultSchedule(t *testing.T) {
	yaml := `issuers:
  - name: card-a
    addr: 127.0.0.1:0
    bins: ["9410"]
    latency_dist: {kind: lognormal, median: 20ms, p99: 300ms, max: 2s}
    seed: 42
    fault: {drop_percent: 5, garbage_percent: 2, wrong_stan_percent: 3, late_by: 2s, late_percent: 10, charge_when_silent: true}
    schedule:
      - {from: 10s, to: 15s, fault: {drop_percent: 100}}
      - {from: 30s, to: 40s, fault: {garbage_percent: 20}}
      - {from: 1m, fault: {disconnect: true}}
  - name: card-b
    addr: 127.0.0.1:0
    bins: ["9420"]
    latency_dist: {kind: uniform, min: 5ms, max: 50ms}
`
	cfgs, err := ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	a := cfgs[0]
	if want := (LatencyDist{Kind: LatencyLognormal, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond, Max: 2 * time.Second}); a.LatencyDist != want {
		t.Errorf("latency_dist %+v", a.LatencyDist)
	}
	if want := (Fault{DropPercent: 5, GarbagePercent: 2, WrongSTANPercent: 3, LateBy: 2 * time.Second, LatePercent: 10, ChargeWhenSilent: true}); a.Fault != want {
		t.Errorf("fault %+v", a.Fault)
	}
	wantSched := []ScheduledFault{
		{From: 10 * time.Second, To: 15 * time.Second, Fault: Fault{DropPercent: 100}},
		{From: 30 * time.Second, To: 40 * time.Second, Fault: Fault{GarbagePercent: 20}},
		{From: time.Minute, Fault: Fault{Disconnect: true}},
	}
	if a.Seed != 42 || !reflect.DeepEqual(a.Schedule, wantSched) {
		t.Errorf("seed %d schedule %+v", a.Seed, a.Schedule)
	}
	is, err := New(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if is.Seed() != 42 || is.LatencyDist() != a.LatencyDist || is.Fault() != a.Fault {
		t.Errorf("issuer seed %d latency %s fault %+v", is.Seed(), is.LatencyDist(), is.Fault())
	}
	if s, _ := is.Schedule(); !reflect.DeepEqual(s, wantSched) {
		t.Errorf("issuer schedule %+v", s)
	}
	if d := cfgs[1].LatencyDist; d.Kind != LatencyUniform || d.Min != 5*time.Millisecond || d.Max != 50*time.Millisecond {
		t.Errorf("card-b latency_dist %+v", d)
	}

	bad := []struct{ name, issuer, wantErr string }{
		{"latency and latency_dist", "latency: 5ms, latency_dist: {kind: fixed, value: 5ms}", "not both"},
		{"unknown kind", "latency_dist: {kind: gamma, median: 5ms}", "unknown latency kind"},
		{"no kind", "latency_dist: {median: 5ms}", "without a kind"},
		{"bad lognormal", "latency_dist: {kind: lognormal, median: 5ms, p99: 1ms}", "p99 > median"},
		{"unknown dist key", "latency_dist: {kind: fixed, mean: 5ms}", "mean"},
		{"fault over 100", "fault: {drop_percent: 60, wrong_stan_percent: 50}", "add up to 110"},
		{"fault key", "fault: {drop: 5}", "drop"},
		{"window order", "schedule: [{from: 15s, to: 10s}]", "0 <= from < to"},
		{"window fault", "schedule: [{from: 1s, fault: {late_percent: 150}}]", "late_percent 150"},
		{"seed", "seed: -1", "uint64"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte("issuers:\n  - {name: a, addr: ':1', bins: ['9'], " + tt.issuer + "}\n"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
