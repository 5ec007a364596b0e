package scenario

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
)

// Options configures a run.
type Options struct {
	// Switch is the default switch address (terminal.DefaultAddr).
	Switch string
	// Spec and Header are the default dialect and length header.
	Spec, Header string
	// TerminalID and MerchantID are the defaults for DE 41 and 42.
	TerminalID, MerchantID string
	// Timeout is the POS's default response timeout (30s).
	Timeout time.Duration
	// PINKey and DUKPTBDK are the default terminal PIN keys (nil: the demo
	// TPK, no DUKPT).
	PINKey, DUKPTBDK []byte
	// IssuerAdmin is the issuer emulator's admin address; empty skips the
	// scenarios that need it.
	IssuerAdmin string
	// TokenAdmin is the switch's admin address for the token API; empty
	// skips the scenarios that need it. Bearer is the API's token.
	TokenAdmin, Bearer string
	// Vars are the run's variables (from --vars files and --var).
	Vars map[string]string
	// Skip lists requirements to treat as unmet.
	Skip []string
	// OnStep, when set, gets each step's result as soon as it is known.
	OnStep func(StepResult)
	// Logger gets the POS terminals' connection events (nil: none).
	Logger *zap.Logger
	// HTTP calls the admin APIs (nil: a client with a 10s timeout).
	HTTP *http.Client
}

// Status is a step's outcome.
type Status string

// Step outcomes.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// StepResult is one row of the report. No field carries a full PAN or a
// PIN.
type StepResult struct {
	Scenario, File, Step string
	Status               Status
	Expected, Got        string
	// Reason says why the step failed or was skipped.
	Reason   string
	Duration time.Duration
	// Detail holds the masked request and response of a failed step.
	Detail string
}

// ScenarioResult is the outcome of one scenario.
type ScenarioResult struct {
	Name, File string
	Start      time.Time
	Duration   time.Duration
	Steps      []StepResult
}

// Report is the outcome of a run.
type Report struct {
	Start     time.Time
	Duration  time.Duration
	Scenarios []ScenarioResult
}

// Counts returns the number of passed, failed and skipped steps.
func (r Report) Counts() (passed, failed, skipped int) {
	for _, s := range r.Scenarios {
		for _, st := range s.Steps {
			switch st.Status {
			case Pass:
				passed++
			case Fail:
				failed++
			case Skip:
				skipped++
			}
		}
	}
	return
}

// Failed reports whether any step failed.
func (r Report) Failed() bool {
	_, f, _ := r.Counts()
	return f > 0
}

// Summary is the summary line: "N passed, M failed" and ", K skipped"
// when any step was skipped.
func (r Report) Summary() string {
	p, f, s := r.Counts()
	out := fmt.Sprintf("%d passed, %d failed", p, f)
	if s > 0 {
		out += fmt.Sprintf(", %d skipped", s)
	}
	return out
}

// Run runs the scenarios in order and returns the report. Every POS it
// opened is closed before it returns.
func Run(ctx context.Context, scenarios []*Scenario, opts Options) Report {
	r := newRunner(opts)
	defer r.close()
	rep := Report{Start: time.Now()}
	for _, sc := range scenarios {
		rep.Scenarios = append(rep.Scenarios, r.runScenario(ctx, sc))
	}
	rep.Duration = time.Since(rep.Start)
	return rep
}

type runner struct {
	opts  Options
	runID string
	pos   map[string]*terminal.POS
	stans map[string]*terminal.STANGenerator // by terminal ID: shared across its POS values
	http  *http.Client
	probe *probes
}

