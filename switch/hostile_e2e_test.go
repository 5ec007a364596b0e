package payswitch_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// outcome of one hostile input.
type outcome struct {
	rc     string // the DE 39 that must come back
	closed bool   // or: the switch closes the connection
	silent bool   // or: no answer, and the connection keeps working
}

type hostileCase struct {
	name  string
	input func(t *testing.T, h *harness) []byte // bytes for a fresh connection
	send  func(t *testing.T, h *harness, rc *rawConn)
	want  outcome
}

func body(t *testing.T, m *iso8583.Message) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func frameBytes(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// purchaseWith builds a valid purchase and applies edits (field id -> value;
// "" unsets).
var hostileSTAN atomic.Int64

func purchaseWith(t *testing.T, edits map[int]string) *iso8583.Message {
	// A fresh STAN each time: the switch answers a repeat from the journal.
	m := purchaseMsg(t, cardA, fmt.Sprintf("%06d", 100000+hostileSTAN.Add(1)), 1000)
	for id, v := range edits {
		if v == "" {
			m.UnsetField(id)
		} else if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// rawField replaces the bytes of a packed message: for values the packer
// would refuse (LL too long, non-digit lengths).
func patch(b []byte, old, new string) []byte {
	return []byte(strings.Replace(string(b), old, new, 1))
}

func hostileCatalogue() []hostileCase {
	fr := func(f func(t *testing.T, h *harness) []byte) func(*testing.T, *harness) []byte { return f }
	msg := func(edits map[int]string) func(*testing.T, *harness) []byte {
		return func(t *testing.T, h *harness) []byte { return frameOf(t, purchaseWith(t, edits)) }
	}
	return []hostileCase{
		{name: "zero length", input: fr(func(*testing.T, *harness) []byte { return []byte{0, 0} }), want: outcome{closed: true}},
		{name: "length above the maximum", input: fr(func(*testing.T, *harness) []byte { return []byte{0xff, 0xff, 1} }), want: outcome{closed: true}},
		{name: "truncated body, then close", input: fr(func(t *testing.T, _ *harness) []byte {
			b := frameOf(t, purchaseWith(t, nil))
			return b[:len(b)/2]
		}), want: outcome{closed: true}},
		{name: "closed mid-frame", send: func(t *testing.T, h *harness, rc *rawConn) {
			b := frameOf(t, purchaseWith(t, nil))
			_, _ = rc.Write(b[:10])
			_ = rc.Conn.(*net.TCPConn).CloseWrite()
		}, want: outcome{closed: true}},
		{name: "one byte per 100 ms (slow sender)", send: func(t *testing.T, h *harness, rc *rawConn) {
			b := frameOf(t, purchaseWith(t, nil))
			for i := 0; i < 25 && i < len(b); i++ {
				if _, err := rc.Write(b[i : i+1]); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, want: outcome{closed: true}},
		{name: "wrong length header type (ASCII on a binary listener)", input: fr(func(t *testing.T, _ *harness) []byte {
			b := body(t, purchaseWith(t, nil))
			return append([]byte("0123"), b...)
		}), want: outcome{closed: true}},
		{name: "no readable MTI", input: fr(func(*testing.T, *harness) []byte { return frameBytes([]byte{0xde, 0xad, 0xbe, 0xef, 1, 2}) }), want: outcome{closed: true}},
		{name: "garbage bitmap", input: fr(func(*testing.T, *harness) []byte {
			return frameBytes([]byte("0200\xff\xff\xff\xff\xff\xff\xff\xff\x01\x02"))
		}), want: outcome{rc: "30"}},
		{name: "secondary bitmap claimed but missing", input: fr(func(*testing.T, *harness) []byte {
			return frameBytes([]byte("0200\x80\x00\x00\x00\x00\x00\x00\x00"))
		}), want: outcome{rc: "30"}},
		{name: "bit set for an undefined field (65)", input: fr(func(t *testing.T, _ *harness) []byte {
			b := []byte("0200\x80\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00")
			return frameBytes(b)
		}), want: outcome{rc: "30"}},
		{name: "LL longer than the field maximum", input: fr(func(t *testing.T, _ *harness) []byte {
			b := body(t, purchaseWith(t, nil))
			return frameBytes(patch(b, "16"+cardA, "25"+cardA+"123456789"))
		}), want: outcome{rc: "30"}},
		{name: "non-numeric amount", input: msg(map[int]string{specs.Amount: "0000000012AB"}), want: outcome{rc: "30"}},
		{name: "non-numeric STAN", input: msg(map[int]string{specs.STAN: "00A001"}), want: outcome{rc: "30"}},
		{name: "negative amount", input: msg(map[int]string{specs.Amount: "-00000001000"}), want: outcome{rc: "30"}},
		{name: "amount zero", input: msg(map[int]string{specs.Amount: "000000000000"}), want: outcome{rc: "13"}},
		{name: "invalid currency", input: msg(map[int]string{specs.Currency: "KRW"}), want: outcome{rc: "30"}},
		{name: "missing mandatory field (DE 3)", input: msg(map[int]string{specs.ProcessingCode: ""}), want: outcome{rc: "30"}},
		{name: "missing card number", input: msg(map[int]string{specs.PAN: ""}), want: outcome{rc: "30"}},
		{name: "PAN failing Luhn", input: msg(map[int]string{specs.PAN: "9410000000000006"}), want: outcome{rc: "14"}},
		{name: "token and PAN in track 2 mismatching", input: msg(map[int]string{specs.Track2: "9999000000000009=30121010000"}), want: outcome{rc: "30"}},
		{name: "oversized DE 55", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			icc := append([]byte{0x9f, 0x10, 0x82, 0x01, 0x2c}, make([]byte, 300)...)
			_ = m.BinaryField(specs.ICCData, icc)
			return frameOf(t, m)
		}), want: outcome{rc: "30"}},
		{name: "malformed DE 55 TLV", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			_ = m.BinaryField(specs.ICCData, []byte{0x9f, 0x26, 0x20, 1, 2})
			return frameOf(t, m)
		}), want: outcome{rc: "30"}},
		{name: "unknown MTI", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			m.MTI("0600")
			return frameOf(t, m)
		}), want: outcome{rc: "12"}},
		{name: "response MTI sent by a terminal", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			m.MTI("0210")
			return frameOf(t, m)
		}), want: outcome{silent: true}},
		{name: "unknown network management code", input: fr(func(t *testing.T, _ *harness) []byte {
			m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
			m.MTI("0800")
			_ = m.Field(specs.STAN, "000001")
			_ = m.Field(specs.NetworkMgmtCode, "999")
			return frameOf(t, m)
		}), want: outcome{rc: "12"}},
		{name: "DE 90 that does not parse", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			m.MTI("0400")
			_ = m.Field(specs.OriginalData, "0200"+"000001"+"1125ABCDEF"+strings.Repeat("0", 22))
			return frameOf(t, m)
		}), want: outcome{rc: "30"}},
		{name: "cancel of an unknown original", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			m.MTI("0400")
			_ = m.Field(specs.OriginalData, "0200"+"999999"+"0101000000"+strings.Repeat("0", 22))
			return frameOf(t, m)
		}), want: outcome{rc: "25"}},
		{name: "reversal for another terminal's sale", send: func(t *testing.T, h *harness, rc *rawConn) {
			term := h.terminal()
			req, _ := sale(t, term, cardA, 500)
			c := cancelOf(t, term, req, -1)
			_ = c.Field(specs.TerminalID, "INTRUDER")
			_, _ = rc.Write(frameOf(t, c))
		}, want: outcome{rc: "25"}},
		{name: "partial cancel above the remainder", send: func(t *testing.T, h *harness, rc *rawConn) {
			term := h.terminal()
			req, _ := sale(t, term, cardA, 500)
			_, _ = rc.Write(frameOf(t, cancelOf(t, term, req, 900)))
		}, want: outcome{rc: "13"}},
		{name: "replayed message gets the stored answer", send: func(t *testing.T, h *harness, rc *rawConn) {
			m := purchaseWith(t, map[int]string{specs.STAN: "777777"})
			term := h.terminal()
			first, err := term.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := first.GetString(specs.ResponseCode); code != "00" {
				t.Fatalf("the original: DE 39 %s, want 00", code)
			}
			_, _ = rc.Write(frameOf(t, m))
		}, want: outcome{rc: "00"}},
		{name: "unknown token", input: msg(map[int]string{specs.PAN: "9999000000000009"}), want: outcome{rc: "14"}},
		{name: "suspended token", send: func(t *testing.T, h *harness, rc *rawConn) {
			tok, err := h.tokenAPI().Issue(context.Background(), cardA, "3012", tokenapi.IssueOptions{Kind: store.DeviceToken})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = h.tokenAPI().Suspend(context.Background(), tok.Token)
			_, _ = rc.Write(frameOf(t, purchaseWith(t, map[int]string{specs.PAN: tok.Token})))
		}, want: outcome{rc: "62"}},
		{name: "garbage PIN block", input: fr(func(t *testing.T, _ *harness) []byte {
			m := purchaseWith(t, nil)
			_ = m.BinaryField(specs.PINBlock, []byte{1, 2, 3, 4, 5, 6, 7, 8})
			return frameOf(t, m)
		}), want: outcome{rc: "55"}},
	}
}

