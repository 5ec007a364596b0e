package terminal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/internal/cli/clitest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
)

// testPIN is long and unusual so that it cannot turn up in output by
// chance (ports, latencies).
const testPIN = "73915824"

// realCard is the card behind a token in the PINPAN tests.
const realCard = "9410000000000019"

// pinOf decrypts DE 52 of m under key, bound to account.
func pinOf(t *testing.T, m *iso8583.Message, key []byte, account string) string {
	t.Helper()
	block, err := m.GetBytes(specs.PINBlock)
	if err != nil || len(block) != 8 {
		t.Fatalf("DE 52 = %X, %v; want an 8-byte PIN block", block, err)
	}
	pin, err := paycrypto.DecryptISO0(key, block, account)
	if err != nil {
		t.Fatalf("DE 52 does not decrypt to a format 0 block: %v", err)
	}
	return pin
}

// ksnOf returns DE 62 decoded, checking it is 20 upper-case hex characters.
func ksnOf(t *testing.T, m *iso8583.Message) []byte {
	t.Helper()
	s, err := m.GetString(KSNField)
	if err != nil || len(s) != 20 || strings.ToUpper(s) != s {
		t.Fatalf("DE 62 = %q, %v; want 20 upper-case hex characters", s, err)
	}
	ksn, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("DE 62 %q: %v", s, err)
	}
	return ksn
}

func TestPurchaseWithPINStaticKey(t *testing.T) {
	fs := startFakeSwitch(t)
	tpk := devkeys.Bytes(devkeys.TPKHex)
	own := devkeys.Bytes("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF") // triple length

	tests := []struct {
		name    string
		key     []byte // Options.PINKey
		p       Purchase
		wantKey []byte
		boundTo string
	}{
		{"default demo TPK", nil, Purchase{PAN: testPAN, Amount: 15000, PIN: testPIN}, tpk, testPAN},
		{"4-digit PIN", nil, Purchase{PAN: testPAN, Amount: 15000, PIN: devkeys.DemoPIN}, tpk, testPAN},
		{"12-digit PIN", nil, Purchase{PAN: testPAN, Amount: 15000, PIN: "987654321098"}, tpk, testPAN},
		{"own triple-length key", own, Purchase{PAN: testPAN, Amount: 15000, PIN: testPIN}, own, testPAN},
		{"token bound to the real card", nil, Purchase{PAN: "9990000000000002", PINPAN: realCard, Amount: 15000, PIN: testPIN}, tpk, realCard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTest(t, fs.addr, func(o *Options) { o.PINKey = tt.key })
			res, err := c.Purchase(context.Background(), tt.p)
			if err != nil || res.ResponseCode != "00" {
				t.Fatalf("Purchase = %v, %v", res, err)
			}
			req := fs.lastReceived(t)
			if got := pinOf(t, req, tt.wantKey, tt.boundTo); got != tt.p.PIN {
				t.Errorf("DE 52 holds a PIN of %d digits, not the one entered", len(got))
			}
			if tt.p.PINPAN != "" {
				if _, err := paycrypto.DecryptISO0(tt.wantKey, mustBytes(t, req, specs.PINBlock), tt.p.PAN); err == nil {
					t.Error("PIN block also decodes bound to the token")
				}
			}
			if req.GetField(KSNField) != nil {
				t.Error("static-key terminal sent DE 62")
			}
			if p, _ := req.GetString(specs.PAN); p != tt.p.PAN {
				t.Error("DE 2 is not the presented number")
			}
		})
	}
}

func mustBytes(t *testing.T, m *iso8583.Message, id int) []byte {
	t.Helper()
	b, err := m.GetBytes(id)
	if err != nil {
		t.Fatalf("DE %d: %v", id, err)
	}
	return b
}

func TestPurchaseWithoutPINSendsNoDE52(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr, func(o *Options) { o.DUKPTBDK = devkeys.Bytes(devkeys.BDKHex) })
	if _, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: 15000}); err != nil {
		t.Fatal(err)
	}
	req := fs.lastReceived(t)
	if req.GetField(specs.PINBlock) != nil || req.GetField(KSNField) != nil {
		t.Error("purchase without a PIN carries DE 52 or DE 62")
	}
	// No KSN was used up: the first PIN purchase still gets counter 1.
	if _, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: 15000, PIN: testPIN}); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(ksnOf(t, fs.lastReceived(t))); got != "ffff9876543210e00001" {
		t.Errorf("first KSN %s", got)
	}
}

