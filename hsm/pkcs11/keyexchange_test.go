//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// TestImportUnderKEKObjects: on SoftHSM2 (no CKM_DES3_ECB unwrap) the ZMK
// object may unwrap and decrypt, only with CKM_DES3_ECB; the imported ZPK
// is a sensitive, non-extractable token object labelled with its version
// and outlives the HSM; a wrong KCV leaves no object behind; on a token
// that unwraps, C_UnwrapKey is what runs (SoftHSM2 refuses it, and the
// refusal stores nothing).
func TestImportUnderKEKObjects(t *testing.T) {
	opts := newToken(t, "kbpay-keyx")
	h := mustOpen(t, opts)
	ctx := context.Background()
	zmkClear := unhex(t, "0123456789ABCDEFFEDCBA9876543210")
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: "zmk", Usage: hsm.UsageKEK, Algorithm: hsm.TDES, Material: zmkClear}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: make([]byte, 16)}); err != nil {
		t.Fatal(err)
	}
	newZPK := unhex(t, "89ABCDEF0123456776543210FEDCBA98")
	wrapped, _ := paycrypto.EncryptKeyECB(zmkClear, newZPK)
	kcv, _ := paycrypto.KCV("tdes", newZPK)
	req := hsm.ImportUnderKEKRequest{KEK: hsm.KeyRef{Label: "zmk"}, Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Wrapped: wrapped, KCV: kcv}

	bad := req
	bad.KCV = []byte{kcv[0], kcv[1], kcv[2] ^ 0x10}
	if _, err := h.ImportUnderKEK(ctx, bad); !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("wrong KCV: %v, want ErrKCVMismatch", err)
	}
	s, err := h.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := h
	defer func() {
		if s != 0 {
			first.put(s, nil)
		}
	}()
	if objs, _ := h.findByLabel(s, "zpk/v2"); len(objs) != 0 {
		t.Fatalf("a refused import left %d zpk/v2 objects", len(objs))
	}

	info, err := h.ImportUnderKEK(ctx, req)
	if err != nil || info.Version != 2 {
		t.Fatalf("ImportUnderKEK: %+v, %v; want version 2", info, err)
	}
	for label, want := range map[string][]byte{
		// CKA_UNWRAP, CKA_DECRYPT, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_TOKEN
		"zmk/v1": {1, 1, 1, 0, 1},
		"zpk/v2": {0, 1, 1, 0, 1},
	} {
		objs, err := h.findByLabel(s, label)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %d objects, %v", label, len(objs), err)
		}
		attrs, err := h.ctx.GetAttributeValue(s, objs[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_UNWRAP, nil), p11.NewAttribute(p11.CKA_DECRYPT, nil), p11.NewAttribute(p11.CKA_SENSITIVE, nil),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_TOKEN, nil)})
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range attrs {
			if a.Value[0] != want[i] {
				t.Errorf("%s: attribute %#x is %v, want %d", label, a.Type, a.Value, want[i])
			}
		}
	}
	h.put(s, nil)
	s = 0
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = mustOpen(t, opts)
	if k := h.cached(hsm.KeyRef{Label: "zpk"}); k == nil || k.info.Version != 2 || string(k.info.KCV) != string(kcv) {
		t.Fatalf("after reopening, zpk is %+v, want version 2 with KCV %X", k, kcv)
	}

	// A token that unwraps: SoftHSM2 refuses CKM_DES3_ECB, nothing is stored.
	h.unwrapOnce.Do(func() { h.unwrapTDES = true })
	if _, err := h.ImportUnderKEK(ctx, req); !isCKR(err, p11.CKR_MECHANISM_INVALID) {
		t.Errorf("C_UnwrapKey on SoftHSM2: %v, want CKR_MECHANISM_INVALID", err)
	}
	if k := h.cached(hsm.KeyRef{Label: "zpk"}); k.info.Version != 2 {
		t.Errorf("a failed unwrap made version %d current", k.info.Version)
	}
}
