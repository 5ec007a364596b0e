package scenario

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

const sample = `
# comment
name: sample
terminal: "T${run_id}"
timeout: 5s
vars: {amt: "1500"}
setup:
  tokens:
    - {name: dev1, pan: "${card_a}", expiry: "3012"}
steps:
  - name: sale
    send:
      mti: "0200"
      pan: "${card_a}"
      amount: 15000
      processing_code: 000000
      22: "012"
      fields: {48: "hello", expiry: null}
    expect:
      rc: [00, "05"]
      fields: {38: present, 2: "${dev1}", 39: "/^0/", 44: ~, 41: "!=OTHER"}
      max_time: 2s
    save: {rrn1: 37, stan1: request.11}
  - name: cancel
    timeout: 1s
    send: {mti: "0400", ref: sale, remaining: 500, mac: wrong}
    expect: {no_response: true, net_cancel: "00"}
  - name: pause
    sleep: 10ms
  - name: silence
    issuer: {name: card-a, mode: silent, fault: {charge_when_silent: true}}
  - name: suspend
    token: {suspend: "${dev1}"}
teardown:
  - name: restore
    issuer: {name: card-a, mode: normal, fault: {}}
---
name: second
steps:
  - name: recon
    send: {mti: "0500", totals: batch}
    expect: "00"
`

func TestParse(t *testing.T) {
	scs, err := Parse([]byte(sample), "sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) != 2 || scs[1].Name != "second" || scs[0].File != "sample.yaml" {
		t.Fatalf("%d scenarios", len(scs))
	}
	sc := scs[0]
	if sc.Timeout != 5*time.Second || sc.Terminal != "T${run_id}" || sc.Setup.Tokens[0].Name != "dev1" {
		t.Fatalf("%+v", sc)
	}
	sale := sc.Steps[0]
	got := map[int]FieldValue{}
	for _, f := range sale.Send.Fields {
		got[f.ID] = f
	}
	if sale.Send.MTI != "0200" || got[2].Value != "${card_a}" || got[4].Value != "15000" || got[3].Value != "000000" ||
		got[22].Value != "012" || got[48].Value != "hello" || !got[14].Unset {
		t.Fatalf("send fields %+v", sale.Send.Fields)
	}
	e := sale.Expect
	if strings.Join(e.RC, ",") != "00,05" || e.MaxTime != 2*time.Second || len(e.Fields) != 5 {
		t.Fatalf("expect %+v", e)
	}
	if e.Fields[3] != (FieldCheck{ID: 44, Want: "absent"}) || e.Fields[1] != (FieldCheck{ID: 2, Want: "${dev1}"}) {
		t.Fatalf("expect fields %+v", e.Fields)
	}
	if sale.Save["rrn1"] != "37" || sale.Save["stan1"] != "request.11" {
		t.Fatalf("save %v", sale.Save)
	}
	cancel := sc.Steps[1]
	if cancel.Send.Ref != "sale" || cancel.Send.Remaining != "500" || cancel.Send.MAC != "wrong" || cancel.Timeout != time.Second ||
		!cancel.Expect.NoResponse || cancel.Expect.NetCancel == nil || cancel.Expect.NetCancel.RC[0] != "00" {
		t.Fatalf("cancel %+v %+v", cancel.Send, cancel.Expect)
	}
	if sc.Steps[2].Sleep != 10*time.Millisecond || !sc.Steps[3].Issuer.Fault.ChargeWhenSilent || sc.Teardown[0].Issuer.Fault == nil {
		t.Fatal("sleep, issuer fault or empty fault mapping lost")
	}
	if req := sc.requirements(); strings.Join(req, ",") != "issuer_admin,token_api" {
		t.Fatalf("implied requirements %v", req)
	}
	if scs[1].Steps[0].Send.Totals != "batch" || scs[1].Steps[0].Expect.RC[0] != "00" {
		t.Fatal("second scenario")
	}
}

