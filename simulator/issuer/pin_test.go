package issuer

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs"
)

// pinBlock returns pin as an ISO 9564 format 0 block for account under key.
func pinBlock(t testing.TB, key []byte, pin, account string) []byte {
	t.Helper()
	b, err := paycrypto.EncryptISO0(key, pin, account)
	if err != nil {
		t.Fatalf("EncryptISO0: %v", err)
	}
	return b
}

// withPIN sets DE 52 on a request.
func withPIN(t testing.TB, m *iso8583.Message, block []byte) *iso8583.Message {
	t.Helper()
	if err := m.BinaryField(specs.PINBlock, block); err != nil {
		t.Fatalf("DE 52: %v", err)
	}
	return m
}

func TestPINVerification(t *testing.T) {
	zpk := devkeys.Bytes(devkeys.ZPKHex)
	otherKey := devkeys.Bytes(devkeys.TPKHex)
	cardA, special, poor := card("9410"), card("94100002"), card("94100003")
	is := newIssuer(t, nil, func(c *Config) {
		c.PINs = map[string]string{special: "987654"}
		c.Balances = map[string]int64{poor: 100}
	})
	c := dial(t, is)

	tests := []struct {
		name    string
		req     *iso8583.Message
		account string
		wantRC  string
		debit   int64
	}{
		{"correct demo PIN", withPIN(t, purchase(t, "0200", cardA, "1000", ""), pinBlock(t, zpk, devkeys.DemoPIN, cardA)), cardA, "00", 1000},
		{"correct PIN on 0100", withPIN(t, purchase(t, "0100", cardA, "500", "2812"), pinBlock(t, zpk, devkeys.DemoPIN, cardA)), cardA, "00", 500},
		{"no PIN block: no check", purchase(t, "0200", cardA, "10", ""), cardA, "00", 10},
		{"wrong PIN", withPIN(t, purchase(t, "0200", cardA, "1000", ""), pinBlock(t, zpk, "4321", cardA)), cardA, "55", 0},
		{"longer wrong PIN", withPIN(t, purchase(t, "0200", cardA, "1000", ""), pinBlock(t, zpk, "12345", cardA)), cardA, "55", 0},
		{"block under another key", withPIN(t, purchase(t, "0200", cardA, "1000", ""), pinBlock(t, otherKey, devkeys.DemoPIN, cardA)), cardA, "55", 0},
		{"block bound to another PAN", withPIN(t, purchase(t, "0200", cardA, "1000", ""), pinBlock(t, zpk, devkeys.DemoPIN, card("94109"))), cardA, "55", 0},
		{"garbage block", withPIN(t, purchase(t, "0200", cardA, "1000", ""), []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}), cardA, "55", 0},
		{"all-zero block", withPIN(t, purchase(t, "0200", cardA, "1000", ""), make([]byte, 8)), cardA, "55", 0},
		{"per-PAN override", withPIN(t, purchase(t, "0200", special, "700", ""), pinBlock(t, zpk, "987654", special)), special, "00", 700},
		{"demo PIN refused under override", withPIN(t, purchase(t, "0200", special, "700", ""), pinBlock(t, zpk, devkeys.DemoPIN, special)), special, "55", 0},
		// Order: card checks first, then the PIN, then amount and funds.
		{"expired card before PIN", withPIN(t, purchase(t, "0200", cardA, "1000", "2510"), pinBlock(t, zpk, "4321", cardA)), cardA, "54", 0},
		{"foreign card before PIN", withPIN(t, purchase(t, "0200", card("9420"), "1000", ""), pinBlock(t, zpk, "4321", card("9420"))), cardA, "14", 0},
		{"PIN before amount", withPIN(t, purchase(t, "0200", cardA, "0", ""), pinBlock(t, zpk, "4321", cardA)), cardA, "55", 0},
		{"PIN before funds", withPIN(t, purchase(t, "0200", poor, "1000", ""), pinBlock(t, zpk, "4321", poor)), poor, "55", 0},
		{"funds after a good PIN", withPIN(t, purchase(t, "0200", poor, "1000", ""), pinBlock(t, zpk, devkeys.DemoPIN, poor)), poor, "51", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := is.Balance(tt.account)
			resp := send(t, c, tt.req)
			if rc := get(resp, specs.ResponseCode); rc != tt.wantRC {
				t.Errorf("DE 39 = %q, want %q", rc, tt.wantRC)
			}
			if approval := get(resp, specs.ApprovalCode); (tt.wantRC == "00") != (approval != "") {
				t.Errorf("DE 38 = %q with DE 39 %s", approval, tt.wantRC)
			}
			if resp.GetField(specs.PINBlock) != nil {
				t.Error("response echoes DE 52")
			}
			if got := before - is.Balance(tt.account); got != tt.debit {
				t.Errorf("balance reduced by %d, want %d", got, tt.debit)
			}
		})
	}
}

func TestPINVerificationConfiguredKeyAndPIN(t *testing.T) {
	const zpkHex = "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF" // triple length
	zpk, _ := hex.DecodeString(zpkHex)
	cardA := card("9410")
	is := newIssuer(t, nil, func(c *Config) { c.ZPK, c.PIN = zpkHex, "24680" })
	c := dial(t, is)
	for _, tt := range []struct {
		key    []byte
		pin    string
		wantRC string
	}{
		{zpk, "24680", "00"},
		{zpk, devkeys.DemoPIN, "55"},
		{devkeys.Bytes(devkeys.ZPKHex), "24680", "55"},
	} {
		resp := send(t, c, withPIN(t, purchase(t, "0200", cardA, "100", ""), pinBlock(t, tt.key, tt.pin, cardA)))
		if rc := get(resp, specs.ResponseCode); rc != tt.wantRC {
			t.Errorf("DE 39 = %q, want %q", rc, tt.wantRC)
		}
	}
}

func TestLogsNeverCarryPINOrBlock(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	// Long PINs: short digit runs could turn up in ports or STANs.
	const pin, wrong = "739158246", "468205971"
	is := newIssuer(t, zap.New(core), func(c *Config) { c.PIN = pin })
	c := dial(t, is)
	cardA := card("9410")
	zpk := devkeys.Bytes(devkeys.ZPKHex)
	good := pinBlock(t, zpk, pin, cardA)
	bad := pinBlock(t, zpk, wrong, cardA)
	garbage := []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}
	for i, b := range [][]byte{good, bad, garbage} {
		resp := send(t, c, withPIN(t, purchase(t, "0200", cardA, "100", ""), b))
		if rc, want := get(resp, specs.ResponseCode), []string{"00", "55", "55"}[i]; rc != want {
			t.Errorf("block %d: DE 39 = %q, want %q", i, rc, want)
		}
	}
	is.Close()
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	secrets := []string{pin, wrong, devkeys.ZPKHex}
	for _, b := range [][]byte{good, bad, garbage} {
		secrets = append(secrets, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), string(b))
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line carries a PIN, PIN block or key (%q): %s", s, line)
			}
		}
	}
}
