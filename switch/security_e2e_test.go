package payswitch_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

func (h *harness) terminalOn(t *testing.T, listener string, mutate func(*terminal.Options)) *terminal.Client {
	t.Helper()
	opts := terminal.DefaultOptions()
	opts.Addr = h.sw.ListenerAddr(listener)
	opts.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&opts)
	}
	c, err := terminal.Dial(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// signMAC sets DE 64 to the retail MAC of m under the demo MAC key (the
// keyed listener's), as a keyed terminal does.
func signMAC(t *testing.T, m *iso8583.Message) *iso8583.Message {
	t.Helper()
	_ = m.BinaryField(specs.MAC, make([]byte, 8))
	packed, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := paycrypto.RetailMAC(devkeys.Bytes(devkeys.MACHex), packed[:len(packed)-8])
	if err != nil {
		t.Fatal(err)
	}
	_ = m.BinaryField(specs.MAC, sum)
	return m
}

// TestPINTranslation pays with PINs from a static-key terminal and from a
// DUKPT terminal; the issuer emulator verifies each PIN under its zone key,
// so a 00 proves the switch translated the block, and a 55 the reverse.
func TestPINTranslation(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	static := h.terminalOn(t, "terminal", nil)
	dukpt := h.terminalOn(t, "van", func(o *terminal.Options) { o.DUKPTBDK = devkeys.Bytes(devkeys.BDKHex) })
	tok, err := h.tokenAPI().Issue(context.Background(), cardA, "3012", tokenapi.IssueOptions{Kind: store.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		term *terminal.Client
		p    terminal.Purchase
		want string
	}{
		{"static key, right PIN", static, terminal.Purchase{PAN: cardA, Amount: 100, PIN: devkeys.DemoPIN}, "00"},
		{"static key, wrong PIN", static, terminal.Purchase{PAN: cardA, Amount: 100, PIN: "9999"}, "55"},
		{"DUKPT, right PIN", dukpt, terminal.Purchase{PAN: cardA, Amount: 100, PIN: devkeys.DemoPIN}, "00"},
		{"DUKPT, wrong PIN", dukpt, terminal.Purchase{PAN: cardA, Amount: 100, PIN: "4321"}, "55"},
		{"token with PIN bound to the card", static, terminal.Purchase{PAN: tok.Token, PINPAN: cardA, Amount: 100, PIN: devkeys.DemoPIN}, "00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.term.Purchase(context.Background(), tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResponseCode != tt.want {
				t.Fatalf("DE 39 %s, want %s", res.ResponseCode, tt.want)
			}
		})
	}
	// The issuer never sees the terminal's block, only the translated one.
	for _, r := range h.issuers["card-a"].Received() {
		if r.Fields[specs.PINBlock] != "" && r.Fields[62] != "" {
			t.Fatal("the KSN (DE 62) reached the issuer")
		}
	}
}

// TestPINBlockGarbageAndMissingKSN: blocks that do not decode are answered
// 55 by the switch; a DUKPT block without its KSN is a format error.
func TestPINBlockGarbageAndMissingKSN(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	spec := specs.MustLoad(specs.TerminalDialect)
	for _, tt := range []struct {
		listener, want string
	}{{"terminal", "55"}, {"van", "30"}} {
		term := h.terminalOn(t, tt.listener, nil)
		m, err := terminal.NewPurchaseMessage(spec, terminal.Purchase{PAN: cardA, Amount: 100}, term.NextSTAN(), time.Now(), terminal.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		_ = m.BinaryField(specs.PINBlock, []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef})
		resp, err := term.Send(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if rc, _ := resp.GetString(specs.ResponseCode); rc != tt.want {
			t.Fatalf("%s: DE 39 %s, want %s", tt.listener, rc, tt.want)
		}
	}
}

// TestKeyedTerminalMAC sends MAC'd, unMAC'd and tampered requests to a keyed
// listener: only the good one is forwarded, and its answer carries a MAC
// that verifies under the same key.
func TestKeyedTerminalMAC(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	key := devkeys.Bytes(devkeys.MACHex)
	build := func(stan string, mac bool, tamper bool) []byte {
		m := purchaseMsg(t, cardA, stan, 100)
		if mac {
			signMAC(t, m)
		}
		if tamper {
			_ = m.Field(specs.Amount, "000000999999")
		}
		return frameOf(t, m)
	}
	tests := []struct {
		name       string
		frame      []byte
		want       string
		forwarded  bool
		signedBack bool
	}{
		{"valid MAC", build("000101", true, false), "00", true, true},
		{"no MAC", build("000102", false, false), "63", false, true},
		{"amount changed after MAC", build("000103", true, true), "63", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.issuers["card-a"].Received())
			rc := dialRaw(t, h.sw.ListenerAddr("keyed"))
			rc.codec.KeepRaw = true
			if _, err := rc.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			resp, err := rc.read(t, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := resp.GetString(specs.ResponseCode); code != tt.want {
				t.Fatalf("DE 39 %s, want %s", code, tt.want)
			}
			if got := len(h.issuers["card-a"].Received()) > before; got != tt.forwarded {
				t.Fatalf("forwarded to issuer = %v, want %v", got, tt.forwarded)
			}
			raw := rc.codec.TakeRaw(resp)
			mac, _ := resp.GetBytes(specs.MAC)
			want, _ := paycrypto.RetailMAC(key, raw[:len(raw)-8])
			if tt.signedBack && !bytes.Equal(mac, want) {
				t.Fatalf("response MAC % x does not verify (want % x)", mac, want)
			}
		})
	}
}
