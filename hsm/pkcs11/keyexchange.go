//go:build cgo

package pkcs11

import (
	"context"
	"fmt"
	"slices"

	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

var _ hsm.KeyImporter = (*HSM)(nil)

// ImportUnderKEK takes a key sent under a TDES zone master key in ECB form
// (an issuer's 0800, DE 70 = 161) as the next version of req.Label, whose
// object is labelled "<label>/v<version>" like every version's. The new
// object is a sensitive, non-extractable token object with the usage's
// template; its KCV is computed in the token and must equal req.KCV (first
// 3 bytes), or the object is destroyed and hsm.ErrKCVMismatch returned.
//
// How the value enters the token depends on what the token can do:
//
//   - C_UnwrapKey with CKM_DES3_ECB under the ZMK when the token lists
//     CKF_UNWRAP for that mechanism (payment-grade PKCS#11 HSMs do): the
//     clear key never leaves the token, and ZMK objects there have no
//     CKA_DECRYPT.
//   - Otherwise (SoftHSM2 2.6 unwraps only with AES key wrap and RSA, and
//     answers CKR_MECHANISM_INVALID for CKM_DES3_ECB and CKM_DES3_CBC),
//     C_Decrypt with CKM_DES3_ECB under the ZMK in the token and
//     C_CreateObject of the result, as ImportKey does: the clear value
//     passes through this process's memory for the two calls and is
//     wiped. ZMK objects created on such a token carry CKA_DECRYPT (only
//     CKM_DES3_ECB allowed) for it. Each import logs which way it went.
//
// No in-token alternative exists on SoftHSM2: its derivations only
// encipher (CKM_DES3_ECB_ENCRYPT_DATA), and TDES decryption is no
// encipherment under another key.
func (h *HSM) ImportUnderKEK(ctx context.Context, req hsm.ImportUnderKEKRequest) (_ hsm.KeyInfo, err error) {
	fail := func(err error) (hsm.KeyInfo, error) {
		return hsm.KeyInfo{}, fmt.Errorf("pkcs11 hsm: import key %q under %q: %w", req.Label, req.KEK.Label, err)
	}
	if req.Algorithm != hsm.TDES {
		return fail(fmt.Errorf("a key under a ZMK in ECB form is TDES, not %s: %w", req.Algorithm, hsm.ErrUnsupported))
	}
	if len(req.KCV) < 3 {
		return fail(fmt.Errorf("a key check value of at least 3 bytes is required, got %d: %w", len(req.KCV), hsm.ErrKCVMismatch))
	}
	if len(req.Wrapped) != 16 && len(req.Wrapped) != 24 {
		return fail(fmt.Errorf("a TDES key under a ZMK is 16 or 24 bytes, got %d", len(req.Wrapped)))
	}
	s, err := h.get(ctx)
	if err != nil {
		return fail(err)
	}
	zmk, err := h.lookup(s, req.KEK, hsm.UsageKEK)
	h.put(s, err)
	if err != nil {
		return fail(err)
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_DES3_ECB, nil)}
	unwrap := func(s p11.SessionHandle, t []*p11.Attribute) (p11.ObjectHandle, error) {
		return h.ctx.UnwrapKey(s, mech, zmk.obj, req.Wrapped, t)
	}
	how := "C_UnwrapKey"
	if !h.unwrapsTDES() {
		how = "C_Decrypt and C_CreateObject"
		unwrap = func(s p11.SessionHandle, t []*p11.Attribute) (p11.ObjectHandle, error) {
			value, err := h.crypt(s, true, mech[0], zmk.obj, req.Wrapped)
			if err != nil {
				return 0, fmt.Errorf("decrypting under the ZMK: %w", err)
			}
			defer paycrypto.Wipe(value)
			return h.ctx.CreateObject(s, append(slices.Clip(t), p11.NewAttribute(p11.CKA_VALUE, value)))
		}
	}
	info, err := h.addFrom(ctx, req.Label, req.Usage, req.Algorithm, len(req.Wrapped), keySource{unwrap: unwrap, kcv: req.KCV})
	if err != nil {
		return fail(err)
	}
	h.log.Info("key imported under a ZMK", zap.String("token", h.token), zap.String("label", info.Label), zap.Int("version", info.Version),
		zap.String("zmk", zmk.info.Label), zap.String("via", how), zap.String("kcv", fmt.Sprintf("%X", info.KCV)))
	return info, nil
}

// unwrapsTDES reports whether the token unwraps with CKM_DES3_ECB
// (C_GetMechanismInfo lists CKF_UNWRAP); asked once.
func (h *HSM) unwrapsTDES() bool {
	h.unwrapOnce.Do(func() {
		mi, err := h.ctx.GetMechanismInfo(h.slot, []*p11.Mechanism{p11.NewMechanism(p11.CKM_DES3_ECB, nil)})
		h.unwrapTDES = err == nil && mi.Flags&p11.CKF_UNWRAP != 0
		if !h.unwrapTDES {
			h.log.Warn("the token does not unwrap with CKM_DES3_ECB: keys sent under a ZMK are decrypted in the token and created from host memory",
				zap.String("token", h.token))
		}
	})
	return h.unwrapTDES
}

// kekAttrs are a ZMK object's boolean attributes: attrs, and CKA_DECRYPT
// when the token cannot unwrap with it (see ImportUnderKEK).
func (h *HSM) kekAttrs(attrs []uint) []uint {
	if h.unwrapsTDES() {
		return attrs
	}
	return append(slices.Clip(attrs), p11.CKA_DECRYPT)
}