func TestPurchaseWithPINDUKPT(t *testing.T) {
	fs := startFakeSwitch(t)
	bdk := devkeys.Bytes(devkeys.BDKHex)
	c := dialTest(t, fs.addr, func(o *Options) { o.DUKPTBDK = bdk })
	var prev []byte
	for i := 1; i <= 5; i++ {
		if _, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: 15000, PIN: testPIN}); err != nil {
			t.Fatal(err)
		}
		req := fs.lastReceived(t)
		ksn := ksnOf(t, req)
		if want := fmt.Sprintf("%s%05X", devkeys.KSNPrefixTDES, i); strings.ToUpper(hex.EncodeToString(ksn)) != want {
			t.Errorf("purchase %d: DE 62 %X, want %s", i, ksn, want)
		}
		key, err := paycrypto.TDESPINKey(bdk, ksn)
		if err != nil {
			t.Fatal(err)
		}
		if got := pinOf(t, req, key, testPAN); got != testPIN {
			t.Errorf("purchase %d: DE 52 holds another PIN", i)
		}
		// Not the static key, and not the previous transaction's key.
		if _, err := paycrypto.DecryptISO0(devkeys.Bytes(devkeys.TPKHex), mustBytes(t, req, specs.PINBlock), testPAN); err == nil {
			t.Errorf("purchase %d: DUKPT block decodes under the static TPK", i)
		}
		if prev != nil {
			oldKey, _ := paycrypto.TDESPINKey(bdk, prev)
			if _, err := paycrypto.DecryptISO0(oldKey, mustBytes(t, req, specs.PINBlock), testPAN); err == nil {
				t.Errorf("purchase %d: block decodes under the previous KSN's key", i)
			}
		}
		prev = ksn
	}
}

// ANSI X9.24-1 test vector: BDK 0123456789ABCDEFFEDCBA9876543210, KSN
// FFFF9876543210E00001, PIN 1234, PAN 4012345678909.
func TestDUKPTMatchesX924Vector(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	opts := Options{DUKPTBDK: devkeys.Bytes(devkeys.BDKHex)}
	msg, err := NewPurchaseMessageKSN(spec, Purchase{PAN: "4012345678909", Amount: 1, PIN: "1234"}, "1", DemoKSN(1), time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%X", mustBytes(t, msg, specs.PINBlock)); got != "1B9C1845EB993A7A" {
		t.Errorf("DE 52 = %s, want 1B9C1845EB993A7A", got)
	}
	if got, _ := msg.GetString(KSNField); got != "FFFF9876543210E00001" {
		t.Errorf("DE 62 = %q", got)
	}
	// The wire carries DE 52 and DE 62 through a pack/unpack round trip.
	packed, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := iso8583.NewMessage(spec)
	if err := back.Unpack(packed); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%X", mustBytes(t, back, specs.PINBlock)); got != "1B9C1845EB993A7A" {
		t.Errorf("unpacked DE 52 = %s", got)
	}
	if got, _ := back.GetString(KSNField); got != "FFFF9876543210E00001" {
		t.Errorf("unpacked DE 62 = %q", got)
	}
}

