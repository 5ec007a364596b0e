package terminal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap/zaptest"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
)

const testPAN = "9410000000000001"

func dialTest(t *testing.T, addr string, mutate ...func(*Options)) *Client {
	t.Helper()
	opts := DefaultOptions()
	opts.Addr = addr
	opts.Timeout = 2 * time.Second
	opts.Logger = zaptest.NewLogger(t)
	for _, m := range mutate {
		m(&opts)
	}
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestPurchaseResponseCodes(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr)
	tests := []struct {
		amount   int64
		wantRC   string
		wantAuth string
	}{
		{15000, "00", "A1B2C3"},
		{5100, "51", ""},
		{1400, "14", ""},
		{9600, "96", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.amount), func(t *testing.T) {
			res, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: tt.amount})
			if err != nil {
				t.Fatalf("Purchase: %v", err)
			}
			req := fs.lastReceived(t)
			sent, _ := req.GetString(specs.STAN)
			if res.MTI != "0210" || res.ResponseCode != tt.wantRC || res.ApprovalCode != tt.wantAuth || res.RRN != "000000000042" {
				t.Errorf("result %v, want 0210 rc %s auth %q rrn 000000000042", res, tt.wantRC, tt.wantAuth)
			}
			if len(res.STAN) != 6 || res.STAN != NormalizeSTAN(sent) {
				t.Errorf("result STAN %q, request STAN %q", res.STAN, sent)
			}
			if res.Message == nil || res.Latency <= 0 || res.MaskedPAN != "941000******0001" {
				t.Errorf("result %+v lacks message, latency or masked PAN", res)
			}
			if got := res.Approved(); got != (tt.wantRC == "00") {
				t.Errorf("Approved() = %v", got)
			}
		})
	}
}

func TestPurchaseMessageFields(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr, func(o *Options) { o.TerminalID = "TERM0042" })
	c.stan = NewSTANGenerator(123) // 000123 on the wire and after unpack
	before := time.Now().UTC()
	res, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: 15000, Expiry: "2812"})
	if err != nil {
		t.Fatalf("Purchase: %v", err)
	}
	if res.STAN != "000123" {
		t.Errorf("STAN %q, want 000123", res.STAN)
	}
	req := fs.lastReceived(t)
	if mti, _ := req.GetMTI(); mti != "0200" {
		t.Errorf("MTI %q", mti)
	}
	// Fixed numeric fields unpack exactly as sent, at full width.
	want := map[int]string{
		specs.PAN: testPAN, specs.ProcessingCode: "000000", specs.Amount: "000000015000", specs.STAN: "000123",
		specs.Expiry: "2812", specs.POSEntryMode: "051", specs.TerminalID: "TERM0042",
		specs.MerchantID: "MERCHANT0000001", specs.Currency: "410",
	}
	for id, w := range want {
		if req.GetField(id) == nil {
			t.Errorf("DE %d missing", id)
			continue
		}
		if got, _ := req.GetString(id); got != w {
			t.Errorf("DE %d = %q, want %q", id, got, w)
		}
	}
	for id, width := range map[int]int{specs.TransmissionDateTime: 10, specs.LocalTime: 6, specs.LocalDate: 4} {
		if got, _ := req.GetString(id); len(got) != width || !isDigits(got) {
			t.Errorf("DE %d = %q, want %d digits", id, got, width)
		}
	}
	if req.GetField(specs.RRN) != nil {
		t.Error("terminal sent an RRN; the switch assigns DE 37")
	}
	de7, _ := req.GetString(specs.TransmissionDateTime)
	if len(de7) != 10 || (de7[:4] != before.Format("0102") && de7[:4] != time.Now().UTC().Format("0102")) {
		t.Errorf("DE 7 %q is not today's UTC MMDD", de7)
	}
}

func TestNewPurchaseMessage(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	now := time.Date(2025, 11, 25, 1, 2, 3, 0, time.FixedZone("KST", 9*3600))
	msg, err := NewPurchaseMessage(spec, Purchase{PAN: testPAN, Amount: 1000}, "42", now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		specs.ProcessingCode: "000000", specs.Amount: "000000001000", specs.TransmissionDateTime: "1124160203",
		specs.STAN: "000042", specs.LocalTime: "010203", specs.LocalDate: "1125", specs.POSEntryMode: "051",
		specs.TerminalID: "TERM0001", specs.MerchantID: "MERCHANT0000001", specs.Currency: "410",
	}
	for id, w := range want {
		if got, _ := msg.GetString(id); got != w {
			t.Errorf("DE %d = %q, want %q", id, got, w)
		}
	}
	if msg.GetField(specs.Expiry) != nil {
		t.Error("DE 14 set without an expiry")
	}
	packed, err := msg.Pack()
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	// DE 3, 4, 7 and 11 travel at full width, back to back.
	if !strings.Contains(string(packed), "000000"+"000000001000"+"1124160203"+"000042") {
		t.Error("packed message lacks full-width DE 3, 4, 7, 11") // not printed: it holds the PAN
	}
}

