//go:build cgo

package pkcs11

import (
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm/paycrypto"
)

// TDES DUKPT (ANSI X9.24-1:2009), split between the token and the host.
// The token enciphers paycrypto.TDESIPEKInput under the BDK object and
// under its variant object (paycrypto.TDESBDKVariant, created at import):
// the two halves of the IPEK. The walk from the IPEK to the transaction
// key for the KSN's counter XORs key halves into data and keys, which no
// SoftHSM2 mechanism does on objects, so it runs here:
// paycrypto.TDESPINKeyFromIPEK, which wipes the future keys it walks
// through.

// tdesDUKPTPINKey derives the PIN encryption key of a TDES BDK for ksn:
// the IPEK halves in the token, the rest here. The caller wipes the key.
func (h *HSM) tdesDUKPTPINKey(s p11.SessionHandle, k *key, ksn []byte) ([]byte, error) {
	if err := paycrypto.CheckTDESKSN(ksn); err != nil {
		return nil, err
	}
	in, err := paycrypto.TDESIPEKInput(ksn)
	if err != nil {
		return nil, err
	}
	ecb := p11.NewMechanism(p11.CKM_DES3_ECB, nil)
	left, err := h.crypt(s, false, ecb, k.obj, in)
	if err != nil {
		return nil, fmt.Errorf("IPEK left half under the BDK: %w", err)
	}
	defer paycrypto.Wipe(left)
	right, err := h.crypt(s, false, ecb, k.variant, in)
	if err != nil {
		return nil, fmt.Errorf("IPEK right half under the BDK variant: %w", err)
	}
	defer paycrypto.Wipe(right)
	ipek := make([]byte, 0, 16)
	ipek = append(append(ipek, left...), right...)
	defer paycrypto.Wipe(ipek)
	return paycrypto.TDESPINKeyFromIPEK(ipek, ksn)
}

// AES DUKPT (ANSI X9.24-3:2017) runs entirely in the token: every key is
// AES-ECB of derivation data under its parent, which is exactly
// CKM_AES_ECB_ENCRYPT_DATA (C_DeriveKey; SoftHSM2 keeps the leftmost
// CKA_VALUE_LEN bytes, as X9.24-3 does). paycrypto.AESDerivations gives
// the steps (derivation data, key type and length); the initial key, the
// intermediate derivation keys and the PIN encryption working key are
// sensitive, non-extractable session objects, destroyed after the
// translation.

// aesDUKPTPINKey derives, in the token, the AES-128 PIN encryption working
// key (the software backend's choice) of an AES BDK for ksn. destroy
// removes every derived object; call it even on error.
func (h *HSM) aesDUKPTPINKey(s p11.SessionHandle, k *key, ksn []byte) (wk p11.ObjectHandle, destroy func(), err error) {
	var objs []p11.ObjectHandle
	destroy = func() {
		for _, o := range objs {
			_ = h.ctx.DestroyObject(s, o)
		}
	}
	bdkType, err := paycrypto.AESKeyTypeOf(k.size)
	if err != nil {
		return 0, destroy, err
	}
	steps, err := paycrypto.AESDerivations(ksn, bdkType, paycrypto.PINEncryption, paycrypto.AES128)
	if err != nil {
		return 0, destroy, err
	}
	cur := k.obj
	for i, d := range steps {
		if cur, err = h.aesDerive(s, cur, d, i == len(steps)-1); err != nil {
			return 0, destroy, fmt.Errorf("deriving X9.24-3 key %d of %d (%v): %w", i+1, len(steps), d.Usage, err)
		}
		objs = append(objs, cur)
	}
	return cur, destroy, nil
}

// aesDerive derives the key of one X9.24-3 step under base, as a
// sensitive session object: a derivation key, or (final) the working key,
// which may only decipher ECB.
func (h *HSM) aesDerive(s p11.SessionHandle, base p11.ObjectHandle, d paycrypto.AESDerivation, final bool) (p11.ObjectHandle, error) {
	param, free := derivationData(d.Data)
	defer free()
	use, allowed := uint(p11.CKA_DERIVE), uint(p11.CKM_AES_ECB_ENCRYPT_DATA)
	if final {
		use, allowed = p11.CKA_DECRYPT, p11.CKM_AES_ECB
	}
	return h.ctx.DeriveKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_ECB_ENCRYPT_DATA, param)}, base,
		append(secretKey(p11.CKK_AES, false, allowed), p11.NewAttribute(p11.CKA_VALUE_LEN, d.KeyLen), p11.NewAttribute(use, true)))
}
