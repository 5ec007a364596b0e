package config

import (
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

// A listener or route given in a file keeps every default it does not
// override; the demo PIN keys are development defaults only.
func TestParseMergesDefaultsPerItem(t *testing.T) {
	const file = `
listeners:
  - name: terminal
    addr: 127.0.0.1:9583
routes:
  - name: prepaid
    addrs: ["127.0.0.1:9903"]
  - name: other
    bins: ["5"]
    addrs: ["127.0.0.1:9904"]
`
	c, err := ParseEnv([]byte(file), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if l.PIN == nil || l.PIN.Key != "tpk-demo" || l.Addr != "127.0.0.1:9583" {
		t.Errorf("listener terminal lost its PIN key default or override: %+v pin %+v", l, l.PIN)
	}
	p := c.Routes[0]
	if p.GiveBack != "refund" || len(p.BINs) != 1 || p.BINs[0] != "9430" || p.PIN == nil || p.PIN.Key != "zpk-demo" {
		t.Errorf("route prepaid lost its defaults: %+v pin %+v", p, p.PIN)
	}
	if p.Addrs[0] != "127.0.0.1:9903" {
		t.Errorf("route prepaid lost its override: %v", p.Addrs)
	}
	if o := c.Routes[1]; o.PIN == nil || o.PIN.Key != "zpk-demo" || o.GiveBack != "reversal" {
		t.Errorf("route other: %+v pin %+v", o, o.PIN)
	}

	prod := func(k string) string {
		if k == "SWITCH_MASTER_KEY" {
			return strings.Repeat("ab", 32)
		}
		return ""
	}
	c, err = ParseEnv([]byte(file), prod)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0].PIN != nil || c.Routes[0].PIN != nil || c.Routes[1].PIN != nil {
		t.Errorf("demo PIN keys applied outside development mode: %+v %+v", c.Listeners[0].PIN, c.Routes[0].PIN)
	}
	if c.Routes[0].GiveBack != "refund" {
		t.Errorf("route prepaid lost give_back outside development mode: %q", c.Routes[0].GiveBack)
	}
}

func TestParseUnknownKeySuggests(t *testing.T) {
	_, err := ParseEnv([]byte("listeners:\n  - name: terminal\n    adr: 127.0.0.1:1\nrouts: []\n"), noEnv)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, want := range []string{`unknown key "adr" in a listener (did you mean "addr"?)`, `unknown key "routs" at the top level (did you mean "routes"?)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestValidateAddresses(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"port out of range", "admin: {addr: '127.0.0.1:70000'}", `admin: address "127.0.0.1:70000": port 70000 outside 0..65535`},
		{"port not a number", "admin: {addr: '127.0.0.1:http'}", `port "http" is not a number`},
		{"duplicate", "admin: {addr: '127.0.0.1:8583'}", "address 127.0.0.1:8583 is used by both listener terminal and admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEnv([]byte(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRouteWithoutZoneKeyWhileListenersTakePINs(t *testing.T) {
	prod := func(k string) string {
		if k == "SWITCH_MASTER_KEY" {
			return "x"
		}
		return ""
	}
	c, err := ParseEnv([]byte("listeners: [{name: terminal, pin: {key: tpk-1}}, {name: ecom, addr: '127.0.0.1:9585'}]\nroutes: [{name: card-a, pin: {key: zpk-1}}, {name: card-b}]\n"), prod)
	if err != nil {
		t.Fatal(err)
	}
	problems, warnings := c.PINProblems()
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "route card-b has no zone PIN key") {
		t.Errorf("problems %v", problems)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "listener ecom has no terminal PIN key") {
		t.Errorf("warnings %v", warnings)
	}
}