func newRunner(opts Options) *runner {
	if opts.Switch == "" {
		opts.Switch = terminal.DefaultAddr
	}
	if opts.Timeout <= 0 {
		opts.Timeout = terminal.DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	vars := map[string]string{}
	for k, v := range opts.Vars {
		vars[strings.ToLower(k)] = v
	}
	opts.Vars = vars
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &runner{
		opts:  opts,
		runID: fmt.Sprintf("%06d", rand.IntN(1_000_000)),
		pos:   map[string]*terminal.POS{},
		stans: map[string]*terminal.STANGenerator{},
		http:  hc,
		probe: &probes{http: hc},
	}
}

func (r *runner) close() {
	for _, p := range r.pos {
		_ = p.Close()
	}
}

// unmet says why a requirement is not met, or "" when it is.
func (r *runner) unmet(req string, lookup Lookup) string {
	if slices.Contains(r.opts.Skip, req) {
		return "requires " + req + " (skipped by --skip-requires)"
	}
	switch req {
	case RequireIssuerAdmin:
		if r.opts.IssuerAdmin == "" {
			return "requires issuer_admin (no --issuer-admin given)"
		}
		if why := r.probe.reachableHTTP(adminURL(r.opts.IssuerAdmin, "/stats")); why != "" {
			return "requires issuer_admin (" + why + "; issuersim serves it, --issuer-admin ADDR)"
		}
	case RequireTokenAPI:
		if r.opts.TokenAdmin == "" {
			return "requires token_api (no --admin given)"
		}
		if why := r.probe.reachableHTTP(adminURL(r.opts.TokenAdmin, "/healthz")); why != "" {
			return "requires token_api (" + why + "; switchd's admin API, --admin ADDR)"
		}
	default:
		v, ok := lookup(strings.ToLower(req))
		if !ok || v == "" {
			return "requires " + req + " (variable not defined: give it with --var " + strings.ToUpper(req) + "=... or a --vars file)"
		}
		if isSwitchAddress(req) {
			if why := r.probe.reachableTCP(v); why != "" {
				return "requires " + req + " (" + why + ": the target has no such listener)"
			}
		}
	}
	return ""
}

// scenarioRun is the state of one scenario while it runs.
type scenarioRun struct {
	r     *runner
	sc    *Scenario
	vars  map[string]string // scenario vars and saved values
	steps map[string]*terminal.Exchange
	res   *ScenarioResult

	terminalID, merchantID, addr string
	timeout                      time.Duration
	posOpts                      terminal.Options
	macKey                       []byte
	pos                          *terminal.POS
}

func (sr *scenarioRun) lookup(name string) (string, bool) {
	if v, ok := sr.vars[name]; ok {
		return v, true
	}
	if v, ok := sr.r.opts.Vars[name]; ok {
		return v, true
	}
	return sr.builtin(name)
}

// builtin resolves the built-in variables.
func (sr *scenarioRun) builtin(name string) (string, bool) {
	now := time.Now()
	switch name {
	case "now_de7":
		return now.UTC().Format("0102150405"), true
	case "now_local_date":
		return now.Format("0102"), true
	case "now_local_time":
		return now.Format("150405"), true
	case "now_yymm":
		return now.Format("0601"), true
	case "run_id":
		return sr.r.runID, true
	case "scenario":
		return sr.sc.Name, true
	case "terminal_id":
		return sr.terminalID, sr.terminalID != ""
	case "merchant_id":
		return sr.merchantID, sr.merchantID != ""
	case "stan":
		p, err := sr.terminal()
		if err != nil {
			return "", false
		}
		return p.NextSTAN(), true
	}
	return "", false
}

func (sr *scenarioRun) expand(s string) (string, error) { return Expand(s, sr.lookup) }

func (sr *scenarioRun) emit(res StepResult) {
	res.Scenario, res.File = sr.sc.Name, sr.sc.File
	res.Reason = pan.Scrub(res.Reason)
	res.Got = pan.Scrub(res.Got)
	res.Expected = pan.Scrub(res.Expected)
	sr.res.Steps = append(sr.res.Steps, res)
	if sr.r.opts.OnStep != nil {
		sr.r.opts.OnStep(res)
	}
}

func (r *runner) runScenario(ctx context.Context, sc *Scenario) ScenarioResult {
	res := &ScenarioResult{Name: sc.Name, File: sc.File, Start: time.Now()}
	sr := &scenarioRun{r: r, sc: sc, vars: map[string]string{}, steps: map[string]*terminal.Exchange{}, res: res}
	sr.run(ctx)
	res.Duration = time.Since(res.Start)
	return *res
}

// run runs the scenario's setup, steps and teardown into sr.res.
func (sr *scenarioRun) run(ctx context.Context) {
	r, sc := sr.r, sr.sc

	rows := func() []string {
		var names []string
		for _, t := range sc.Setup.Tokens {
			names = append(names, "setup: token "+t.Name)
		}
		for _, st := range sc.Steps {
			names = append(names, st.Name)
		}
		for _, st := range sc.Teardown {
			names = append(names, st.Name)
		}
		return names
	}
	skipAll := func(names []string, reason string) {
		for _, n := range names {
			sr.emit(StepResult{Step: n, Status: Skip, Reason: reason})
		}
	}
	for _, req := range sc.requirements() {
		if why := r.unmet(req, sr.lookup); why != "" {
			skipAll(rows(), why)
			return
		}
	}
	if err := sr.prepare(); err != nil {
		sr.emit(StepResult{Step: "scenario settings", Status: Fail, Reason: err.Error()})
		skipAll(rows(), "scenario settings failed")
		return
	}

	failedAt := ""
	for _, t := range sc.Setup.Tokens {
		name := "setup: token " + t.Name
		if failedAt != "" {
			sr.emit(StepResult{Step: name, Status: Skip, Reason: "not run: " + failedAt + " failed"})
			continue
		}
		start := time.Now()
		got, err := sr.issueToken(ctx, t)
		row := StepResult{Step: name, Expected: "active", Got: got, Duration: time.Since(start), Status: Pass}
		if err != nil {
			row.Status, row.Reason, row.Got = Fail, err.Error(), "error"
			failedAt = name
		}
		sr.emit(row)
	}
	for i := range sc.Steps {
		st := &sc.Steps[i]
		if failedAt != "" {
			sr.emit(StepResult{Step: st.Name, Status: Skip, Reason: "not run: " + failedAt + " failed"})
			continue
		}
		if ctx.Err() != nil {
			sr.emit(StepResult{Step: st.Name, Status: Skip, Reason: "not run: interrupted"})
			continue
		}
		row := sr.runStep(ctx, st)
		sr.emit(row)
		if row.Status == Fail {
			failedAt = strconv.Quote(st.Name)
		}
	}
	// Teardown always runs, so that an issuer silenced by a failed
	// scenario does not break the next one.
	for i := range sc.Teardown {
		sr.emit(sr.runStep(context.WithoutCancel(ctx), &sc.Teardown[i]))
	}
}

// prepare resolves the scenario's variables and terminal settings.
func (sr *scenarioRun) prepare() error {
	o := sr.r.opts
	for _, k := range slices.Sorted(maps.Keys(sr.sc.Vars)) {
		v, err := Expand(sr.sc.Vars[k], func(n string) (string, bool) {
			if v, ok := o.Vars[n]; ok {
				return v, true
			}
			return sr.builtin(n)
		})
		if err != nil {
			return fmt.Errorf("vars.%s: %w", k, err)
		}
		sr.vars[strings.ToLower(k)] = v
	}
	str := func(what, v, def string) (string, error) {
		if v == "" {
			return def, nil
		}
		x, err := sr.expand(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return x, nil
	}
	key := func(what, v string, def []byte) ([]byte, error) {
		x, err := str(what, v, "")
		if err != nil || x == "" {
			return def, err
		}
		b, err := hex.DecodeString(x)
		if err != nil {
			return nil, fmt.Errorf("%s is not hex", what)
		}
		return b, nil
	}
	var err error
	if sr.terminalID, err = str("terminal", sr.sc.Terminal, o.TerminalID); err != nil {
		return err
	}
	if sr.terminalID == "" {
		sr.terminalID = terminal.DefaultTerminalID
	}
	if sr.merchantID, err = str("merchant", sr.sc.Merchant, o.MerchantID); err != nil {
		return err
	}
	if sr.merchantID == "" {
		sr.merchantID = terminal.DefaultMerchantID
	}
	if sr.addr, err = str("switch", sr.sc.Switch, o.Switch); err != nil {
		return err
	}
	spec, err := str("spec", sr.sc.Spec, o.Spec)
	if err != nil {
		return err
	}
	header, err := str("header", sr.sc.Header, o.Header)
	if err != nil {
		return err
	}
	sr.timeout = o.Timeout
	if sr.sc.Timeout > 0 {
		sr.timeout = sr.sc.Timeout
	}
	if sr.macKey, err = key("mac_key", sr.sc.MACKey, nil); err != nil {
		return err
	}
	pinKey, err := key("pin_key", sr.sc.PINKey, o.PINKey)
	if err != nil {
		return err
	}
	bdk, err := key("dukpt_bdk", sr.sc.DUKPTBDK, o.DUKPTBDK)
	if err != nil {
		return err
	}
	sr.posOpts = terminal.Options{Addr: sr.addr, Spec: spec, Header: header, TerminalID: sr.terminalID,
		MerchantID: sr.merchantID, Timeout: sr.timeout, Logger: o.Logger, PINKey: pinKey, DUKPTBDK: bdk}
	return nil
}

// terminal returns the scenario's POS: shared by every scenario of the run
// with the same terminal ID, switch, dialect, keys and timeout.
func (sr *scenarioRun) terminal() (*terminal.POS, error) {
	if sr.pos != nil {
		return sr.pos, nil
	}
	o := sr.posOpts
	k := strings.Join([]string{o.Addr, o.Spec, o.Header, o.TerminalID, o.MerchantID, hex.EncodeToString(o.PINKey),
		hex.EncodeToString(o.DUKPTBDK), hex.EncodeToString(sr.macKey), sr.timeout.String()}, "|")
	if p, ok := sr.r.pos[k]; ok {
		sr.pos = p
		return p, nil
	}
	stan := sr.r.stans[o.TerminalID]
	if stan == nil {
		stan = terminal.NewRandomSTANGenerator()
		sr.r.stans[o.TerminalID] = stan
	}
	p, err := terminal.NewPOS(o, terminal.POSOptions{Timeout: sr.timeout, MACKey: sr.macKey, STAN: stan})
	if err != nil {
		return nil, err
	}
	sr.r.pos[k] = p
	sr.pos = p
	return p, nil
}

func (sr *scenarioRun) runStep(ctx context.Context, st *Step) StepResult {
	for _, req := range st.Requires {
		if why := sr.r.unmet(req, sr.lookup); why != "" {
			return StepResult{Step: st.Name, Status: Skip, Reason: why}
		}
	}
	start := time.Now()
	var row StepResult
	switch {
	case st.Send != nil:
		row = sr.send(ctx, st)
	case st.Token != nil:
		row = sr.tokenStep(ctx, st.Token)
	case st.Issuer != nil:
		row = sr.issuerStep(ctx, st.Issuer)
	case st.Sleep > 0:
		row = StepResult{Expected: "sleep " + st.Sleep.String(), Got: "slept", Status: Pass}
		select {
		case <-time.After(st.Sleep):
		case <-ctx.Done():
			row.Status, row.Reason = Fail, "interrupted"
		}
	}
	row.Step = st.Name
	if row.Duration == 0 {
		row.Duration = time.Since(start)
	}
	return row
}

// send runs a send step: build, send through the POS, check, save.
func (sr *scenarioRun) send(ctx context.Context, st *Step) StepResult {
	row := StepResult{Expected: sr.describeExpect(st.Expect)}
	fail := func(format string, a ...any) StepResult {
		row.Status, row.Reason = Fail, fmt.Sprintf(format, a...)
		if row.Got == "" {
			row.Got = "-"
		}
		return row
	}
	p, err := sr.terminal()
	if err != nil {
		return fail("%v", err)
	}
	msg, err := sr.build(p, st.Send)
	if err != nil {
		return fail("building the request: %v", err)
	}
	mode := map[string]terminal.MACMode{"": terminal.MACAuto, "auto": terminal.MACAuto,
		"none": terminal.MACNone, "wrong": terminal.MACWrong}[st.Send.MAC]
	start := time.Now()
	ex, err := p.Send(ctx, msg, terminal.SendOptions{Timeout: st.Timeout, MAC: mode})
	row.Duration = time.Since(start)
	if ex == nil {
		return fail("%v", err)
	}
	sr.steps[st.Name] = ex
	row.Got = describeGot(ex)
	failures := sr.check(st.Expect, ex)
	for _, name := range slices.Sorted(maps.Keys(st.Save)) {
		id, fromReq, _ := parseSource(st.Save[name])
		m := ex.Response
		if fromReq {
			m = ex.Request
		}
		if m == nil {
			failures = append(failures, fmt.Sprintf("save %s: no response", name))
			continue
		}
		if m.GetField(id) == nil {
			failures = append(failures, fmt.Sprintf("save %s: DE %d absent", name, id))
			continue
		}
		v, _ := m.GetString(id)
		sr.vars[strings.ToLower(name)] = v
	}
	if len(failures) > 0 {
		row.Status, row.Reason = Fail, strings.Join(failures, "; ")
		row.Detail = describeExchange(ex)
		return row
	}
	row.Status = Pass
	return row
}

// errInterrupted ends a wait early.
var errInterrupted = errors.New("interrupted")
