package issuer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// fixedNow is the issuer's clock in tests: November 2025.
var fixedNow = time.Date(2025, time.November, 15, 10, 0, 0, 0, time.UTC)

// card returns a Luhn-valid 16-digit PAN starting with prefix.
func card(prefix string) string {
	p := prefix + strings.Repeat("0", 15-len(prefix))
	return p + string(pan.CheckDigit(p))
}

// badLuhn returns c with its check digit changed.
func badLuhn(c string) string {
	last := c[len(c)-1]
	return c[:len(c)-1] + string('0'+(last-'0'+1)%10)
}

// newIssuer starts an issuer owning BIN 9410 on a free loopback port.
func newIssuer(t testing.TB, log *zap.Logger, mutate func(*Config)) *Issuer {
	t.Helper()
	cfg := Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}}
	if mutate != nil {
		mutate(&cfg)
	}
	if log == nil {
		log = zap.NewNop()
	}
	is, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	is.now = func() time.Time { return fixedNow }
	if err := is.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := is.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return is
}

// dial connects a switch-side client in the issuer dialect.
func dial(t testing.TB, is *Issuer) *connection.Connection {
	t.Helper()
	return dialAddr(t, is.Addr())
}

// dialAddr connects a switch-side client to one endpoint of an issuer.
func dialAddr(t testing.TB, addr string) *connection.Connection {
	t.Helper()
	spec := specs.MustLoad(specs.IssuerDialect)
	codec := &frame.Codec{Header: frame.ASCII4, Spec: spec}
	c, err := connection.New(addr, spec, nil, nil,
		connection.SetMessageReader(codec), connection.SetMessageWriter(codec),
		connection.SendTimeout(5*time.Second), connection.SetRequestIDGenerator(numericSTAN{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var stanSeq atomic.Int64

// nextSTAN returns a fresh six-digit STAN.
func nextSTAN() string { return fmt.Sprintf("%06d", stanSeq.Add(1)%999_999+1) }

// numericSTAN matches responses by the numeric value of DE 11, whether or
// not the spec strips leading zeros on unpack.
type numericSTAN struct{}

func (numericSTAN) GenerateRequestID(m *iso8583.Message) (string, error) {
	s, err := m.GetString(specs.STAN)
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return "", fmt.Errorf("STAN %q: %w", s, err)
	}
	return strconv.Itoa(n), nil
}

// request builds a message with the given fields (DE 11 added when absent).
func request(t testing.TB, mti string, fields map[int]string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.MustLoad(specs.IssuerDialect))
	m.MTI(mti)
	if _, ok := fields[specs.STAN]; !ok {
		fields[specs.STAN] = nextSTAN()
	}
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("DE %d: %v", id, err)
		}
	}
	return m
}

// purchase builds a purchase (0200) or authorisation (0100) request; an
// empty amount or expiry leaves the field out. Numeric fields are set at
// full width.
func purchase(t testing.TB, mti, card, amount, expiry string) *iso8583.Message {
	f := map[int]string{
		specs.PAN: card, specs.ProcessingCode: "000000", specs.TransmissionDateTime: "1115100000",
		specs.LocalTime: "100000", specs.LocalDate: "1115", specs.RRN: "531910000001",
		specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT000001", specs.Currency: "410",
	}
	if amount != "" {
		f[specs.Amount] = leftPad(amount, 12)
	}
	if expiry != "" {
		f[specs.Expiry] = expiry
	}
	return request(t, mti, f)
}

func netMgmt(t testing.TB, code string) *iso8583.Message {
	return request(t, specs.MTINetworkMgmt, map[int]string{specs.TransmissionDateTime: "1115100000", specs.NetworkMgmtCode: code})
}

func get(m *iso8583.Message, id int) string {
	f := m.GetField(id)
	if f == nil {
		return ""
	}
	return wireValue(f)
}

