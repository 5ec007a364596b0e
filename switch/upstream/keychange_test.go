package upstream

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// keyChangeHSM is a software HSM holding a TDES ZMK and version 1 of a
// ZPK, and the ZMK in clear (the issuer's copy).
func keyChangeHSM(t *testing.T) (*software.HSM, []byte) {
	t.Helper()
	h, err := software.Open(software.Options{KeyStore: filepath.Join(t.TempDir(), "keys.json"), MasterKey: make([]byte, software.MasterKeySize)}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	zmk := []byte("0123456789ABCDEF")
	for _, k := range []hsm.ImportKeyRequest{
		{Label: "zmk-test", Usage: hsm.UsageKEK, Algorithm: hsm.TDES, Material: zmk},
		{Label: "zpk-test", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: []byte("FEDCBA9876543210")},
	} {
		if _, err := h.ImportKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	return h, zmk
}

// keyChangeField is DE 48 of a key change sending newZPK under zmk; bad
// flips the KCV.
func keyChangeField(t *testing.T, zmk, newZPK []byte, bad bool) string {
	t.Helper()
	wrapped, err := paycrypto.EncryptKeyECB(zmk, newZPK)
	if err != nil {
		t.Fatal(err)
	}
	kcv, err := paycrypto.KCV(string(hsm.TDES), newZPK)
	if err != nil {
		t.Fatal(err)
	}
	if bad {
		kcv[0] ^= 1
	}
	return FormatKeyExchange(wrapped, kcv)
}

// TestIssuerKeyChange: an issuer's 0800 key change (DE 70 161) is taken
// (00) only on a route with pin.zmk and an HSM that imports under it; the
// new ZPK becomes pin.key's current version. A key that does not import
// (wrong KCV, malformed DE 48) is refused with 30 and the old key stays;
// without pin.zmk it is refused with 12. Echo is still 00.
func TestIssuerKeyChange(t *testing.T) {
	newZPK := []byte("NEWZPK0123456789")
	tests := []struct {
		name        string
		zmk         string
		de48        func(zmk []byte) string
		wantRC      string
		wantVersion int
	}{
		{"no pin.zmk", "", func(zmk []byte) string { return keyChangeField(t, zmk, newZPK, false) }, "12", 1},
		{"new key", "zmk-test", func(zmk []byte) string { return keyChangeField(t, zmk, newZPK, false) }, "00", 2},
		{"wrong KCV", "zmk-test", func(zmk []byte) string { return keyChangeField(t, zmk, newZPK, true) }, "30", 1},
		{"malformed DE 48", "zmk-test", func([]byte) string { return "XYZ" }, "30", 1},
		{"unknown ZMK", "zmk-none", func(zmk []byte) string { return keyChangeField(t, zmk, newZPK, false) }, "30", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, zmkClear := keyChangeHSM(t)
			spec := specs.MustLoad(specs.IssuerDialect)
			answers := make(chan string, 4)
			addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
				if !isotest.SignOn(c, spec, req) {
					return
				}
				if code, _ := req.GetString(specs.NetworkMgmtCode); code != specs.NetMgmtSignOn {
					return
				}
				go func() {
					for i, code := range []string{specs.NetMgmtKeyChange, specs.NetMgmtEcho} {
						m := iso8583.NewMessage(spec)
						m.MTI(specs.MTINetworkMgmt)
						_ = m.Field(specs.TransmissionDateTime, "1201101500")
						_ = m.Field(specs.STAN, "90000"+string(rune('1'+i)))
						_ = m.Field(specs.NetworkMgmtCode, code)
						if code == specs.NetMgmtKeyChange {
							_ = m.Field(KeyExchangeField, tc.de48(zmkClear))
						}
						resp, err := c.Send(m)
						if err != nil {
							answers <- "error: " + err.Error()
							continue
						}
						rc, _ := resp.GetString(specs.ResponseCode)
						answers <- code + ":" + rc
					}
				}()
			})
			l := newLink(t, addr, func(rc *config.IssuerRoute) {
				rc.Header = "binary2"
				rc.Timeout = 5 * time.Second
				rc.PIN = &config.PINKey{Key: "zpk-test", ZMK: tc.zmk}
			}, WithKeyExchange(func() hsm.HSM { return h }))
			waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
			for _, want := range []string{specs.NetMgmtKeyChange + ":" + tc.wantRC, "301:00"} {
				select {
				case got := <-answers:
					if got != want {
						t.Fatalf("issuer's 0800 answered %s, want %s", got, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no answer to the issuer's 0800")
				}
			}
			if version := currentKey(t, h, "zpk-test").Version; version != tc.wantVersion {
				t.Errorf("zpk-test is at version %d, want %d", version, tc.wantVersion)
			}
		})
	}
}