func TestParseErrors(t *testing.T) {
	step := func(s string) string { return "name: x\nsteps:\n" + s }
	tests := []struct{ name, yaml, want string }{
		{"no name", "steps: [{name: a, sleep: 1s}]", "without a name"},
		{"no steps", "name: x", "no steps"},
		{"unknown step key", step("  - {name: a, sned: {}, sleep: 1s}"), "field sned not found"},
		{"unknown scenario key", "name: x\nstep: []\n", "field step not found"},
		{"unknown field name", step("  - {name: a, send: {pna: 1}, expect: '00'}"), `unknown field "pna"`},
		{"field out of range", step("  - {name: a, send: {129: 1}, expect: '00'}"), "unknown field"},
		{"duplicate field", step("  - {name: a, send: {2: 1, pan: 2}, expect: '00'}"), "DE 2 already given"},
		{"unknown expect key", step("  - {name: a, send: {}, expect: {rcc: '00'}}"), `unknown key "rcc"`},
		{"send without expect", step("  - {name: a, send: {amount: 1}}"), "expect needs rc or no_response"},
		{"rc and no_response", step("  - {name: a, send: {}, expect: {rc: '00', no_response: true}}"), "exclude each other"},
		{"bad rc", step("  - {name: a, send: {}, expect: {rc: '0'}}"), "not 2 characters"},
		{"ref to nothing", step("  - {name: a, send: {mti: '0400', ref: b}, expect: '00'}"), "names no earlier send step"},
		{"ref to a later step", step("  - {name: a, send: {mti: '0400', ref: b}, expect: '00'}\n  - {name: b, send: {}, expect: '00'}"), "no earlier"},
		{"remaining without ref", step("  - {name: a, send: {remaining: 1}, expect: '00'}"), "remaining needs ref"},
		{"bad mac", step("  - {name: a, send: {mac: bad}, expect: '00'}"), "want auto, none or wrong"},
		{"bad totals", step("  - {name: a, send: {totals: x}, expect: '00'}"), "want batch"},
		{"bad mti", step("  - {name: a, send: {mti: '200'}, expect: '00'}"), "not 4 digits"},
		{"two actions", step("  - {name: a, sleep: 1s, issuer: {name: c, mode: silent}}"), "exactly one"},
		{"no action", step("  - {name: a}"), "exactly one"},
		{"duplicate step", step("  - {name: a, sleep: 1s}\n  - {name: a, sleep: 1s}"), "used twice"},
		{"expect on sleep", step("  - {name: a, sleep: 1s, expect: '00'}"), "expect belongs to send"},
		{"bad issuer mode", step("  - {name: a, issuer: {name: c, mode: loud}}"), "want normal or silent"},
		{"issuer without action", step("  - {name: a, issuer: {name: c}}"), "needs mode, latency"},
		{"token two actions", step("  - {name: a, token: {suspend: x, resume: y}}"), "exactly one of issue"},
		{"bad token kind", "name: x\nsetup: {tokens: [{name: t, pan: '1', expiry: '3012', kind: odd}]}\nsteps: [{name: a, sleep: 1s}]", "kind"},
		{"bad save", step("  - {name: a, send: {}, expect: '00', save: {x: request.nope}}"), "unknown field"},
		{"bad regexp", step("  - {name: a, send: {}, expect: {rc: '00', fields: {2: '/(/'}}}"), "missing closing"},
		{"syntax", "name: [", "document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "f.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "f.yaml: ") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestShippedFilesParse(t *testing.T) {
	scs, err := Load("../scenarios")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sc := range scs {
		names[sc.Name] = true
	}
	for _, want := range []string{"purchases", "refund", "full cancel", "partial cancels", "net cancel after a withheld response",
		"one-time token reuse", "token life cycle", "PIN, static terminal key", "keyed terminal MAC", "declines",
		"issuer timeout", "reconciliation"} {
		if !names[want] {
			t.Errorf("shipped suite lacks %q", want)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"card_a": "9410000000000005", "empty": "", "x": "1"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${card_a}", "9410000000000005", ""},
		{"${CARD_A}", "9410000000000005", ""},
		{"a${x}b${x}", "a1b1", ""},
		{"${missing:-dflt}", "dflt", ""},
		{"${empty:-dflt}", "dflt", ""},
		{"${empty}", "", ""},
		{"${x:-dflt}", "1", ""},
		{"${missing:-${x}0}", "10", ""},
		{"$$x ${x}", "$x 1", ""},
		{"cost $5", "cost $5", ""},
		{"${missing}", "", "undefined variable ${missing}"},
		{"${x", "", "unclosed"},
		{"${}", "", "empty variable name"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseVars(t *testing.T) {
	m, err := ParseVars([]byte("# cards\nCARD_A=9410000000000005\n\nexport PIN = '1234'\nNAME=\"a b\"\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m["card_a"] != "9410000000000005" || m["pin"] != "1234" || m["name"] != "a b" || m["empty"] != "" || len(m) != 4 {
		t.Fatalf("%v", m)
	}
	if _, err := ParseVars([]byte("A=1\nnot a line\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
	if m, err := LoadVars("../scenarios/demo-cards.env"); err != nil || m["card_a"] == "" || m["demo_pin"] == "" {
		t.Fatalf("demo-cards.env: %v %v", m, err)
	}
}

// newOffline is a scenario run with a POS that never connects, for
// building messages and checking answers.
func newOffline(t *testing.T, sc *Scenario, vars map[string]string) *scenarioRun {
	t.Helper()
	r := newRunner(Options{Vars: vars})
	t.Cleanup(r.close)
	sr := &scenarioRun{r: r, sc: sc, vars: map[string]string{}, steps: map[string]*terminal.Exchange{}, res: &ScenarioResult{}}
	if err := sr.prepare(); err != nil {
		t.Fatal(err)
	}
	return sr
}

func fieldOf(m *iso8583.Message, id int) string { v, _ := m.GetString(id); return v }

func TestBuild(t *testing.T) {
	scs, err := Parse([]byte(`
name: build
terminal: "T${run_id}"
steps:
  - name: sale
    send: {pan: "${card_a}", amount: 15000, pin: "1234", 48: "hello", entry_mode: null, 52: null}
    expect: "00"
  - name: partial
    send: {mti: "0400", ref: sale, remaining: 6000}
    expect: "00"
  - name: refund
    send: {ref: sale, processing_code: "200000", amount: 700}
    expect: "00"
  - name: recon
    send: {mti: "0500", totals: batch, 76: 9}
    expect: "00"
  - name: echo
    send: {mti: "0800", 55: "9F2701"}
    expect: "00"
`), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc := scs[0]
	sr := newOffline(t, sc, map[string]string{"card_a": "9410000000000005"})
	if len(sr.terminalID) != 7 || !strings.HasPrefix(sr.terminalID, "T") {
		t.Fatalf("terminal %q", sr.terminalID)
	}
	p, err := sr.terminal()
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := sr.lookup("stan")
	s2, _ := sr.lookup("stan")
	if len(s1) != 6 || s1 == s2 {
		t.Fatalf("${stan} gave %q then %q: want the terminal's next STANs", s1, s2)
	}
	if de7, _ := sr.lookup("now_de7"); len(de7) != 10 {
		t.Fatalf("${now_de7} %q", de7)
	}
	build := func(i int) *iso8583.Message {
		t.Helper()
		m, err := sr.build(p, sc.Steps[i].Send)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sale := build(0)
	if mti, _ := sale.GetMTI(); mti != "0200" || fieldOf(sale, 4) != "000000015000" || fieldOf(sale, 3) != "000000" ||
		fieldOf(sale, 49) != "410" || fieldOf(sale, 42) != terminal.DefaultMerchantID || fieldOf(sale, 48) != "hello" {
		t.Fatalf("sale defaults: 4=%q 3=%q 49=%q", fieldOf(sale, 4), fieldOf(sale, 3), fieldOf(sale, 49))
	}
	if sale.GetField(22) != nil {
		t.Error("entry_mode: null must remove the default DE 22")
	}
	if b, _ := sale.GetBytes(52); len(b) != 8 {
		t.Error("pin: must build DE 52 even though the explicit 52: null came first")
	}
	// The POS fills DE 7 and 11 when it sends; here the sale has been "sent".
	_ = sale.Field(11, "000123")
	_ = sale.Field(7, "1125101010")
	resp := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	resp.MTI("0210")
	_ = resp.Field(37, "RRN000000001")
	_ = resp.Field(38, "AUTH01")
	sr.steps["sale"] = &terminal.Exchange{Request: sale, Response: resp}

	partial := build(1)
	if fieldOf(partial, 90) != "0200"+"000123"+"1125101010"+strings.Repeat("0", 22) {
		t.Fatalf("DE 90 %q", fieldOf(partial, 90))
	}
	if !strings.HasPrefix(fieldOf(partial, 95), "000000006000") || fieldOf(partial, 4) != "000000015000" ||
		fieldOf(partial, 2) != "9410000000000005" || fieldOf(partial, 38) != "AUTH01" || partial.GetField(52) != nil {
		t.Fatalf("partial cancel 95=%q 4=%q 38=%q", fieldOf(partial, 95), fieldOf(partial, 4), fieldOf(partial, 38))
	}
	if partial.GetField(11) != nil {
		t.Error("a cancel gets its own STAN from the POS, not the sale's")
	}
	refund := build(2)
	if fieldOf(refund, 3) != "200000" || fieldOf(refund, 37) != "RRN000000001" || fieldOf(refund, 38) != "AUTH01" || fieldOf(refund, 4) != "000000000700" {
		t.Fatalf("refund 3=%q 37=%q 38=%q 4=%q", fieldOf(refund, 3), fieldOf(refund, 37), fieldOf(refund, 38), fieldOf(refund, 4))
	}
	recon := build(3)
	if fieldOf(recon, 76) != "0000000009" || fieldOf(recon, 88) != "0000000000000000" || fieldOf(recon, 74) != "0000000000" {
		t.Fatalf("0500 totals 76=%q 88=%q", fieldOf(recon, 76), fieldOf(recon, 88))
	}
	echo := build(4)
	if fieldOf(echo, 70) != "301" || echo.GetField(42) != nil {
		t.Fatalf("0800 defaults: 70=%q", fieldOf(echo, 70))
	}
	if b, _ := echo.GetBytes(55); !bytes.Equal(b, []byte{0x9F, 0x27, 0x01}) {
		t.Fatalf("binary field from hex: % x", b)
	}

	// Errors name the problem, never the card.
	for _, s := range []*Send{
		{MTI: "0400", Ref: "nothing"},
		{MTI: "0800", Ref: "sale"},
		{Fields: []FieldValue{{ID: 2, Value: "${undefined}"}}},
		{Fields: []FieldValue{{ID: 55, Value: "zz"}}},
		{Fields: []FieldValue{{ID: 2, Value: "94100000000000051234567"}}},
	} {
		_, err := sr.build(p, s)
		if err == nil {
			t.Errorf("build %+v: no error", s)
		} else if strings.Contains(err.Error(), "9410000000000005") {
			t.Errorf("error shows a card number: %v", err)
		}
	}
}

func TestCheckMasksAndJudges(t *testing.T) {
	sc := &Scenario{Name: "c", Steps: []Step{{Name: "s", Sleep: 1}}}
	sr := newOffline(t, sc, map[string]string{"card": "9410000000000013"})
	spec := specs.MustLoad(specs.TerminalDialect)
	req := iso8583.NewMessage(spec)
	req.MTI("0200")
	resp := iso8583.NewMessage(spec)
	resp.MTI("0210")
	_ = resp.Field(2, "9410000000000005")
	_ = resp.Field(39, "51")
	_ = resp.Field(37, "123456789012")
	ex := &terminal.Exchange{Request: req, Response: resp, Latency: 3 * time.Second}
	fails := sr.check(&Expect{RC: []string{"00"}, MaxTime: time.Second, Fields: []FieldCheck{
		{ID: 2, Want: "${card}"}, {ID: 38, Want: "present"}, {ID: 37, Want: "/^9/"}, {ID: 37, Want: "!=123456789012"},
		{ID: 39, Want: "absent"}, {ID: 41, Want: "absent"}, {ID: 37, Want: "123456789012"},
	}, NetCancel: &Expect{RC: []string{"00"}}}, ex)
	want := []string{
		"DE 39 51 (", "want 00",
		"DE 2 is 941000******0005, want 941000******0013",
		"DE 38 absent, want present",
		"DE 37 is 123456789012, want a match of /^9/",
		"DE 37 is 123456789012, want anything else",
		"DE 39 is 51, want absent",
		"took 3s, want at most 1s",
		"no automatic net cancel",
	}
	all := strings.Join(fails, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("failures lack %q:\n%s", w, all)
		}
	}
	if len(fails) != 8 {
		t.Errorf("%d failures, want 8:\n%s", len(fails), all)
	}
	if strings.Contains(all, "9410000000000005") || strings.Contains(all, "9410000000000013") {
		t.Errorf("a failure shows a full card number:\n%s", all)
	}
	// Response MTI is checked too.
	resp.MTI("0110")
	_ = resp.Field(39, "00")
	if f := sr.check(&Expect{RC: []string{"00"}}, ex); len(f) != 1 || !strings.Contains(f[0], "response MTI 0110, want 0210") {
		t.Errorf("MTI check: %v", f)
	}
	if got := describeGot(&terminal.Exchange{NetCancel: &terminal.Exchange{Response: resp}}); got != "none, 0400 00" {
		t.Errorf("got column %q", got)
	}
}

func TestJUnit(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := Report{Duration: 1500 * time.Millisecond, Scenarios: []ScenarioResult{
		{Name: "a & b", File: "a.yaml", Start: start, Duration: time.Second, Steps: []StepResult{
			{Step: "ok", Status: Pass, Duration: 12 * time.Millisecond},
			{Step: "bad <one>", Status: Fail, Expected: "00", Got: "51", Reason: "DE 39 51, want 00", Detail: "request:\nF2: 941000******0005\n]]> end"},
			{Step: "later", Status: Skip, Reason: "not run"},
		}},
		{Name: "empty", Start: start},
	}}
	var b bytes.Buffer
	if err := WriteJUnit(&b, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, &b)
	}
	if doc.Tests != 3 || doc.Failures != 1 || doc.Skipped != 1 || len(doc.Suites) != 2 {
		t.Fatalf("counts %+v", doc)
	}
	s := doc.Suites[0]
	if s.Name != "a & b" || s.Tests != 3 || s.Failures != 1 || s.Time != "1.000" {
		t.Fatalf("suite %+v", s)
	}
	c := s.Cases[1]
	if c.Name != "bad <one>" || c.Classname != "a & b" || c.Failure == nil || c.Failure.Message != "DE 39 51, want 00" ||
		!strings.Contains(c.Failure.Text, "expected 00, got 51") || !strings.Contains(c.SystemOut, "]]> end") {
		t.Fatalf("failed case %+v", c)
	}
	if s.Cases[0].Time != "0.012" || s.Cases[2].Skipped == nil || s.Cases[2].Skipped.Message != "not run" {
		t.Fatalf("cases %+v", s.Cases)
	}
	if !strings.HasPrefix(b.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Fatal("no XML header")
	}
}

func TestSummaryAndTable(t *testing.T) {
	rep := Report{Scenarios: []ScenarioResult{{Steps: []StepResult{{Status: Pass}, {Status: Fail}, {Status: Pass}}}}}
	if rep.Summary() != "2 passed, 1 failed" || !rep.Failed() {
		t.Fatalf("%q", rep.Summary())
	}
	rep.Scenarios[0].Steps = append(rep.Scenarios[0].Steps, StepResult{Status: Skip})
	if rep.Summary() != "2 passed, 1 failed, 1 skipped" {
		t.Fatalf("%q", rep.Summary())
	}
	var b bytes.Buffer
	tbl := NewTable(&b, []*Scenario{{Name: "short", Steps: []Step{{Name: strings.Repeat("s", 60)}}}})
	tbl.Row(StepResult{Scenario: "short", Step: strings.Repeat("s", 60), Expected: "00", Got: "51", Status: Fail,
		Duration: 1234 * time.Microsecond, Reason: "DE 39 51"})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SCENARIO") || !strings.Contains(lines[1], strings.Repeat("s", 39)+"~") ||
		!strings.HasSuffix(lines[1], "1.2ms  FAIL  DE 39 51") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func TestRequirements(t *testing.T) {
	admin := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(admin.Close)
	keyed := testnet.Listen(t)
	closed := testnet.FreeAddr(t) // nothing listens there
	r := newRunner(Options{IssuerAdmin: admin.URL, TokenAdmin: closed, Skip: []string{"van_switch"},
		Vars: map[string]string{"KEYED_SWITCH": keyed.Addr().String(), "VAN_SWITCH": keyed.Addr().String(), "OTHER_SWITCH": closed}})
	lookup := func(n string) (string, bool) { v, ok := r.opts.Vars[n]; return v, ok }
	tests := []struct{ req, want string }{
		{"issuer_admin", ""},
		{"keyed_switch", ""},
		{"van_switch", "--skip-requires"},
		{"token_api", "requires token_api (nothing answers at " + closed},
		{"other_switch", "requires other_switch (nothing listens at " + closed + ": the target has no such listener)"},
		{"mac_key", "requires mac_key (variable not defined: give it with --var MAC_KEY=... or a --vars file)"},
	}
	for _, tt := range tests {
		why := r.unmet(tt.req, lookup)
		if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
			t.Errorf("%s: %q, want %q", tt.req, why, tt.want)
		}
	}
	if why := newRunner(Options{}).unmet("issuer_admin", lookup); !strings.Contains(why, "no --issuer-admin given") {
		t.Errorf("no issuer admin: %q", why)
	}
}