func send(t testing.TB, c *connection.Connection, req *iso8583.Message) *iso8583.Message {
	t.Helper()
	resp, err := c.Send(req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return resp
}

func TestNetworkManagement(t *testing.T) {
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	tests := []struct {
		code, wantRC string
	}{
		{specs.NetMgmtSignOn, "00"},
		{specs.NetMgmtEcho, "00"},
		{specs.NetMgmtSignOff, "00"},
		{specs.NetMgmtKeyChange, "12"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			req := netMgmt(t, tt.code)
			resp := send(t, c, req)
			if mti, _ := resp.GetMTI(); mti != specs.MTINetworkMgmtRsp {
				t.Errorf("MTI %s, want 0810", mti)
			}
			for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.NetworkMgmtCode} {
				if get(resp, id) != get(req, id) {
					t.Errorf("DE %d = %q, want %q", id, get(resp, id), get(req, id))
				}
			}
			if rc := get(resp, specs.ResponseCode); rc != tt.wantRC {
				t.Errorf("DE 39 = %q, want %q", rc, tt.wantRC)
			}
		})
	}
	if n := is.SignOns(); n != 1 {
		t.Errorf("SignOns = %d, want 1", n)
	}
}

func TestAuthorisationDecisions(t *testing.T) {
	cardA, poor := card("9410"), card("94100001")
	is := newIssuer(t, nil, func(c *Config) { c.Balances = map[string]int64{poor: 10_000} })
	c := dial(t, is)

	withPC := func(pc string) *iso8583.Message {
		m := purchase(t, "0200", cardA, "1000", "")
		m.Field(specs.ProcessingCode, pc)
		return m
	}
	without := func(m *iso8583.Message, id int) *iso8583.Message { m.UnsetField(id); return m }
	tests := []struct {
		name   string
		req    *iso8583.Message
		wantRC string
		debit  int64 // expected reduction of cardA's balance
	}{
		{"purchase approved", purchase(t, "0200", cardA, "15000", "2812"), "00", 15_000},
		{"authorisation approved", purchase(t, "0100", cardA, "5000", ""), "00", 5_000},
		{"expiry this month", purchase(t, "0200", cardA, "1", "2511"), "00", 1},
		{"insufficient funds", purchase(t, "0200", poor, "10001", ""), "51", 0},
		{"expired card", purchase(t, "0200", cardA, "1000", "2510"), "54", 0},
		{"expiry not YYMM", purchase(t, "0200", cardA, "1000", "2513"), "54", 0},
		{"Luhn failure", purchase(t, "0200", badLuhn(cardA), "1000", ""), "14", 0},
		{"foreign BIN", purchase(t, "0200", card("9420"), "1000", ""), "14", 0},
		{"no PAN", without(purchase(t, "0200", cardA, "1000", ""), specs.PAN), "14", 0},
		{"amount missing", purchase(t, "0200", cardA, "", ""), "13", 0},
		{"amount zero", purchase(t, "0200", cardA, "0", ""), "13", 0},
		{"amount not numeric", purchase(t, "0200", cardA, "12AB", ""), "13", 0},
		{"refund credits", withPC("200000"), "00", -1_000},
		{"refund to an expired card", func() *iso8583.Message {
			m := purchase(t, "0200", cardA, "500", "2001")
			m.Field(specs.ProcessingCode, "200000")
			return m
		}(), "00", -500},
		{"refund as an authorisation", func() *iso8583.Message {
			m := purchase(t, "0100", cardA, "1000", "")
			m.Field(specs.ProcessingCode, "200000")
			return m
		}(), "12", 0},
		{"other processing code", withPC("310000"), "12", 0},
		{"processing code missing", without(purchase(t, "0200", cardA, "1000", ""), specs.ProcessingCode), "12", 0},
		{"reversal without DE 90", purchase(t, "0400", cardA, "1000", ""), "30", 0},
		{"advice not yet supported", purchase(t, "0220", cardA, "1000", ""), "12", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := is.Balance(cardA)
			resp := send(t, c, tt.req)
			reqMTI, _ := tt.req.GetMTI()
			wantMTI, _ := specs.ResponseMTI(reqMTI)
			if mti, _ := resp.GetMTI(); mti != wantMTI {
				t.Errorf("MTI %s, want %s", mti, wantMTI)
			}
			if rc := get(resp, specs.ResponseCode); rc != tt.wantRC {
				t.Errorf("DE 39 = %q, want %q", rc, tt.wantRC)
			}
			approval := get(resp, specs.ApprovalCode)
			if approved := tt.wantRC == "00"; approved != (len(approval) == 6) {
				t.Errorf("DE 38 = %q with DE 39 %s", approval, tt.wantRC)
			}
			for _, id := range echoed {
				if get(resp, id) != get(tt.req, id) {
					t.Errorf("DE %d = %q, want echo %q", id, get(resp, id), get(tt.req, id))
				}
			}
			if got := before - is.Balance(cardA); got != tt.debit {
				t.Errorf("balance reduced by %d, want %d", got, tt.debit)
			}
		})
	}
	if got, want := is.Balance(cardA), DefaultOpenToBuy-20_001+1_500; got != want {
		t.Errorf("Balance = %d, want %d", got, want)
	}
	if got := is.Balance(poor); got != 10_000 {
		t.Errorf("override balance = %d, want 10000", got)
	}
	if l := is.Ledger(); len(l) != 2 || l[cardA] != DefaultOpenToBuy-20_001+1_500 {
		t.Errorf("Ledger = %v", l)
	}
}