// TestHostileInputCatalogue sends each hostile input on its own connection
// to a live switch while a well-behaved terminal keeps transacting; each
// input gets its specific answer (a response code, or a closed connection)
// and the good terminal sees no error at all.
func TestHostileInputCatalogue(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) {
		c.Listeners[0].FrameTimeout = time.Second
	})
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	// The good terminal has a terminal ID of its own: its STANs start at
	// random and would otherwise, now and then, take the key (terminal,
	// STAN, DE 7) of a catalogue request sent in the same second, which
	// the switch rightly answers 94.
	good := h.terminalOn(t, "terminal", func(o *terminal.Options) { o.TerminalID = "GOOD0001" })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var goodErrs []string
	var sent, answered, approved int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			sent++
			mu.Unlock()
			res, err := good.Purchase(context.Background(), terminal.Purchase{PAN: cardB, Amount: 10})
			mu.Lock()
			if err == nil {
				answered++
			}
			if err == nil && res.ResponseCode == "00" {
				approved++
			} else {
				goodErrs = append(goodErrs, res.ResponseCode+" "+errString(err))
			}
			mu.Unlock()
		}
	}()
	cases := hostileCatalogue()
	if len(cases) < 30 {
		t.Fatalf("catalogue has %d cases, want at least 30", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, h.addr)
			if tc.send != nil {
				tc.send(t, h, rc)
			} else {
				in := tc.input(t, h)
				if _, err := rc.Write(in); err != nil {
					t.Fatal(err)
				}
				if tc.name == "truncated body, then close" {
					_ = rc.Conn.(*net.TCPConn).CloseWrite()
				}
			}
			wait := 3 * time.Second
			if tc.want.silent {
				wait = 500 * time.Millisecond
			}
			m, err := rc.read(t, wait)
			var ne net.Error
			timedOut := errors.As(err, &ne) && ne.Timeout()
			switch {
			case tc.want.rc != "":
				if err != nil {
					t.Fatalf("want DE 39 %s, got %v", tc.want.rc, err)
				}
				if code, _ := m.GetString(specs.ResponseCode); code != tc.want.rc {
					t.Fatalf("DE 39 %s, want %s", code, tc.want.rc)
				}
			case tc.want.closed:
				if err == nil || timedOut {
					t.Fatalf("want the connection closed, got message=%v err=%v", m != nil, err)
				}
			case tc.want.silent:
				if !timedOut {
					t.Fatalf("want no answer, got message=%v err=%v", m != nil, err)
				}
				// The connection still works.
				if _, err := rc.Write(frameOf(t, purchaseWith(t, map[int]string{specs.STAN: "424242"}))); err != nil {
					t.Fatal(err)
				}
				if _, err := rc.read(t, 3*time.Second); err != nil {
					t.Fatalf("connection unusable after the ignored message: %v", err)
				}
			}
		})
	}
	// The well-behaved terminal was served all along: at least one
	// approval while the attacks ran, every request answered, every answer
	// an approval, and each one the issuer's (only it uses card-b).
	mu.Lock()
	approvedDuringAttacks := approved
	mu.Unlock()
	close(stop)
	wg.Wait()
	t.Logf("well-behaved terminal: %d purchases sent, %d answered, %d approved (%d while the catalogue ran)",
		sent, answered, approved, approvedDuringAttacks)
	if len(goodErrs) > 0 {
		t.Fatalf("the well-behaved terminal saw %d errors: %v", len(goodErrs), goodErrs[:min(5, len(goodErrs))])
	}
	if approvedDuringAttacks == 0 {
		t.Fatal("the well-behaved terminal got no approval while the hostile inputs ran")
	}
	if answered != sent || approved != sent {
		t.Fatalf("the well-behaved terminal sent %d purchases: %d answered, %d approved; want all", sent, answered, approved)
	}
	if got := h.issuers["card-b"].Stats().Approved; got != approved {
		t.Fatalf("card-b's issuer holds %d approvals, the well-behaved terminal saw %d", got, approved)
	}
}

// TestRateLimitPerTerminal: one terminal sending 10x its limit is refused
// beyond it (91, counted) while another terminal on the same link is not.
func TestRateLimitPerTerminal(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) { c.Listeners[0].RatePerTerminal = 20 })
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	flood := h.terminalOn(t, "terminal", func(o *terminal.Options) { o.TerminalID = "FLOOD001" })
	calm := h.terminalOn(t, "terminal", func(o *terminal.Options) { o.TerminalID = "CALM0001" })
	var mu sync.Mutex
	tally := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ { // 10x the 20/s limit over ~2 s
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := flood.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 1})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				tally["error"]++
				return
			}
			tally[res.ResponseCode]++
		}()
		if i%20 == 0 {
			if res, err := calm.Purchase(context.Background(), terminal.Purchase{PAN: cardB, Amount: 1}); err != nil || res.ResponseCode != "00" {
				t.Fatalf("the calm terminal was refused: %v %v", res.ResponseCode, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if tally["91"] < 200 || tally["00"] < 20 || tally["error"] > 0 {
		t.Fatalf("flooding terminal outcomes %v: want most refused 91, its limit's worth approved", tally)
	}
}