func TestDUKPTConcurrentPurchasesGetDistinctKSNs(t *testing.T) {
	fs := startFakeSwitch(t)
	c := dialTest(t, fs.addr, func(o *Options) { o.DUKPTBDK = devkeys.Bytes(devkeys.BDKHex) })
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Purchase(context.Background(), Purchase{PAN: testPAN, Amount: 15000, PIN: testPIN}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range fs.received {
		s, _ := m.GetString(KSNField)
		if seen[s] {
			t.Errorf("KSN %s used twice", s)
		}
		seen[s] = true
	}
	for i := 1; i <= n; i++ {
		if k := fmt.Sprintf("%s%05X", devkeys.KSNPrefixTDES, i); !seen[k] {
			t.Errorf("KSN %s not used", k)
		}
	}
}

func TestKSNCounter(t *testing.T) {
	var k ksnCounter
	for want := uint32(1); want <= 3; want++ {
		if got := k.next(); got != want {
			t.Errorf("counter %d, want %d", got, want)
		}
	}
	k.n.Store(0x7FE) // 0x7FF has 11 one bits: skipped
	if got := k.next(); got != 0x800 {
		t.Errorf("after 0x7FE: %#x, want 0x800", got)
	}
	k.n.Store(ksnCounterMask - 1) // 0x1FFFFF is skipped, 0 too: wrap to 1
	if got := k.next(); got != 1 {
		t.Errorf("after the last counter: %#x, want 1", got)
	}
	for counter, want := range map[uint32]string{
		1: "FFFF9876543210E00001", 0xFFFFF: "FFFF9876543210EFFFFF", 0x100000: "FFFF9876543210F00000",
		0x1FFFFF: "FFFF9876543210FFFFFF", 0x200001: "FFFF9876543210E00001",
	} {
		if got := fmt.Sprintf("%X", DemoKSN(counter)); got != want {
			t.Errorf("DemoKSN(%#x) = %s, want %s", counter, got, want)
		}
	}
}

func TestPINValidation(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	dukpt := Options{DUKPTBDK: devkeys.Bytes(devkeys.BDKHex)}
	tests := []struct {
		name, wantErr string
		p             Purchase
		opts          Options
		ksn           []byte
		config        bool // error also wraps ErrConfig
	}{
		{"PIN too short", "PIN is not 4-12 digits", Purchase{PAN: testPAN, Amount: 1, PIN: "739"}, Options{}, nil, false},
		{"PIN too long", "PIN is not 4-12 digits", Purchase{PAN: testPAN, Amount: 1, PIN: "7391582473915"}, Options{}, nil, false},
		{"PIN not digits", "PIN is not 4-12 digits", Purchase{PAN: testPAN, Amount: 1, PIN: "7391x824"}, Options{}, nil, false},
		{"PIN PAN without PIN", "without a PIN", Purchase{PAN: testPAN, Amount: 1, PINPAN: realCard}, Options{}, nil, false},
		{"12-digit PAN", "PAN ************ is not 13-19 digits", Purchase{PAN: "941000000001", Amount: 1, PIN: testPIN}, Options{}, nil, false},
		{"bad PIN PAN", "PIN PAN 941000******001X", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN, PINPAN: "941000000000001X"}, Options{}, nil, false},
		{"short PIN key", "PIN key must be 16 or 24 bytes", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, Options{PINKey: make([]byte, 8)}, nil, true},
		{"AES-size PIN key", "got 32 bytes", Purchase{PAN: testPAN, Amount: 1}, Options{PINKey: make([]byte, 32)}, nil, true},
		{"short BDK", "DUKPT BDK must be 16 bytes", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, Options{DUKPTBDK: make([]byte, 24)}, DemoKSN(1), true},
		{"empty BDK", "DUKPT BDK must be 16 bytes", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, Options{DUKPTBDK: []byte{}}, DemoKSN(1), true},
		{"DUKPT without KSN", "needs a KSN", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, dukpt, nil, false},
		{"DUKPT short KSN", "KSN must be 10 bytes", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, dukpt, DemoKSN(1)[:8], false},
		{"DUKPT zero counter", "counter is zero", Purchase{PAN: testPAN, Amount: 1, PIN: testPIN}, dukpt, DemoKSN(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPurchaseMessageKSN(spec, tt.p, "1", tt.ksn, time.Now(), tt.opts)
			if !errors.Is(err, ErrInvalidPurchase) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalidPurchase containing %q", err, tt.wantErr)
			}
			if tt.config != errors.Is(err, ErrConfig) {
				t.Errorf("errors.Is(err, ErrConfig) = %v", !tt.config)
			}
			for _, secret := range []string{tt.p.PIN, tt.p.PAN, tt.p.PINPAN} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a PIN or full card number", err)
				}
			}
		})
	}
	// Without a PIN, DUKPT options need no KSN.
	if _, err := NewPurchaseMessage(spec, Purchase{PAN: testPAN, Amount: 1}, "1", time.Now(), dukpt); err != nil {
		t.Errorf("DUKPT purchase without PIN: %v", err)
	}
	// Dial refuses bad keys as configuration errors.
	if _, err := Dial(context.Background(), Options{Addr: testnet.FreeAddr(t), PINKey: []byte{1, 2, 3}}); !errors.Is(err, ErrConfig) {
		t.Errorf("Dial with a 3-byte PIN key: %v, want ErrConfig", err)
	}
}