func TestReceivedRecordsWireValues(t *testing.T) {
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	req := purchase(t, "0200", card("9410"), "15000", "")
	req.Field(specs.STAN, "000123")
	req.BinaryField(specs.PINBlock, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef})
	send(t, c, req)
	got := is.Received()
	if len(got) != 1 {
		t.Fatalf("received %d requests, want 1", len(got))
	}
	r := got[0]
	want := map[int]string{specs.ProcessingCode: "000000", specs.Amount: "000000015000", specs.STAN: "000123",
		specs.PAN: card("9410"), specs.MerchantID: "MERCHANT000001", specs.PINBlock: "0123456789ABCDEF"}
	for id, v := range want {
		if r.Fields[id] != v {
			t.Errorf("Fields[%d] = %q, want %q", id, r.Fields[id], v)
		}
	}
	if r.MTI != "0200" || r.STAN != "000123" {
		t.Errorf("MTI %q STAN %q", r.MTI, r.STAN)
	}
	r.Fields[specs.PAN] = "changed"
	if is.Received()[0].Fields[specs.PAN] == "changed" {
		t.Error("Received does not return a copy")
	}
	is.ClearReceived()
	if len(is.Received()) != 0 {
		t.Error("ClearReceived left entries")
	}
}

// Many requests in flight on one link: every response carries its own
// STAN, and the ledger approves exactly what the balance covers.
func TestConcurrentRequestsOneConnection(t *testing.T) {
	const n, amount, balance = 200, 1_000, 100_000
	shared := card("94109")
	is := newIssuer(t, nil, func(c *Config) { c.Balances = map[string]int64{shared: balance} })
	c := dial(t, is)

	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	approvals := map[string]bool{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := purchase(t, "0200", shared, strconv.Itoa(amount), "")
			resp, err := c.Send(req)
			if err != nil {
				t.Errorf("send: %v", err)
				return
			}
			if got, want := get(resp, specs.STAN), get(req, specs.STAN); got != want {
				t.Errorf("response STAN %s for request STAN %s", got, want)
			}
			rc := get(resp, specs.ResponseCode)
			mu.Lock()
			defer mu.Unlock()
			counts[rc]++
			if code := get(resp, specs.ApprovalCode); rc == "00" {
				if approvals[code] {
					t.Errorf("approval code %s issued twice", code)
				}
				approvals[code] = true
			}
		}()
	}
	wg.Wait()
	if counts["00"] != balance/amount || counts["51"] != n-balance/amount {
		t.Errorf("response codes %v, want %d x 00 and %d x 51", counts, balance/amount, n-balance/amount)
	}
	if b := is.Balance(shared); b != 0 {
		t.Errorf("balance %d, want 0", b)
	}
	if got := len(is.Received()); got != n {
		t.Errorf("received %d, want %d", got, n)
	}
}

