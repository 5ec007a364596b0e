package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0].Addr != "127.0.0.1:8583" || c.Listeners[1].Addr != "127.0.0.1:8584" || c.Admin.Addr != "127.0.0.1:8580" {
		t.Errorf("default addresses changed: %+v %+v", c.Listeners, c.Admin)
	}
	if len(c.Routes) != 3 || c.Routes[0].Timeout != 5*time.Second || c.Routes[0].Header != "ascii4" {
		t.Errorf("default routes: %+v", c.Routes)
	}
}

func TestParse(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "empty file keeps every default", yaml: "", check: func(t *testing.T, c Config) {
			if len(c.Routes) != 3 || len(c.Listeners) != 2 {
				t.Errorf("%d routes %d listeners", len(c.Routes), len(c.Listeners))
			}
		}},
		{name: "route override with durations", yaml: `
routes:
  - name: card-x
    bins: ["5555", "41"]
    addrs: ["10.0.0.1:7000", "10.0.0.1:7000"]
    timeout: 1500ms
`, check: func(t *testing.T, c Config) {
			r := c.Routes[0]
			if len(c.Routes) != 1 || r.Timeout != 1500*time.Millisecond || r.Spec != "issuer87" || len(r.Addrs) != 2 {
				t.Errorf("%+v", c.Routes)
			}
		}},
		{name: "unknown key", yaml: "listners: []", wantErr: `unknown key "listners" at the top level (did you mean "listeners"?)`},
		{name: "bad BIN", yaml: "routes: [{name: a, bins: [94x0], addrs: ['127.0.0.1:1']}]", wantErr: "must be 1-11 digits"},
		{name: "BIN on two routes", yaml: "routes: [{name: a, bins: ['94'], addrs: ['127.0.0.1:1']}, {name: b, bins: ['94'], addrs: ['127.0.0.1:2']}]", wantErr: "already routed to a"},
		{name: "route without address", yaml: "routes: [{name: a, bins: ['94']}]", wantErr: "at least one issuer address"},
		{name: "bad header", yaml: "listeners: [{name: t, addr: '127.0.0.1:1', header: ebcdic9}]", wantErr: "unknown length header"},
		{name: "missing spec file", yaml: "listeners: [{name: t, addr: '127.0.0.1:1', spec: /nonexistent/spec.json}]", wantErr: "reading spec"},
		{name: "bad address", yaml: "admin: {addr: localhost}", wantErr: "admin: address"},
		{name: "duplicate listener", yaml: "listeners: [{name: t, addr: '127.0.0.1:1'}, {name: t, addr: '127.0.0.1:2'}]", wantErr: "duplicate listener name"},
		{name: "bad log level", yaml: "log: {level: loud}", wantErr: "log.level"},
		{name: "not YAML", yaml: "routes: [", wantErr: "parsing YAML"},
		{name: "group wait by default", yaml: "", check: func(t *testing.T, c Config) {
			if c.Journal.HeldGroupWait() != DefaultGroupWait || c.Journal.GroupSize != 16 {
				t.Errorf("group_wait %v, group_size %d", c.Journal.HeldGroupWait(), c.Journal.GroupSize)
			}
		}},
		{name: "group wait off", yaml: "journal: {group_wait: 0s}", check: func(t *testing.T, c Config) {
			if c.Journal.HeldGroupWait() != 0 {
				t.Errorf("group_wait %v, want 0 (off)", c.Journal.HeldGroupWait())
			}
		}},
		{name: "group wait too long", yaml: "journal: {group_wait: 50ms}", wantErr: "journal.group_wait 50ms outside 0..10ms"},
		{name: "group size too big", yaml: "journal: {group_size: 1000}", wantErr: "journal.group_size 1000 outside 1..256"},
	})
}

// parseCase is a configuration file and what Parse must make of it.
type parseCase struct {
	name    string
	yaml    string
	wantErr string // substring; "" means valid
	check   func(t *testing.T, c Config)
}

// runParseCases parses each case's YAML: it must fail mentioning wantErr,
// or succeed with a Config that check accepts.
func runParseCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("routes: [{name: a, bins: ['94'], addrs: ['127.0.0.1:1']}]"))
	f.Add([]byte("listeners: [{name: t, addr: '127.0.0.1:1', max_frame: 100}]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}