func TestRunPayPIN(t *testing.T) {
	fs := startFakeSwitch(t)
	const ownKey = "00112233445566778899AABBCCDDEEFF"
	const ownBDK = "FEDCBA98765432100123456789ABCDEF"
	tpk, bdk := devkeys.Bytes(devkeys.TPKHex), devkeys.Bytes(devkeys.BDKHex)
	tests := []struct {
		name     string
		args     []string
		key      func(ksn []byte) []byte // expected PIN key; nil: no DE 52
		boundTo  string
		wantKSN  bool
		wantWarn string
	}{
		{"no PIN", nil, nil, "", false, ""},
		{"static demo TPK", []string{"--pin", testPIN}, func([]byte) []byte { return tpk }, testPAN, false, ""},
		{"own static key", []string{"--pin", testPIN, "--pin-key", ownKey}, func([]byte) []byte { return devkeys.Bytes(ownKey) }, testPAN, false, ""},
		{"lower-case key hex", []string{"--pin", testPIN, "--pin-key", strings.ToLower(ownKey)}, func([]byte) []byte { return devkeys.Bytes(ownKey) }, testPAN, false, ""},
		{"demo DUKPT", []string{"--pin", testPIN, "--dukpt"}, func(ksn []byte) []byte { k, _ := paycrypto.TDESPINKey(bdk, ksn); return k }, testPAN, true, ""},
		{"own BDK", []string{"--pin", testPIN, "--bdk", ownBDK}, func(ksn []byte) []byte { k, _ := paycrypto.TDESPINKey(devkeys.Bytes(ownBDK), ksn); return k }, testPAN, true, ""},
		{"PIN PAN", []string{"--pin", testPIN, "--pin-pan", realCard}, func([]byte) []byte { return tpk }, realCard, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--pan", testPAN, "--amount", "15000", "--switch", fs.addr, "--expect", "00"}, tt.args...)
			var stdout, stderr bytes.Buffer
			if code := RunPay(context.Background(), args, &stdout, &stderr); code != ExitOK {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
			}
			req := fs.lastReceived(t)
			var ksn []byte
			if tt.wantKSN {
				ksn = ksnOf(t, req)
				if got := fmt.Sprintf("%X", ksn); got != "FFFF9876543210E00001" {
					t.Errorf("KSN %s, want the first of the demo device", got)
				}
			} else if req.GetField(KSNField) != nil {
				t.Error("DE 62 sent without DUKPT")
			}
			if tt.key == nil {
				if req.GetField(specs.PINBlock) != nil {
					t.Error("DE 52 sent without --pin")
				}
			} else if got := pinOf(t, req, tt.key(ksn), tt.boundTo); got != testPIN {
				t.Error("DE 52 holds another PIN")
			}
			assertNoSecrets(t, stdout.String()+stderr.String(), req)
		})
	}
}

// assertNoSecrets fails when out shows the PIN, a key or the PIN block.
func assertNoSecrets(t *testing.T, out string, req *iso8583.Message) {
	t.Helper()
	secrets := []string{testPIN, testPAN, devkeys.TPKHex, devkeys.BDKHex}
	if req != nil {
		if b, err := req.GetBytes(specs.PINBlock); err == nil && len(b) > 0 {
			secrets = append(secrets, fmt.Sprintf("%X", b), fmt.Sprintf("%x", b), string(b))
		}
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToUpper(out), strings.ToUpper(s)) {
			t.Errorf("output shows a PIN, key, PIN block or PAN (%q):\n%s", s, out)
		}
	}
}

