package payswitch_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// Luhn-valid test cards under the demo issuers' BINs.
const (
	cardA     = "9410000000000005"
	cardA2    = "9410000000000013"
	cardB     = "9420000000000003"
	foreign   = "4111111111111111"
	routeTime = 400 * time.Millisecond
)

type harness struct {
	t       *testing.T
	cfg     config.Config
	sw      *payswitch.Switch
	issuers map[string]*issuer.Issuer
	logs    *observer.ObservedLogs
	addr    string
	opts    []payswitch.Option
}

func startIssuer(t *testing.T, name, addr, bin string) *issuer.Issuer {
	t.Helper()
	return issuertest.Start(t, issuer.Config{Name: name, Addr: addr, BINs: []string{bin}})
}

// freeAddr and waitFor are testnet's, under the names this package's tests
// (and the branches adding to them) use.
var (
	freeAddr = testnet.FreeAddr
	waitFor  = testnet.Eventually
)

// newHarness starts card-a and card-b issuers (unless cardAAddr names an
// address where card-a is not running yet) and a switch routed to them.
func newHarness(t *testing.T, cardAAddr string, mutate ...func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, nil, cardAAddr, mutate...)
}

// newHarnessWith is newHarness with options for payswitch.New (e.g. a
// journal fault).
func newHarnessWith(t *testing.T, opts []payswitch.Option, cardAAddr string, mutate ...func(*config.Config)) *harness {
	t.Helper()
	h := &harness{t: t, issuers: map[string]*issuer.Issuer{}, opts: opts}
	if cardAAddr == "" {
		h.issuers["card-a"] = startIssuer(t, "card-a", "127.0.0.1:0", "9410")
		cardAAddr = h.issuers["card-a"].Addr()
	}
	h.issuers["card-b"] = startIssuer(t, "card-b", "127.0.0.1:0", "9420")

	cfg := testConfig(t)
	zpk := &config.PINKey{Key: "zpk-demo"}
	cfg.Listeners = []config.Listener{
		{Name: "terminal", Addr: "127.0.0.1:0", MaxFrame: 2048, PIN: &config.PINKey{Key: "tpk-demo"}},
		{Name: "van", Addr: "127.0.0.1:0", PIN: &config.PINKey{Key: "bdk-demo", DUKPT: true}},
		{Name: "keyed", Addr: "127.0.0.1:0", MAC: &config.MACKey{Key: "mac-demo", Algorithm: "retail"}},
	}
	cfg.Routes = []config.IssuerRoute{
		{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{cardAAddr}, Timeout: routeTime, ReconnectWait: 50 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond, PIN: zpk},
		{Name: "card-b", BINs: []string{"9420"}, Addrs: []string{h.issuers["card-b"].Addr()}, Timeout: routeTime, PIN: zpk},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	cfg, err := config.Parse(mustYAML(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.startSwitch()
	return h
}

// startSwitch starts a switch on h.cfg (again, after a stop: same data).
func (h *harness) startSwitch() {
	t := h.t
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	sw, err := payswitch.New(h.cfg, zap.New(core), prometheus.NewRegistry(), h.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stopSwitch(sw) })
	h.sw = sw
	h.addr = sw.ListenerAddr("terminal")
}

func (h *harness) stopSwitch(sw *payswitch.Switch) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sw.Shutdown(ctx)
}

func (h *harness) terminal() *terminal.Client {
	h.t.Helper()
	opts := terminal.DefaultOptions()
	opts.Addr = h.addr
	opts.Timeout = 5 * time.Second
	c, err := terminal.Dial(context.Background(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h *harness) linksUp(route string) bool {
	resp, err := http.Get("http://" + h.sw.AdminAddr() + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), `payswitch_issuer_links_up{route="`+route+`"} 1`)
}

func TestEndToEndOutcomes(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	ctx := context.Background()

	tests := []struct {
		name   string
		pan    string
		amount int64
		expiry string
		rc     string
	}{
		{"approved", cardA, 15000, "", "00"},
		{"insufficient funds passes through", cardA2, 2_000_000, "", "51"},
		{"expired card passes through", cardB, 1000, "2001", "54"},
		{"no route", foreign, 1000, "", "92"},
		{"luhn failure", "9410000000000006", 1000, "", "14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := term.Purchase(ctx, terminal.Purchase{PAN: tt.pan, Amount: tt.amount, Expiry: tt.expiry})
			if err != nil {
				t.Fatal(err)
			}
			if res.ResponseCode != tt.rc {
				t.Fatalf("DE 39 = %s, want %s", res.ResponseCode, tt.rc)
			}
			if tt.rc == "00" && len(res.ApprovalCode) != 6 {
				t.Errorf("approval code %q", res.ApprovalCode)
			}
		})
	}
	if got := h.issuers["card-a"].Balance(cardA); got != 1_000_000-15000 {
		t.Errorf("card-a balance %d after a 15000 sale", got)
	}
}

func TestIssuerReceivesMappedFields(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	spec := specs.MustLoad(specs.TerminalDialect)
	opts := terminal.DefaultOptions()
	now := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	req, err := terminal.NewPurchaseMessage(spec, terminal.Purchase{PAN: cardA, Amount: 4321, Expiry: "3012"}, "000123", now, opts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := term.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got issuer.Received
	for _, r := range h.issuers["card-a"].Received() {
		if r.MTI == "0200" {
			got = r
		}
	}
	want := map[int]string{
		specs.PAN: cardA, specs.ProcessingCode: "000000", specs.Amount: "000000004321",
		specs.TransmissionDateTime: "1125101500", specs.Expiry: "3012", specs.TerminalID: opts.TerminalID,
		specs.MerchantID: opts.MerchantID, specs.Currency: "410",
	}
	for id, v := range want {
		if got.Fields[id] != v {
			t.Errorf("issuer DE %d = %q, want %q", id, got.Fields[id], v)
		}
	}
	if got.STAN == "000123" {
		t.Error("issuer leg reused the terminal's STAN instead of the switch's own")
	}
	rrn, _ := resp.GetString(specs.RRN)
	if rrn == "" || rrn != got.Fields[specs.RRN] {
		t.Errorf("terminal RRN %q, issuer saw %q", rrn, got.Fields[specs.RRN])
	}
	if stan, _ := resp.GetString(specs.STAN); stan != "000123" {
		t.Errorf("terminal got STAN %q back", stan)
	}
	rc, _ := resp.GetString(specs.ResponseCode)
	auth, _ := resp.GetString(specs.ApprovalCode)
	if rc != "00" || len(auth) != 6 {
		t.Errorf("terminal got DE 39 %q DE 38 %q", rc, auth)
	}
}

func TestIssuerTimeoutAnswers91(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	h.issuers["card-a"].SetMode(issuer.Silent)
	term := h.terminal()
	start := time.Now()
	res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResponseCode != "91" {
		t.Fatalf("DE 39 = %s, want 91", res.ResponseCode)
	}
	// A functional bound, not a benchmark: the answer must come from the
	// route timeout, not from the terminal's own 5 s timeout.
	if el := time.Since(start); el > routeTime+2*time.Second {
		t.Errorf("91 after %v, route timeout is %v", el, routeTime)
	}
	// Other issuers are unaffected.
	res, err = term.Purchase(context.Background(), terminal.Purchase{PAN: cardB, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("card-b: %v %v", res, err)
	}
}

func TestIssuerDownAtStartThenRecovers(t *testing.T) {
	// An address, not a listener: nothing may accept there until the
	// issuer starts (a bound listener would complete the switch's dials).
	addr := freeAddr(t)
	h := newHarness(t, addr)
	term := h.terminal()
	res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResponseCode != "91" {
		t.Fatalf("issuer down: DE 39 = %s, want 91", res.ResponseCode)
	}
	is := startIssuer(t, "card-a", addr, "9410")
	waitFor(t, 10*time.Second, "card-a link after the issuer came up", func() bool { return h.linksUp("card-a") })
	res, err = term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("after recovery: %v %v", res, err)
	}
	if is.SignOns() < 1 {
		t.Error("the switch did not sign on to the issuer")
	}
}

// rawConn is a terminal connection without a matching client: it writes
// frames and reads whatever comes back, in any order.
type rawConn struct {
	net.Conn
	codec *frame.Codec
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{Conn: c, codec: &frame.Codec{Header: frame.Binary2, Spec: specs.MustLoad(specs.TerminalDialect)}}
}

func (r *rawConn) read(t *testing.T, d time.Duration) (*iso8583.Message, error) {
	_ = r.SetReadDeadline(time.Now().Add(d))
	return r.codec.ReadMessage(r.Conn)
}

func purchaseMsg(t *testing.T, pan, stan string, amount int64) *iso8583.Message {
	t.Helper()
	m, err := terminal.NewPurchaseMessage(specs.MustLoad(specs.TerminalDialect), terminal.Purchase{PAN: pan, Amount: amount}, stan, time.Now(), terminal.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCollidingSTANsOnOneConnection sends 1,200 requests from 1,200
// terminals that all carry the same STAN on one (VAN) connection, all in flight together (the issuer
// holds each for 300 ms), and checks that every answer matches its request.
func TestCollidingSTANsOnOneConnection(t *testing.T) {
	// A generous route timeout: this test is about matching, and the race
	// detector on two shared cores slows 1,200 round trips a lot.
	h := newHarness(t, "", func(c *config.Config) { setRouteTimeouts(c, 20*time.Second) })
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	h.issuers["card-a"].SetLatency(300 * time.Millisecond)
	const n = 1200
	rc := dialRaw(t, h.addr)
	go func() {
		var buf []byte
		for i := 1; i <= n; i++ {
			// Many terminals behind one VAN link, all using STAN 000777.
			m := withField(t, purchaseMsg(t, cardA, "000777", int64(i)), specs.TerminalID, fmt.Sprintf("T%07d", i))
			b, err := rc.codec.Pack(m)
			if err != nil {
				t.Error(err)
				return
			}
			buf = append(buf, b...)
		}
		if _, err := rc.Write(buf); err != nil {
			t.Error(err)
		}
	}()
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := rc.read(t, 10*time.Second)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		amount, _ := m.GetString(specs.Amount)
		stan, _ := m.GetString(specs.STAN)
		code, _ := m.GetString(specs.ResponseCode)
		if stan != "000777" || code != "00" || seen[amount] {
			t.Fatalf("answer for amount %s: STAN %s DE 39 %s (seen before: %v)", amount, stan, code, seen[amount])
		}
		seen[amount] = true
	}
	// Every sale reached the issuer under its own switch STAN.
	stans := map[string]bool{}
	for _, r := range h.issuers["card-a"].Received() {
		if r.MTI == "0200" {
			stans[r.STAN] = true
		}
	}
	if len(stans) != n {
		t.Errorf("issuer saw %d distinct STANs for %d sales", len(stans), n)
	}
	if got := h.issuers["card-a"].Balance(cardA); got != 1_000_000-n*(n+1)/2 {
		t.Errorf("balance %d", got)
	}
}

func withField(t *testing.T, m *iso8583.Message, id int, v string) *iso8583.Message {
	if err := m.Field(id, v); err != nil {
		t.Fatal(err)
	}
	return m
}

// setRouteTimeouts gives every route of c issuer timeout d (the harness's
// default, routeTime, is short so that time-out tests run fast).
func setRouteTimeouts(c *config.Config, d time.Duration) {
	for i := range c.Routes {
		c.Routes[i].Timeout = d
	}
}

func frameOf(t *testing.T, m *iso8583.Message) []byte {
	b, err := (&frame.Codec{Header: frame.Binary2}).Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestNoPANInLogsOrMetrics runs approvals, declines, bad input, token
// provisioning and token and PIN payments with debug logging, and checks
// that no full card number (nor a PIN) reaches a log line, /metrics or a
// provisioning API answer.
func TestNoPANInLogsOrMetrics(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	ctx := context.Background()
	for _, p := range []terminal.Purchase{{PAN: cardA, Amount: 100}, {PAN: cardA2, Amount: 5_000_000}, {PAN: foreign, Amount: 1},
		{PAN: cardA, Amount: 100, PIN: "1234"}, {PAN: cardA, Amount: 100, PIN: "9876"}} {
		if _, err := term.Purchase(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, h.addr)
	_, _ = rc.Write(frameOf(t, withField(t, purchaseMsg(t, cardA, "000003", 10), specs.Amount, "0000000012AB")))
	_, _ = rc.read(t, 2*time.Second)

	var all strings.Builder
	api := h.tokenAPI()
	for _, kind := range []store.TokenKind{store.DeviceToken, store.OneTimeToken} {
		tok, err := api.Issue(ctx, cardA, "3012", tokenapi.IssueOptions{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		shown, err := api.Get(ctx, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&all, "%+v %+v\n", tok, shown)
		for i := 0; i < 2; i++ {
			if _, err := term.Purchase(ctx, terminal.Purchase{PAN: tok.Token, PINPAN: cardA, PIN: "1234", Amount: 100}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := api.Issue(ctx, "9410000000000006", "3012", tokenapi.IssueOptions{Kind: store.DeviceToken}); err != nil {
		all.WriteString(err.Error())
	}

	resp, err := http.Get("http://" + h.sw.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `payswitch_requests_total{listener="terminal",mti="0200",rc="00",route="card-a"}`) {
		t.Errorf("requests_total for the approval missing from /metrics:\n%s", grepLines(string(metrics), "payswitch_requests_total"))
	}
	all.Write(metrics)
	for _, e := range h.logs.All() {
		all.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			all.WriteString(" " + k + "=")
			all.WriteString(strings.ReplaceAll(strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")), " ", ""))
		}
		all.WriteString("\n")
	}
	for _, p := range []string{cardA, cardA2, foreign, "9410000000000006"} {
		if strings.Contains(all.String(), p) {
			t.Errorf("full PAN %s…%s found in logs, metrics or API answers", p[:6], p[12:])
		}
	}
	if strings.Contains(all.String(), "041234") {
		t.Error("a clear PIN block pattern appears in the output")
	}
	if h.logs.Len() == 0 {
		t.Fatal("no logs captured: the check above proves nothing")
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return strings.TrimSpace(strings.Trim(strings.ReplaceAll(fmtAny(v), "\t", ""), "\n"))
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReloadRoutes moves a BIN prefix from one issuer to another at run
// time, and refuses a reload that would move the journal.
func TestReloadRoutes(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	term := h.terminal()
	moved := "9410550000000009" // Luhn-valid, under 9410
	if res, _ := term.Purchase(context.Background(), terminal.Purchase{PAN: moved, Amount: 100}); res.ResponseCode != "00" {
		t.Fatalf("before: %s", res.ResponseCode)
	}
	cfg := h.cfg
	cfg.Routes = append([]config.IssuerRoute(nil), h.cfg.Routes...)
	cfg.Routes[1].BINs = []string{"9420", "941055"} // card-b now owns 941055
	if err := h.sw.ReloadRoutes(cfg); err != nil {
		t.Fatal(err)
	}
	// card-b owns only 9420 on its side: a 941055 card is not its account.
	if res, _ := term.Purchase(context.Background(), terminal.Purchase{PAN: moved, Amount: 100}); res.ResponseCode != "14" {
		t.Fatalf("after the reload the card should reach card-b (which answers 14 for a foreign BIN), got %s", res.ResponseCode)
	}
	bad := cfg
	bad.Journal.Path += ".elsewhere"
	if err := h.sw.ReloadRoutes(bad); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("moving the journal by reload: %v", err)
	}
}
