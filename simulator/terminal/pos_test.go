package terminal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
)

// posSwitch is a scripted switch on loopback: decide returns the DE 39 to
// answer with, "" to swallow the request, or hangUp to close the link
// without answering. It records every request and answers on the same
// connection after delay.
type posSwitch struct {
	addr   string
	spec   *iso8583.MessageSpec
	decide func(req *iso8583.Message, nth int) string
	delay  time.Duration

	mu       sync.Mutex
	received []*iso8583.Message
}

// hangUp is what decide returns for a request the switch does not answer
// but drops the link on: the POS sees the request unanswered at once
// instead of after its timeout.
const hangUp = "hang up"

// longTimeout is the POS's timeout where an answer is expected: long
// enough that a loaded CI machine always answers in time. Only requests
// that are never answered get short timeouts.
const longTimeout = 10 * time.Second

func startPOSSwitch(t *testing.T, decide func(req *iso8583.Message, nth int) string) *posSwitch {
	t.Helper()
	ps := &posSwitch{spec: specs.MustLoad(specs.TerminalDialect), decide: decide}
	ps.addr = isotest.Serve(t, ps.spec, ps.handle)
	return ps
}

func (ps *posSwitch) handle(c *connection.Connection, req *iso8583.Message) {
	ps.mu.Lock()
	ps.received = append(ps.received, req)
	nth := 0
	mti, _ := req.GetMTI()
	for _, r := range ps.received {
		if m, _ := r.GetMTI(); m == mti {
			nth++
		}
	}
	ps.mu.Unlock()
	rc := ps.decide(req, nth)
	if rc == "" {
		return
	}
	if rc == hangUp {
		go func() { _ = c.Close() }() // not from the handler: Close waits for it
		return
	}
	respMTI, _ := specs.ResponseMTI(mti)
	resp := iso8583.NewMessage(ps.spec)
	resp.MTI(respMTI)
	for _, id := range []int{2, 3, 4, 7, 11, 41, 42, 49, 90, 95} {
		if req.GetField(id) != nil {
			v, _ := req.GetString(id)
			_ = resp.Field(id, v)
		}
	}
	stan := NormalizeSTAN(get(req, specs.STAN))
	_ = resp.Field(specs.RRN, "000000"+stan)
	_ = resp.Field(specs.ResponseCode, rc)
	if rc == "00" {
		_ = resp.Field(specs.ApprovalCode, "A"+stan[1:])
	}
	go func() {
		time.Sleep(ps.delay)
		_ = c.Reply(resp)
	}()
}

func (ps *posSwitch) requests() []*iso8583.Message {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]*iso8583.Message(nil), ps.received...)
}

func (ps *posSwitch) waitRequests(t *testing.T, n int) []*iso8583.Message {
	t.Helper()
	var r []*iso8583.Message
	testnet.EventuallyOK(t, 10*time.Second, fmt.Sprintf("%d requests at the switch", n), func() error {
		if r = ps.requests(); len(r) < n {
			return fmt.Errorf("switch received %d requests, want %d", len(r), n)
		}
		return nil
	})
	return r
}

