package hsmtest

import (
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// testKeyExchange imports a new ZPK under a ZMK (hsm.KeyImporter, the
// issuer's key change): PINs translate to the new version, a key with the
// wrong KCV or under a key that is no ZMK is refused and leaves the
// current version as it was.
func testKeyExchange(t *testing.T, e *env) {
	if _, ok := e.b.(hsm.KeyImporter); !ok {
		_, err := hsm.ImportUnderKEK(e.ctx, e.b, hsm.ImportUnderKEKRequest{Label: e.label("zpk")})
		wantErr(t, "ImportUnderKEK without hsm.KeyImporter", err, hsm.ErrUnsupported)
		t.Skip("the backend is no hsm.KeyImporter")
	}
	must := mustBlock(t)
	zmkClear := random(t, 16)
	zmk := e.imp("zmk", hsm.UsageKEK, hsm.TDES, zmkClear)
	tpk := e.imp("tpk", hsm.UsageTerminalPIN, hsm.TDES, unhex(tdesTPK))
	zpk := e.imp("zpk", hsm.UsageZonePIN, hsm.TDES, unhex(tdesZPK))

	newZPK := unhex(tdesZPK3)[:16]
	wrapped := must(paycrypto.EncryptKeyECB(zmkClear, newZPK))
	check := must(paycrypto.KCV(string(hsm.TDES), newZPK))
	req := hsm.ImportUnderKEKRequest{KEK: zmk, Label: zpk.Label, Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Wrapped: wrapped, KCV: check}

	bad := req
	bad.KCV = []byte{check[0] ^ 1, check[1], check[2]}
	_, err := hsm.ImportUnderKEK(e.ctx, e.b, bad)
	wantErr(t, "import with a wrong KCV", err, hsm.ErrKCVMismatch)
	noKCV := req
	noKCV.KCV = nil
	_, err = hsm.ImportUnderKEK(e.ctx, e.b, noKCV)
	wantErr(t, "import without a KCV", err, hsm.ErrKCVMismatch)
	notZMK := req
	notZMK.KEK = tpk
	_, err = hsm.ImportUnderKEK(e.ctx, e.b, notZMK)
	wantErr(t, "import under a TPK", err, hsm.ErrWrongUsage)

	pin, pan := "4321", "4012345678909"
	block := must(paycrypto.EncryptISO0(unhex(tdesTPK), pin, pan))
	translateTo := func(to hsm.KeyRef, clearKey []byte) {
		t.Helper()
		out, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: block, PAN: pan,
			From: hsm.PINKey{Key: tpk, Format: hsm.ISO0}, To: hsm.PINKey{Key: to, Format: hsm.ISO0}})
		if err != nil {
			t.Fatalf("TranslatePIN to %+v: %v", to, err)
		}
		if got, err := paycrypto.DecryptISO0(clearKey, out, pan); err != nil || got != pin {
			t.Fatalf("PIN block under %+v does not decrypt to the PIN under the expected key (err %v)", to, err)
		}
	}
	// Refused imports left version 1 current.
	translateTo(zpk, unhex(tdesZPK))

	info, err := hsm.ImportUnderKEK(e.ctx, e.b, req)
	if err != nil {
		t.Fatalf("ImportUnderKEK: %v", err)
	}
	if info.Label != zpk.Label || info.Version != 2 || info.Usage != hsm.UsageZonePIN || string(info.KCV[:3]) != string(check[:3]) {
		t.Fatalf("ImportUnderKEK: got info %+v, want %s version 2 with KCV %X", info, zpk.Label, check)
	}
	translateTo(zpk, newZPK)
	translateTo(hsm.KeyRef{Label: zpk.Label, Version: 2}, newZPK)
	// The old version still serves answers in flight.
	translateTo(hsm.KeyRef{Label: zpk.Label, Version: 1}, unhex(tdesZPK))
}