func TestRunPayPINTokenWarning(t *testing.T) {
	fs := startFakeSwitch(t)
	const token = "9990000000000002"
	var stdout, stderr bytes.Buffer
	code := RunPay(context.Background(), []string{"--token", token, "--amount", "15000", "--switch", fs.addr, "--pin", testPIN}, &stdout, &stderr)
	if code != ExitOK || !strings.Contains(stderr.String(), "--pin-pan") {
		t.Errorf("exit %d, stderr:\n%s", code, &stderr)
	}
	if got := pinOf(t, fs.lastReceived(t), devkeys.Bytes(devkeys.TPKHex), token); got != testPIN {
		t.Error("DE 52 is not bound to the token")
	}
	stderr.Reset()
	code = RunPay(context.Background(), []string{"--token", token, "--amount", "15000", "--switch", fs.addr, "--pin", testPIN, "--pin-pan", realCard}, &stdout, &stderr)
	if code != ExitOK || strings.Contains(stderr.String(), "warning") {
		t.Errorf("exit %d, stderr:\n%s", code, &stderr)
	}
	if got := pinOf(t, fs.lastReceived(t), devkeys.Bytes(devkeys.TPKHex), realCard); got != testPIN {
		t.Error("DE 52 is not bound to the real card")
	}
	if strings.Contains(stdout.String()+stderr.String(), token) || strings.Contains(stdout.String()+stderr.String(), realCard) {
		t.Error("output shows a full card number or token")
	}
}

func TestRunPayPINUsageErrors(t *testing.T) {
	closed := testnet.FreeAddr(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"PIN too short", []string{"--pin", "739"}, "--pin is not 4-12 digits"},
		{"PIN too long", []string{"--pin", "7391582473915"}, "--pin is not 4-12 digits"},
		{"PIN not digits", []string{"--pin", "7391582x"}, "--pin is not 4-12 digits"},
		{"empty PIN", []string{"--pin", ""}, "--pin is empty"},
		{"PIN key not hex", []string{"--pin", testPIN, "--pin-key", "ZZ112233445566778899AABBCCDDEEFF"}, "--pin-key is not valid hex"},
		{"PIN key odd length", []string{"--pin", testPIN, "--pin-key", "0011223"}, "--pin-key is not valid hex"},
		{"PIN key single length", []string{"--pin", testPIN, "--pin-key", "0011223344556677"}, "--pin-key must be 16 or 24 bytes"},
		{"BDK not hex", []string{"--pin", testPIN, "--bdk", "0123456789ABCDEFFEDCBA987654321G"}, "--bdk is not valid hex"},
		{"BDK triple length", []string{"--pin", testPIN, "--bdk", strings.Repeat("0123456789ABCDEF", 3)}, "--bdk must be 16 bytes"},
		{"key and DUKPT", []string{"--pin", testPIN, "--pin-key", devkeys.TPKHex, "--dukpt"}, "not both"},
		{"key and BDK", []string{"--pin", testPIN, "--pin-key", devkeys.TPKHex, "--bdk", devkeys.BDKHex}, "not both"},
		{"PIN PAN without PIN", []string{"--pin-pan", realCard}, "--pin-pan needs --pin"},
		{"DUKPT without PIN", []string{"--dukpt"}, "--dukpt needs --pin"},
		{"BDK without PIN", []string{"--bdk", devkeys.BDKHex}, "--bdk needs --pin"},
		{"PIN key without PIN", []string{"--pin-key", devkeys.TPKHex}, "--pin-key needs --pin"},
		{"bad PIN PAN", []string{"--pin", testPIN, "--pin-pan", "94100000000X"}, "PIN PAN ************ is not 13-19 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--pan", testPAN, "--amount", "100", "--switch", closed}, tt.args...)
			stdout, stderr := clitest.Run(t, RunPay, args, ExitUsage, nil, []string{tt.wantErr})
			out := stdout + stderr
			for _, a := range tt.args {
				if !strings.HasPrefix(a, "--") && len(a) >= 8 && strings.Contains(out, a) {
					t.Errorf("output shows the value %q", a)
				}
			}
			assertNoSecrets(t, out, nil)
		})
	}
}
