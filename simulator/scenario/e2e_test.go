package scenario_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/scenario"
	"github.com/kbpay/switch/simulator/terminal"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

const suiteDir = "../scenarios"

// stack is a real switch with the three demo issuers and the issuer
// emulator's admin API, all on loopback, shared by this package's tests.
type stack struct {
	sw          *payswitch.Switch
	issuerAdmin string
	stop        func()
	// logs holds every log line of the switch and the issuers, at debug.
	logs *observer.ObservedLogs
}

var (
	stackOnce sync.Once
	theStack  *stack
	stackErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theStack != nil {
		theStack.stop()
	}
	os.Exit(code)
}

// liveStack starts the stack on first use.
func liveStack(t *testing.T) *stack {
	t.Helper()
	stackOnce.Do(func() { theStack, stackErr = startStack() })
	if stackErr != nil {
		t.Fatal(stackErr)
	}
	return theStack
}

func startStack() (*stack, error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (*stack, error) { stop(); return nil, err }

	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	var issuers []*issuer.Issuer
	routes := []config.IssuerRoute{}
	for _, d := range issuer.DefaultIssuers() {
		d.Addr = "127.0.0.1:0"
		is, err := issuer.New(d, log)
		if err != nil {
			return fail(err)
		}
		if err := is.Start(); err != nil {
			return fail(err)
		}
		stops = append(stops, func() { _ = is.Close() })
		issuers = append(issuers, is)
		r := config.IssuerRoute{Name: d.Name, BINs: d.BINs, Addrs: []string{is.Addr()}, Timeout: 2 * time.Second,
			ReconnectWait: 50 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond, PIN: &config.PINKey{Key: "zpk-demo"}}
		if !d.AcceptsReversals() {
			r.GiveBack = "refund"
		}
		routes = append(routes, r)
	}
	admin := httptest.NewServer(issuer.AdminHandler(issuers))
	stops = append(stops, admin.Close)

	dir, err := os.MkdirTemp("", "scenario-e2e-")
	if err != nil {
		return fail(err)
	}
	stops = append(stops, func() { _ = os.RemoveAll(dir) })
	c := config.Default()
	c.DataDir = dir
	c.HSM.KeyStore, c.HSM.MasterKeyFile, c.Vault.Path, c.Journal.Path = "", "", "", ""
	c.HSM.MasterKeyEnv = "SWITCH_TEST_MASTER_KEY_UNSET"
	c.Admin.Addr = "127.0.0.1:0"
	c.Journal.SAFInterval = 50 * time.Millisecond
	c.Listeners = []config.Listener{
		{Name: "terminal", Addr: "127.0.0.1:0", PIN: &config.PINKey{Key: "tpk-demo"}},
		{Name: "van", Addr: "127.0.0.1:0", PIN: &config.PINKey{Key: "bdk-demo", DUKPT: true}},
		{Name: "keyed", Addr: "127.0.0.1:0", MAC: &config.MACKey{Key: "mac-demo", Algorithm: "retail"}},
	}
	c.Routes = routes
	raw, err := yaml.Marshal(c)
	if err != nil {
		return fail(err)
	}
	if c, err = config.Parse(raw); err != nil {
		return fail(err)
	}
	sw, err := payswitch.New(c, log, prometheus.NewRegistry())
	if err != nil {
		return fail(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		return fail(err)
	}
	stops = append(stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := terminal.WaitReady(ctx, sw.AdminAddr()); err != nil {
		return fail(err)
	}
	return &stack{sw: sw, issuerAdmin: strings.TrimPrefix(admin.URL, "http://"), stop: stop, logs: logs}, nil
}

// args are `termsim run` arguments for the stack: the shipped demo
// variables with the stack's listener addresses.
func (s *stack) args(extra ...string) []string {
	a := []string{
		"--switch", s.sw.ListenerAddr("terminal"),
		"--vars", filepath.Join(suiteDir, "demo-cards.env"),
		"--var", "van_switch=" + s.sw.ListenerAddr("van"),
		"--var", "keyed_switch=" + s.sw.ListenerAddr("keyed"),
		"--timeout", "10s",
	}
	return append(a, extra...)
}

var cardLike = regexp.MustCompile(`\d{13,19}`)

// TestShippedSuite runs simulator/scenarios, as `make demo` does, against
// the real switch and issuer emulator: every step must pass, none may be
// skipped, the summary line and the JUnit file must agree, and no full
// card or token number may be printed.
func TestShippedSuite(t *testing.T) {
	s := liveStack(t)
	junit := filepath.Join(t.TempDir(), "suite.xml")
	var stdout, stderr bytes.Buffer
	code := scenario.Command(context.Background(), append([]string{suiteDir},
		s.args("--issuer-admin", s.issuerAdmin, "--admin", s.sw.AdminAddr(), "--junit", junit)...), &stdout, &stderr)
	out := stdout.String()
	if code != scenario.ExitPassed {
		t.Fatalf("exit %d\n%s\nstderr:\n%s", code, out, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	summary := lines[len(lines)-1]
	if !regexp.MustCompile(`^\d+ passed, 0 failed$`).MatchString(summary) {
		t.Fatalf("summary line %q (nothing may be skipped with every address given)\n%s", summary, out)
	}
	for _, want := range []string{"net cancel after a withheld response", "none, 0400 00", "reconciliation", "keyed terminal MAC"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"table": out, "junit": string(raw)} {
		if m := cardLike.FindString(text); m != "" {
			t.Errorf("%s shows a full card-like number %s", name, m)
		}
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &suites); err != nil {
		t.Fatal(err)
	}
	var passed int
	fmt.Sscanf(summary, "%d passed", &passed)
	if suites.Tests != passed || suites.Failures != 0 || len(suites.Suites) < 12 {
		t.Fatalf("junit: %d tests %d failures %d suites; table: %s", suites.Tests, suites.Failures, len(suites.Suites), summary)
	}
	t.Log("\n" + out)
}

// TestForeignSwitchSkips: without the admin addresses (as against a switch
// that is not ours) the scenarios that need them are skipped, not failed.
func TestForeignSwitchSkips(t *testing.T) {
	s := liveStack(t)
	var stdout, stderr bytes.Buffer
	code := scenario.Command(context.Background(), append([]string{suiteDir, "--run", "net cancel|token life|issuer timeout|declines"},
		s.args("--admin", "", "--issuer-admin", "")...), &stdout, &stderr)
	out := stdout.String()
	if code != scenario.ExitPassed {
		t.Fatalf("exit %d\n%s\n%s", code, out, &stderr)
	}
	if !strings.Contains(out, "\n3 passed, 0 failed, 23 skipped\n") {
		t.Fatalf("want the declines to pass and the rest skipped:\n%s", out)
	}
	if !strings.Contains(out, "requires issuer_admin (no --issuer-admin given)") || !strings.Contains(out, "requires token_api") {
		t.Fatalf("skip reasons missing:\n%s", out)
	}
	// --skip-requires skips a requirement that is met.
	stdout.Reset()
	code = scenario.Command(context.Background(), append([]string{suiteDir, "--run", "MAC"},
		s.args("--skip-requires", "keyed_switch")...), &stdout, &stderr)
	if code != scenario.ExitPassed || !strings.Contains(stdout.String(), "0 passed, 0 failed, 3 skipped") {
		t.Fatalf("exit %d\n%s", code, &stdout)
	}
}

// TestFailingExpectationFails: a wrong expectation fails the step, stops
// the scenario, makes the summary count it and the exit code 1, and the
// JUnit file carries the failure.
func TestFailingExpectationFails(t *testing.T) {
	s := liveStack(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "wrong.yaml")
	if err := os.WriteFile(file, []byte(`
name: wrong expectations
steps:
  - name: approved but 51 expected
    send: {pan: "${card_a}", amount: 100}
    expect: {rc: "51"}
  - name: never runs
    send: {pan: "${card_a}", amount: 100}
    expect: "00"
---
name: field check fails
steps:
  - name: DE 2 is the card, not something else
    send: {pan: "${card_a}", amount: 100}
    expect: {rc: "00", fields: {pan: "9410000000000013", 38: absent}}
---
name: answer where none was expected
steps:
  - name: no response expected
    send: {pan: "${card_a}", amount: 100}
    expect: {no_response: true}
teardown:
  - name: teardown still runs
    send: {pan: "${card_a}", amount: 100}
    expect: "00"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(dir, "out.xml")
	var stdout, stderr bytes.Buffer
	code := scenario.Command(context.Background(), append([]string{file}, s.args("--junit", junit)...), &stdout, &stderr)
	out := stdout.String()
	if code != scenario.ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, scenario.ExitFailed, out, &stderr)
	}
	for _, want := range []string{
		"FAIL  DE 39 00 (Approved or completed successfully), want 51",
		`SKIP  not run: "approved but 51 expected" failed`,
		"DE 2 is 941000******0005, want 941000******0013",
		"DE 38 is ",
		"got a response (DE 39 00), want none",
		"\n1 passed, 3 failed, 1 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if m := cardLike.FindString(out); m != "" {
		t.Errorf("output shows %s", m)
	}
	raw, _ := os.ReadFile(junit)
	if !strings.Contains(string(raw), `<failure message="DE 39 00 (Approved or completed successfully), want 51" type="expectation">`) ||
		!strings.Contains(string(raw), `failures="3"`) || !strings.Contains(string(raw), "<system-out>") {
		t.Fatalf("junit:\n%s", raw)
	}
}

// TestNetCancelNamesTheSale checks on the issuer's side of the real switch
// that the POS's automatic 0400 reversed exactly the withheld sale.
func TestNetCancelNamesTheSale(t *testing.T) {
	s := liveStack(t)
	sc, err := scenario.Parse([]byte(`
name: net cancel detail
steps:
  - name: withhold
    issuer: {name: card-b, mode: silent, fault: {charge_when_silent: true}}
  - name: sale
    timeout: 500ms
    send: {pan: "${card_b}", amount: 777}
    expect: {no_response: true, net_cancel: "00"}
    save: {sale_stan: request.11, sale_de7: request.7}
teardown:
  - name: restore
    issuer: {name: card-b, mode: normal, fault: {}}
`), "inline")
	if err != nil {
		t.Fatal(err)
	}
	var rows []scenario.StepResult
	rep := scenario.Run(context.Background(), sc, scenario.Options{
		Switch: s.sw.ListenerAddr("terminal"), IssuerAdmin: s.issuerAdmin,
		Vars:   map[string]string{"card_b": "9420000000000003"},
		OnStep: func(r scenario.StepResult) { rows = append(rows, r) },
	})
	if rep.Failed() || len(rows) != 3 {
		t.Fatalf("%s: %+v", rep.Summary(), rows)
	}
	if rows[1].Got != "none, 0400 00" || rows[1].Expected != "none, 0400 00" {
		t.Fatalf("row %+v", rows[1])
	}
}