func newTestPOS(t *testing.T, addr string, po POSOptions) *POS {
	t.Helper()
	opts := DefaultOptions()
	opts.Addr = addr
	p, err := NewPOS(opts, po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func purchase(t *testing.T, p *POS, amount int64) *iso8583.Message {
	t.Helper()
	m, err := NewPurchaseMessage(p.Spec(), Purchase{PAN: testPAN, Amount: amount}, p.NextSTAN(), time.Now(), p.opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get(m *iso8583.Message, id int) string {
	v, _ := m.GetString(id)
	return v
}

// TestPOSNetCancelOnTimeout: the switch swallows the sale; after its own
// timeout the POS sends a 0400 whose DE 90 names the sale (MTI, STAN, DE 7
// and zero institution IDs) with the sale's card, amount and terminal.
func TestPOSNetCancelOnTimeout(t *testing.T) {
	ps := startPOSSwitch(t, func(req *iso8583.Message, _ int) string {
		if mti, _ := req.GetMTI(); mti == "0200" {
			return "" // answer withheld
		}
		return "00"
	})
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: longTimeout})
	sale := purchase(t, p, 15000)
	start := time.Now()
	ex, err := p.Send(context.Background(), sale, SendOptions{Timeout: 200 * time.Millisecond}) // never answered
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("error %v, want ErrNoResponse", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("gave up after %s, before its timeout", waited)
	}
	if ex == nil || ex.Response != nil || ex.NetCancel == nil {
		t.Fatalf("exchange %+v: want no response and a net cancel", ex)
	}
	if rc := ex.NetCancel.RC(); rc != "00" {
		t.Fatalf("net cancel answered %q", rc)
	}
	reqs := ps.waitRequests(t, 2)
	rev := reqs[1]
	if mti, _ := rev.GetMTI(); mti != "0400" {
		t.Fatalf("second request MTI %s, want 0400", mti)
	}
	wantDE90 := "0200" + get(sale, 11) + get(sale, 7) + strings.Repeat("0", 22)
	if got := get(rev, 90); got != wantDE90 {
		t.Fatalf("DE 90 %q, want %q", got, wantDE90)
	}
	for _, id := range []int{2, 3, 4, 41, 42, 49} {
		if get(rev, id) != get(sale, id) {
			t.Errorf("DE %d %q, want the sale's %q", id, get(rev, id), get(sale, id))
		}
	}
	if get(rev, 11) == get(sale, 11) || rev.GetField(52) != nil {
		t.Error("the net cancel must have its own STAN and no PIN block")
	}
	if b := p.Batch(); b != (BatchTotals{}) {
		t.Fatalf("an unanswered sale and its net cancel changed the batch: %+v", b)
	}
}

// TestPOSNetCancelRepeats: an unanswered net cancel is repeated unchanged.
// No timer races an answer: the switch drops the link on the sale and on
// the first net cancel without answering, and the repeat, on a new link,
// is answered well within the POS's long timeout. (It hangs up rather
// than withholding the sale: a link dropped while a timed-out request may
// still be pending can leave iso8583-connection v0.9.0 holding the next
// request until its full timeout.)
func TestPOSNetCancelRepeats(t *testing.T) {
	ps := startPOSSwitch(t, func(req *iso8583.Message, nth int) string {
		if mti, _ := req.GetMTI(); mti == "0200" || nth == 1 {
			return hangUp
		}
		return "00"
	})
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: longTimeout})
	ex, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{})
	if !errors.Is(err, ErrNoResponse) || ex.NetCancel == nil {
		t.Fatalf("%v %+v", err, ex)
	}
	if ex.NetCancel.Attempts != 2 || ex.NetCancel.RC() != "00" {
		t.Fatalf("net cancel attempts %d rc %q, want 2 and 00", ex.NetCancel.Attempts, ex.NetCancel.RC())
	}
	reqs := ps.waitRequests(t, 3)
	if get(reqs[1], 11) != get(reqs[2], 11) || get(reqs[1], 7) != get(reqs[2], 7) {
		t.Fatal("a repeated net cancel must be the same message (same STAN and DE 7)")
	}
}

// TestPOSNoNetCancelForAnsweredOrOtherMTIs: a declined answer is an
// answer; an unanswered 0500 is not reversed.
func TestPOSNoNetCancelForAnsweredOrOtherMTIs(t *testing.T) {
	ps := startPOSSwitch(t, func(req *iso8583.Message, _ int) string {
		if mti, _ := req.GetMTI(); mti == "0500" {
			return ""
		}
		return "51"
	})
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: longTimeout})
	ex, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{})
	if err != nil || ex.RC() != "51" || ex.NetCancel != nil {
		t.Fatalf("declined sale: %v %+v", err, ex)
	}
	m := iso8583.NewMessage(p.Spec())
	m.MTI("0500")
	ex, err = p.Send(context.Background(), m, SendOptions{Timeout: 150 * time.Millisecond}) // never answered
	if !errors.Is(err, ErrNoResponse) || ex.NetCancel != nil {
		t.Fatalf("0500: %v %+v", err, ex)
	}
	if n := len(ps.waitRequests(t, 2)); n != 2 {
		t.Fatalf("%d requests", n)
	}
	// The POS filled in STAN, DE 7 and the terminal ID.
	if get(m, 11) == "" || get(m, 7) == "" || get(m, 41) != DefaultTerminalID {
		t.Fatalf("0500 not completed: 11=%q 7=%q 41=%q", get(m, 11), get(m, 7), get(m, 41))
	}
}