func TestPurchaseValidation(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	tests := []struct {
		name string
		p    Purchase
		stan string
		opts Options
	}{
		{"no PAN", Purchase{Amount: 1}, "1", Options{}},
		{"short PAN", Purchase{PAN: "94100000001", Amount: 1}, "1", Options{}},
		{"PAN with letters", Purchase{PAN: "941000000000000X", Amount: 1}, "1", Options{}},
		{"long PAN", Purchase{PAN: testPAN + "0000", Amount: 1}, "1", Options{}},
		{"zero amount", Purchase{PAN: testPAN}, "1", Options{}},
		{"negative amount", Purchase{PAN: testPAN, Amount: -5}, "1", Options{}},
		{"huge amount", Purchase{PAN: testPAN, Amount: MaxAmount + 1}, "1", Options{}},
		{"bad expiry", Purchase{PAN: testPAN, Amount: 1, Expiry: "281"}, "1", Options{}},
		{"expiry month 13", Purchase{PAN: testPAN, Amount: 1, Expiry: "2813"}, "1", Options{}},
		{"bad currency", Purchase{PAN: testPAN, Amount: 1, Currency: "KRW"}, "1", Options{}},
		{"bad entry mode", Purchase{PAN: testPAN, Amount: 1, POSEntryMode: "5"}, "1", Options{}},
		{"zero STAN", Purchase{PAN: testPAN, Amount: 1}, "000000", Options{}},
		{"long STAN", Purchase{PAN: testPAN, Amount: 1}, "1000000", Options{}},
		{"long terminal ID", Purchase{PAN: testPAN, Amount: 1}, "1", Options{TerminalID: "TERMINAL9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPurchaseMessage(spec, tt.p, tt.stan, time.Now(), tt.opts)
			if !errors.Is(err, ErrInvalidPurchase) {
				t.Fatalf("err = %v, want ErrInvalidPurchase", err)
			}
			if tt.p.PAN != "" && strings.Contains(err.Error(), tt.p.PAN) {
				t.Errorf("error %q shows the full PAN", err)
			}
		})
	}
}

func TestConcurrentPurchasesMatchBySTAN(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr)
	c.stan = NewSTANGenerator(MaxSTAN - 10) // cross the wrap
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			amount := int64(10001 + i) // approved, distinct
			if i%3 == 0 {
				amount = 5100
			}
			res, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: amount})
			if err != nil {
				t.Errorf("Purchase %d: %v", i, err)
				return
			}
			amt, _ := res.Message.GetString(specs.Amount)
			if amt != fmt.Sprintf("%012d", amount) {
				t.Errorf("purchase of %d got the response for %s", amount, amt)
			}
		}()
	}
	wg.Wait()
}

func TestSendRaw(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr)
	msg, err := NewPurchaseMessage(c.Spec(), Purchase{PAN: testPAN, Amount: 5400}, c.NextSTAN(), time.Now(), c.Options())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "54" {
		t.Errorf("DE 39 %q, want 54", rc)
	}
}

func TestNoResponse(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	res, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: silentAmount})
	if err == nil {
		t.Fatalf("got %v from a silent switch", res)
	}
	if !strings.Contains(err.Error(), fs.addr) || strings.Contains(err.Error(), testPAN) {
		t.Errorf("error %q should name the switch and not the PAN", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2 := dialTest(t, fs.addr) // 2s timeout: the context ends first
	start := time.Now()
	if _, err := c2.Purchase(ctx, Purchase{PAN: testPAN, Amount: silentAmount}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("context deadline ignored: waited %s", d)
	}
}

func TestDialErrors(t *testing.T) {
	addr := testnet.FreeAddr(t)
	_, err := Dial(context.Background(), Options{Addr: addr, Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), addr) || errors.Is(err, ErrConfig) {
		t.Errorf("dial closed port: %v", err)
	}
	for _, o := range []Options{{Addr: addr, Header: "ascii9"}, {Addr: addr, Spec: "nope87"}, {Addr: addr, MerchantID: strings.Repeat("M", 16)}} {
		if _, err := Dial(context.Background(), o); !errors.Is(err, ErrConfig) {
			t.Errorf("Dial(%+v) = %v, want ErrConfig", o, err)
		}
	}
}

func TestSTANGenerator(t *testing.T) {
	tests := []struct {
		start int
		want  []string
	}{
		{1, []string{"000001", "000002"}},
		{MaxSTAN - 1, []string{"999998", "999999", "000001", "000002"}},
		{MaxSTAN, []string{"999999", "000001"}},
		{0, []string{"000001"}},
		{MaxSTAN + 5, []string{"000005"}},
	}
	for _, tt := range tests {
		g := NewSTANGenerator(tt.start)
		for i, w := range tt.want {
			if got := g.Next(); got != w {
				t.Errorf("start %d: STAN #%d = %s, want %s", tt.start, i, got, w)
			}
		}
	}
	// Two full cycles: never zero, always in range, wraps exactly once per cycle.
	g := NewRandomSTANGenerator()
	prev, wraps := 0, 0
	for range 2 * MaxSTAN {
		n := g.NextInt()
		if n < 1 || n > MaxSTAN {
			t.Fatalf("STAN %d out of 1..%d", n, MaxSTAN)
		}
		if prev != 0 && n != prev+1 {
			if prev != MaxSTAN || n != 1 {
				t.Fatalf("STAN %d followed %d", n, prev)
			}
			wraps++
		}
		prev = n
	}
	if wraps != 2 {
		t.Errorf("wrapped %d times in two cycles", wraps)
	}
}

func TestResultStringMasksPAN(t *testing.T) {
	resp := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	resp.MTI("0210")
	_ = resp.Field(specs.PAN, testPAN)
	_ = resp.Field(specs.ResponseCode, "51")
	_ = resp.Field(specs.STAN, "000077")
	r := newResult(resp, Purchase{PAN: testPAN}.MaskedPAN(), 1500*time.Microsecond)
	s := r.String()
	for _, want := range []string{"0210", "rc=51", "Not sufficient funds", "stan=000077", "941000******0001", "1.5ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if strings.Contains(s, testPAN) || strings.Contains(fmt.Sprintf("%v %+v", r, r), testPAN) {
		t.Errorf("Result shows the full PAN: %q", s)
	}
}