func TestSilentModeStillAnswersEcho(t *testing.T) {
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	is.SetMode(Silent)
	cardA := card("9410")
	_, err := c.Send(purchase(t, "0200", cardA, "1000", ""), connection.SendTimeout(300*time.Millisecond))
	if !errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("silent issuer: err %v, want send timeout", err)
	}
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
		t.Errorf("echo DE 39 = %q", rc)
	}
	if got := is.Received(); len(got) != 2 || got[0].MTI != "0200" {
		t.Errorf("received %+v, want the unanswered 0200 then the 0800", got)
	}
	if is.Balance(cardA) != DefaultOpenToBuy {
		t.Error("silent issuer changed the balance")
	}
	is.SetMode(Normal)
	if rc := get(send(t, c, purchase(t, "0200", cardA, "1000", "")), specs.ResponseCode); rc != "00" {
		t.Errorf("after silence DE 39 = %q", rc)
	}
}

func TestLatencyDelaysFinancialResponses(t *testing.T) {
	const latency = 300 * time.Millisecond
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	is.SetLatency(latency)
	start := time.Now()
	send(t, c, purchase(t, "0200", card("9410"), "1000", ""))
	if d := time.Since(start); d < latency {
		t.Errorf("purchase answered after %s, want >= %s", d, latency)
	}
	start = time.Now()
	send(t, c, netMgmt(t, specs.NetMgmtEcho))
	if d := time.Since(start); d >= latency {
		t.Errorf("echo answered after %s: network management must not be delayed", d)
	}
}

func TestUndecodableFrameClosesOnlyThatConnection(t *testing.T) {
	is := newIssuer(t, nil, nil)
	good := dial(t, is)
	send(t, good, netMgmt(t, specs.NetMgmtSignOn))
	tests := []struct{ name, frame string }{
		{"bad bitmap", "00120200ZZZZZZZZ"},
		{"bad length header", "ABCD0800"},
		{"zero length", "0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", is.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := io.WriteString(raw, tt.frame); err != nil {
				t.Fatal(err)
			}
			raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := raw.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
				t.Errorf("read %d bytes, err %v; want the issuer to close the connection", n, err)
			}
		})
	}
	if rc := get(send(t, good, netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
		t.Errorf("other connection: echo DE 39 = %q", rc)
	}
	testnet.Eventually(t, 5*time.Second, "only the good connection left", func() bool { return is.Connections() == 1 })
}

func TestCloseEndsAllGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	is := newIssuer(t, nil, nil)
	c := dial(t, is)
	send(t, c, netMgmt(t, specs.NetMgmtSignOn))
	for i := 0; i < 20; i++ {
		send(t, c, purchase(t, "0200", card("9410"), "100", ""))
	}
	// One request waits out a long latency when the issuer closes.
	is.SetLatency(time.Hour)
	pending := make(chan error, 1)
	go func() {
		_, err := c.Send(purchase(t, "0200", card("9410"), "100", ""))
		pending <- err
	}()
	testnet.Eventually(t, 5*time.Second, "the pending request to arrive", func() bool { return len(is.Received()) == 22 })

	start := time.Now()
	if err := is.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	if err := <-pending; err == nil {
		t.Error("request pending at Close was answered")
	}
	c.Close()
	if _, err := net.Dial("tcp", is.Addr()); err == nil {
		t.Error("listener still accepts after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf.String())
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
	if err := is.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartBindsEphemeralPortAndRefusesRestart(t *testing.T) {
	is := newIssuer(t, zaptest.NewLogger(t), nil)
	if strings.HasSuffix(is.Addr(), ":0") {
		t.Errorf("Addr %s is not the bound address", is.Addr())
	}
	if err := is.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	is.Close()
	if err := is.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestLogsNeverCarryFullPAN(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	is := newIssuer(t, zap.New(core), nil)
	c := dial(t, is)
	cardA := card("9410")
	send(t, c, netMgmt(t, specs.NetMgmtSignOn))
	send(t, c, purchase(t, "0200", cardA, "1000", ""))
	send(t, c, purchase(t, "0200", badLuhn(cardA), "1000", ""))
	is.Close()
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, cardA) || strings.Contains(line, badLuhn(cardA)) {
			t.Errorf("log line carries a full PAN: %s", line)
		}
	}
	if logs.FilterField(zap.String("pan", pan.Mask(cardA))).Len() == 0 {
		t.Error("no log line with the masked PAN")
	}
}