// TestPOSOneOutstandingRequest: while a request waits for its answer, a
// second one is refused at once and never reaches the switch.
func TestPOSOneOutstandingRequest(t *testing.T) {
	ps := startPOSSwitch(t, func(*iso8583.Message, int) string { return "00" })
	ps.delay = 300 * time.Millisecond
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: 2 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{})
		done <- err
	}()
	ps.waitRequests(t, 1)
	start := time.Now()
	if _, err := p.Send(context.Background(), purchase(t, p, 200), SendOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request while one is outstanding: %v, want ErrBusy", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("ErrBusy must come at once")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(ps.requests()); n != 1 {
		t.Fatalf("switch saw %d requests, want 1", n)
	}
	if _, err := p.Send(context.Background(), purchase(t, p, 300), SendOptions{}); err != nil {
		t.Fatalf("after the answer the terminal is free again: %v", err)
	}
}

// TestPOSMAC: a keyed POS signs with the retail MAC over the packed message
// up to the MAC (DE 64, or DE 128 with a secondary bitmap); wrong and none
// modes send what negative tests need.
func TestPOSMAC(t *testing.T) {
	ps := startPOSSwitch(t, func(*iso8583.Message, int) string { return "00" })
	key := devkeys.Bytes(devkeys.MACHex)
	p := newTestPOS(t, ps.addr, POSOptions{MACKey: key, Timeout: time.Second})
	verify := func(m *iso8583.Message, id int) bool {
		packed, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := paycrypto.RetailMAC(key, packed[:len(packed)-8])
		got, _ := m.GetBytes(id)
		return bytes.Equal(got, want)
	}
	sale := purchase(t, p, 1000)
	saleEx, err := p.Send(context.Background(), sale, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wrong := purchase(t, p, 1000)
	if _, err := p.Send(context.Background(), wrong, SendOptions{MAC: MACWrong}); err != nil {
		t.Fatal(err)
	}
	none := purchase(t, p, 1000)
	if _, err := p.Send(context.Background(), none, SendOptions{MAC: MACNone}); err != nil {
		t.Fatal(err)
	}
	rev, err := NewReversalMessage(sale, saleEx.Response, p.NextSTAN(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), rev, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	reqs := ps.waitRequests(t, 4)
	if !verify(reqs[0], specs.MAC) {
		t.Error("the MAC of a signed request does not verify")
	}
	if reqs[1].GetField(specs.MAC) == nil || verify(reqs[1], specs.MAC) {
		t.Error("a wrong MAC must be present and wrong")
	}
	if reqs[2].GetField(specs.MAC) != nil {
		t.Error("mac none still sent DE 64")
	}
	if reqs[3].GetField(specs.MAC) != nil || !verify(reqs[3], specs.MAC2) {
		t.Error("a message with a secondary bitmap carries its MAC in DE 128")
	}
	if get(reqs[3], 37) != get(saleEx.Response, 37) || get(reqs[3], 38) != get(saleEx.Response, 38) {
		t.Error("a merchant cancel repeats the sale's RRN and approval code")
	}
	if _, err := NewPOS(DefaultOptions(), POSOptions{MACKey: []byte("short")}); !errors.Is(err, ErrConfig) {
		t.Errorf("short MAC key: %v", err)
	}
}

// TestPOSBatch: the terminal's totals follow its approved sales, cancels
// (full and partial, counted once) and refunds; an agreed 0500 closes them.
func TestPOSBatch(t *testing.T) {
	ps := startPOSSwitch(t, func(req *iso8583.Message, _ int) string {
		if get(req, 4) == "000000007777" {
			return "51"
		}
		return "00"
	})
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: time.Second})
	ctx := context.Background()
	send := func(m *iso8583.Message) *Exchange {
		t.Helper()
		ex, err := p.Send(ctx, m, SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	s1 := purchase(t, p, 10000)
	r1 := send(s1)
	send(purchase(t, p, 2000))
	send(purchase(t, p, 7777)) // declined: not in the batch
	partial, _ := NewReversalMessage(s1, r1.Response, p.NextSTAN(), time.Now())
	_ = partial.Field(specs.ReplacementAmounts, ReplacementAmount(6000))
	send(partial)
	send(partial) // an exact repeat is not counted twice
	refund := purchase(t, p, 1000)
	_ = refund.Field(specs.ProcessingCode, "200000")
	_ = refund.Field(specs.RRN, get(r1.Response, 37))
	_ = refund.Field(specs.ApprovalCode, get(r1.Response, 38))
	send(refund)
	full, _ := NewReversalMessage(s1, r1.Response, p.NextSTAN(), time.Now())
	send(full) // takes what remains: 10000 - 4000 - 1000
	want := BatchTotals{Sales: 2, SalesAmount: 12000, Cancels: 2, CancelsAmount: 4000 + 5000, Refunds: 1, RefundsAmount: 1000}
	if b := p.Batch(); b != want {
		t.Fatalf("batch %+v, want %+v", b, want)
	}
	f := want.Fields()
	if f[DEDebits] != "0000000002" || f[DEDebitsAmount] != "0000000000012000" || f[DECredits] != "0000000001" {
		t.Fatalf("fields %v", f)
	}
	m := iso8583.NewMessage(p.Spec())
	m.MTI("0500")
	for id, v := range f {
		_ = m.Field(id, v)
	}
	send(m)
	if b := p.Batch(); b != (BatchTotals{}) {
		t.Fatalf("batch after an agreed 0500: %+v", b)
	}
}

// TestPOSReconnects: after the switch drops the link, the next request
// reconnects.
func TestPOSReconnects(t *testing.T) {
	ps := startPOSSwitch(t, func(*iso8583.Message, int) string { return "00" })
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: time.Second})
	if _, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	_ = c.conn.Close()                                               // the link breaks under the POS
	p.Send(context.Background(), purchase(t, p, 100), SendOptions{}) //nolint:errcheck // fails on the closed link
	if _, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{}); err != nil {
		t.Fatalf("no reconnection: %v", err)
	}
}

