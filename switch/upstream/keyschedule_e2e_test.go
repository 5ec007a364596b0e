package upstream

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// TestScheduledKeyChangeWithIssuerEmulator: end to end on loopback with
// the issuer emulator. A route with key_exchange asks for a new key when
// the (injected) clock says so; the emulator sends a fresh ZPK under the
// ZMK; PIN purchases approve before (old key on both sides) and after
// (new key on both sides), and the old version still translates for a
// request that was in flight.
func TestScheduledKeyChangeWithIssuerEmulator(t *testing.T) {
	zmk := []byte("ZMK0123456789ABC")
	is, err := issuer.New(issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"},
		ZPK: devkeys.ZPKHex, ZMK: hex.EncodeToString(zmk)}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })

	h, _ := keyChangeHSM(t)
	ctx := context.Background()
	for _, k := range []hsm.ImportKeyRequest{
		{Label: "zmk-card-a", Usage: hsm.UsageKEK, Algorithm: hsm.TDES, Material: zmk},
		{Label: "zpk-card-a", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: devkeys.Bytes(devkeys.ZPKHex)},
		{Label: "tpk", Usage: hsm.UsageTerminalPIN, Algorithm: hsm.TDES, Material: devkeys.Bytes(devkeys.TPKHex)},
	} {
		if _, err := h.ImportKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	clock := newFakeClock()
	l := newLink(t, is.Addr(), func(rc *config.IssuerRoute) {
		rc.Timeout = 5 * time.Second
		rc.PIN = &config.PINKey{Key: "zpk-card-a", ZMK: "zmk-card-a"}
		rc.KeyExchange = &config.KeyExchange{Every: 24 * time.Hour}
	}, WithKeyExchange(func() hsm.HSM { return h }), WithClock(clock))
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 && is.SignOns() > 0 })

	const card = "9410000000000005"
	terminalBlock, err := paycrypto.EncryptISO0(devkeys.Bytes(devkeys.TPKHex), devkeys.DemoPIN, card)
	if err != nil {
		t.Fatal(err)
	}
	// pinBlock translates the terminal's block to a version of the ZPK, as
	// the switch does per request (version 0: the current one).
	pinBlock := func(version int) []byte {
		t.Helper()
		out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: terminalBlock, PAN: card,
			From: hsm.PINKey{Key: hsm.KeyRef{Label: "tpk"}, Format: hsm.ISO0},
			To:   hsm.PINKey{Key: hsm.KeyRef{Label: "zpk-card-a", Version: version}, Format: hsm.ISO0}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	purchase := func(step string, block []byte) string {
		t.Helper()
		m := iso8583.NewMessage(l.Spec())
		m.MTI(specs.MTIFinancialRequest)
		for id, v := range map[int]string{specs.PAN: card, specs.ProcessingCode: "000000", specs.Amount: "000000000100",
			specs.TransmissionDateTime: "1201101500", specs.TerminalID: "TERM0001", specs.Currency: "410"} {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.BinaryField(specs.PINBlock, block); err != nil {
			t.Fatal(err)
		}
		resp, err := l.Exchange(ctx, m)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		rc, _ := resp.GetString(specs.ResponseCode)
		return rc
	}
	if rc := purchase("under the first key", pinBlock(0)); rc != "00" {
		t.Fatalf("PIN purchase under the first key answered %s, want 00", rc)
	}
	inFlight := pinBlock(0) // translated before the change, sent after it

	clock.next(t).fire <- time.Now()
	waitFor(t, "the issuer's new key", func() bool {
		keys, _ := h.Keys(ctx)
		for _, k := range keys {
			if k.Label == "zpk-card-a" && k.Version == 2 {
				return true
			}
		}
		return false
	})
	if is.KeyRequests() != 1 {
		t.Fatalf("the emulator took %d key requests, want 1", is.KeyRequests())
	}
	// The switch answers the issuer's key change before the issuer
	// switches keys: wait for the new key to verify.
	waitFor(t, "a PIN purchase under the new key", func() bool { return purchase("under the new key", pinBlock(0)) == "00" })
	if rc := purchase("under the old key after the change", inFlight); rc != "55" {
		t.Errorf("a PIN block under the old key after the change answered %s, want 55 (the issuer holds the new key)", rc)
	}
	if old := pinBlock(1); len(old) != 8 {
		t.Errorf("version 1 no longer translates for answers in flight")
	}
}
