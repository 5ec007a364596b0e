package payshield_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// TestImportZPKUnderZMK: FA on the emulator. A ZPK without odd parity
// (the HSM answers 01, advice only) imports with its KCV; an all-zero key
// is the HSM's refusal; a ZPK is the only usage FA takes.
func TestImportZPKUnderZMK(t *testing.T) {
	f := newFixture(t)
	zmkClear := []byte("0123456789ABCDEF")
	if err := f.sim.ProvisionKeyStore(f.store, []hsm.ImportKeyRequest{
		{Label: "zmk-tdes", Usage: hsm.UsageKEK, Algorithm: hsm.TDES, Material: zmkClear},
	}); err != nil {
		t.Fatal(err)
	}
	h := f.open(t, payshield.Options{})
	defer h.Close()
	ctx := context.Background()
	zpk := []byte("FEDCBA9876543210") // ASCII: even parity in places
	wrapped, _ := paycrypto.EncryptKeyECB(zmkClear, zpk)
	kcv, _ := paycrypto.KCV("tdes", zpk)
	req := hsm.ImportUnderKEKRequest{KEK: hsm.KeyRef{Label: "zmk-tdes"}, Label: "zpk-issuer", Usage: hsm.UsageZonePIN,
		Algorithm: hsm.TDES, Wrapped: wrapped, KCV: kcv}
	info, err := h.ImportUnderKEK(ctx, req)
	if err != nil {
		t.Fatalf("FA with a ZPK lacking odd parity: %v", err)
	}
	if info.Version != 1 || string(info.KCV) != string(kcv) {
		t.Fatalf("imported %+v, want version 1 with KCV %X", info, kcv)
	}

	zero, _ := paycrypto.EncryptKeyECB(zmkClear, make([]byte, 16))
	zeroKCV, _ := paycrypto.KCV("tdes", make([]byte, 16))
	allZero := req
	allZero.Wrapped, allZero.KCV = zero, zeroKCV
	var de *hsm.DeviceError
	if _, err := h.ImportUnderKEK(ctx, allZero); !errors.As(err, &de) || de.Code != hostcmd.DestKeyError {
		t.Errorf("FA with an all-zero ZPK: %v, want the HSM's error 11", err)
	}
	notZPK := req
	notZPK.Usage = hsm.UsageMAC
	if _, err := h.ImportUnderKEK(ctx, notZPK); !errors.Is(err, hsm.ErrUnsupported) {
		t.Errorf("FA for a MAC key: %v, want ErrUnsupported", err)
	}
	underAES := req
	underAES.KEK = hsm.KeyRef{Label: kekLabel}
	if _, err := h.ImportUnderKEK(ctx, underAES); !errors.Is(err, hsm.ErrWrongUsage) {
		t.Errorf("ECB form under an AES ZMK: %v, want ErrWrongUsage", err)
	}
	if keys, _ := h.Keys(ctx); len(keys) != 3 {
		t.Errorf("key store holds %d keys after the refusals, want 3 (two ZMKs, one ZPK)", len(keys))
	}
}