// testClock is a clock a test moves by hand (POS.now): the POS's patience
// with 94 answers runs out when the test says, not when a loaded machine
// happens to be slow.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestPOSNetCancelWhileOriginalInFlight: a switch that still waits for the
// original answers the net cancel 94; the POS asks again until it is
// answered otherwise, or until its patience (its timeout, on its clock)
// is spent: then the 94 is the final answer. The POS's clock stands still
// except where the test moves it, and every answer is awaited for
// longTimeout, so the number of attempts does not depend on how fast the
// machine is.
func TestPOSNetCancelWhileOriginalInFlight(t *testing.T) {
	ps := startPOSSwitch(t, func(req *iso8583.Message, nth int) string {
		switch mti, _ := req.GetMTI(); {
		case mti == "0200":
			return ""
		case nth < 3:
			return "94"
		}
		return "00"
	})
	p := newTestPOS(t, ps.addr, POSOptions{Timeout: longTimeout, NetCancelRetryWait: 50 * time.Millisecond})
	p.now = newTestClock().Now // it stands still: the patience never runs out
	// The sale is never answered: the only short timeout.
	ex, err := p.Send(context.Background(), purchase(t, p, 100), SendOptions{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoResponse) || ex.NetCancel == nil {
		t.Fatalf("%v %+v", err, ex)
	}
	if ex.NetCancel.RC() != "00" || ex.NetCancel.Attempts != 3 {
		t.Fatalf("net cancel rc %q after %d attempts, want 00 after 3", ex.NetCancel.RC(), ex.NetCancel.Attempts)
	}
	// With no patience left, a 94 is the final answer: the patience runs
	// out while the POS waits for the answer to its second net cancel.
	clk := newTestClock()
	ps2 := startPOSSwitch(t, func(req *iso8583.Message, nth int) string {
		if mti, _ := req.GetMTI(); mti == "0200" {
			return ""
		}
		if nth == 2 {
			clk.advance(longTimeout)
		}
		return "94"
	})
	p2 := newTestPOS(t, ps2.addr, POSOptions{Timeout: longTimeout, NetCancelRetryWait: 50 * time.Millisecond})
	p2.now = clk.Now
	ex, err = p2.Send(context.Background(), purchase(t, p2, 100), SendOptions{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoResponse) || ex.NetCancel == nil {
		t.Fatalf("%v %+v", err, ex)
	}
	if ex.NetCancel.RC() != "94" || ex.NetCancel.Attempts != 2 {
		t.Fatalf("net cancel rc %q after %d attempts, want 94 after 2", ex.NetCancel.RC(), ex.NetCancel.Attempts)
	}
	cancels := 0
	for _, r := range ps2.waitRequests(t, 3) {
		if mti, _ := r.GetMTI(); mti == "0400" {
			cancels++
		}
	}
	if cancels != 2 {
		t.Fatalf("switch saw %d net cancels, want 2", cancels)
	}
}
