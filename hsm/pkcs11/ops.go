//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// panAAD binds a PAN ciphertext to its key's label and version; the same
// AAD as the software backend's.
func panAAD(ref hsm.KeyRef) []byte {
	return []byte("pan|" + ref.Label + "|" + strconv.Itoa(ref.Version))
}

// EncryptPAN encrypts pan in the token with CKM_AES_GCM under the current
// version of the data key: a random 12-byte nonce, a 128-bit tag, the AAD
// "pan|<label>|<version>"; the result is nonce|ciphertext|tag, the software
// backend's layout, so a store can hold either backend's output.
func (h *HSM) EncryptPAN(ctx context.Context, ref hsm.KeyRef, pan string) (_ hsm.EncryptedPAN, err error) {
	if pan == "" {
		return hsm.EncryptedPAN{}, fmt.Errorf("pkcs11 hsm: encrypt PAN with key %q: empty PAN", ref.Label)
	}
	s, err := h.get(ctx)
	if err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("pkcs11 hsm: encrypt PAN with key %q: %w", ref.Label, err)
	}
	defer func() { h.put(s, err) }()
	k, err := h.lookup(s, hsm.KeyRef{Label: ref.Label}, hsm.UsagePANData)
	if err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("pkcs11 hsm: encrypt PAN: %w", err)
	}
	nonce := make([]byte, gcmNonceSize, gcmNonceSize+len(pan)+gcmTagSize)
	if _, err := rand.Read(nonce); err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("pkcs11 hsm: encrypt PAN with key %q: nonce: %w", ref.Label, err)
	}
	params := p11.NewGCMParams(nonce, panAAD(k.ref()), gcmTagSize*8)
	defer params.Free()
	clearPAN := []byte(pan)
	ct, err := h.crypt(s, false, p11.NewMechanism(p11.CKM_AES_GCM, params), k.obj, clearPAN)
	clear(clearPAN)
	if err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("pkcs11 hsm: encrypt PAN with key %q version %d: %w", k.info.Label, k.info.Version, err)
	}
	return hsm.EncryptedPAN{Key: k.ref(), Ciphertext: append(nonce, ct...)}, nil
}

// DecryptPAN decrypts in the token with CKM_AES_GCM under the version of
// the data key that encrypted it; hsm.ErrDecrypt when the ciphertext was
// altered or belongs to another key or version.
func (h *HSM) DecryptPAN(ctx context.Context, enc hsm.EncryptedPAN) (_ string, err error) {
	s, err := h.get(ctx)
	if err != nil {
		return "", fmt.Errorf("pkcs11 hsm: decrypt PAN with key %q: %w", enc.Key.Label, err)
	}
	defer func() { h.put(s, err) }()
	k, err := h.lookup(s, enc.Key, hsm.UsagePANData)
	if err != nil {
		return "", fmt.Errorf("pkcs11 hsm: decrypt PAN: %w", err)
	}
	ct := enc.Ciphertext
	if len(ct) < gcmNonceSize+gcmTagSize {
		return "", fmt.Errorf("pkcs11 hsm: decrypt PAN with key %q version %d: ciphertext too short: %w", k.info.Label, k.info.Version, hsm.ErrDecrypt)
	}
	params := p11.NewGCMParams(ct[:gcmNonceSize], panAAD(k.ref()), gcmTagSize*8)
	defer params.Free()
	pt, err := h.crypt(s, true, p11.NewMechanism(p11.CKM_AES_GCM, params), k.obj, ct[gcmNonceSize:])
	if err != nil {
		if sessionGone(err) {
			return "", fmt.Errorf("pkcs11 hsm: decrypt PAN with key %q version %d: %w", k.info.Label, k.info.Version, err)
		}
		// The token says why (CKR_ENCRYPTED_DATA_INVALID and the like);
		// the caller only needs to know it does not decrypt.
		return "", fmt.Errorf("pkcs11 hsm: decrypt PAN with key %q version %d: %w (%w)", k.info.Label, k.info.Version, hsm.ErrDecrypt, err)
	}
	pan := string(pt)
	clear(pt)
	return pan, nil
}

// HashPAN is HMAC-SHA-256 of pan, computed in the token with
// CKM_SHA256_HMAC under the hash key (version 0: current).
func (h *HSM) HashPAN(ctx context.Context, ref hsm.KeyRef, pan string) (_ hsm.PANHash, err error) {
	if pan == "" {
		return hsm.PANHash{}, fmt.Errorf("pkcs11 hsm: hash PAN with key %q: empty PAN", ref.Label)
	}
	s, err := h.get(ctx)
	if err != nil {
		return hsm.PANHash{}, fmt.Errorf("pkcs11 hsm: hash PAN with key %q: %w", ref.Label, err)
	}
	defer func() { h.put(s, err) }()
	k, err := h.lookup(s, ref, hsm.UsagePANHash)
	if err != nil {
		return hsm.PANHash{}, fmt.Errorf("pkcs11 hsm: hash PAN: %w", err)
	}
	clearPAN := []byte(pan)
	sum, err := h.sign(s, p11.CKM_SHA256_HMAC, k.obj, clearPAN)
	clear(clearPAN)
	if err != nil {
		return hsm.PANHash{}, fmt.Errorf("pkcs11 hsm: hash PAN with key %q version %d: %w", k.info.Label, k.info.Version, err)
	}
	return hsm.PANHash{Key: k.ref(), Hash: sum}, nil
}

// GenerateMAC returns the 8-byte MAC: the retail MAC under a double-length
// TDES key, or AES-CMAC (CKM_AES_CMAC) truncated to 8 bytes.
func (h *HSM) GenerateMAC(ctx context.Context, req hsm.MACRequest) (_ []byte, err error) {
	s, err := h.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: MAC with key %q: %w", req.Key.Label, err)
	}
	defer func() { h.put(s, err) }()
	return h.mac(s, req)
}

// VerifyMAC recomputes the MAC in the token and compares it in constant
// time; hsm.ErrMACMismatch when it differs, in length too. (SoftHSM2 has
// no CKM_AES_CMAC_GENERAL, so an 8-byte CMAC cannot be C_Verify'd; the MAC
// is not secret, so comparing here costs nothing.)
func (h *HSM) VerifyMAC(ctx context.Context, req hsm.VerifyMACRequest) (err error) {
	s, err := h.get(ctx)
	if err != nil {
		return fmt.Errorf("pkcs11 hsm: verify MAC with key %q: %w", req.Key.Label, err)
	}
	defer func() { h.put(s, err) }()
	mac, err := h.mac(s, req.MACRequest)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(mac, req.MAC) != 1 {
		return fmt.Errorf("pkcs11 hsm: verify MAC with key %q: %w", req.Key.Label, hsm.ErrMACMismatch)
	}
	return nil
}

func (h *HSM) mac(s p11.SessionHandle, req hsm.MACRequest) ([]byte, error) {
	k, err := h.lookup(s, req.Key, hsm.UsageMAC)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: MAC: %w", err)
	}
	if err := hsm.CheckMACKey(k.info, req.Algorithm); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: %w", err)
	}
	var mac []byte
	if req.Algorithm == hsm.RetailMAC {
		mac, err = h.retailMAC(s, k, req.Data)
	} else {
		mac, err = h.sign(s, p11.CKM_AES_CMAC, k.obj, req.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: %s MAC with key %q version %d: %w", req.Algorithm, k.info.Label, k.info.Version, err)
	}
	if len(mac) < 8 {
		return nil, fmt.Errorf("pkcs11 hsm: %s MAC with key %q version %d: token returned %d bytes", req.Algorithm, k.info.Label, k.info.Version, len(mac))
	}
	return mac[:8], nil
}

// retailMAC is ISO 9797-1 MAC algorithm 3 with padding method 1, as
// paycrypto.RetailMAC, in the token: single-DES CBC under K1 over all
// blocks but the last is CKM_DES3_CBC (zero IV) under the K1|K1 object;
// the last step, E_K1(D_K2(E_K1(last XOR chaining value))), is TDES-EDE
// under K1|K2, so CKM_DES3_CBC with the chaining value as IV. The chaining
// value (single-DES ciphertexts under K1) passes through host memory
// between the two calls (PKCS#11 has no retail-MAC mechanism) and is wiped.
func (h *HSM) retailMAC(s p11.SessionHandle, k *key, data []byte) ([]byte, error) {
	if !k.tdesMAC() || k.k1 == 0 {
		return nil, errors.New("not a TDES MAC key")
	}
	n := (len(data) + 7) / 8
	if n == 0 {
		n = 1
	}
	padded := make([]byte, n*8)
	copy(padded, data)
	defer clear(padded)
	iv := make([]byte, 8)
	if n > 1 {
		cbc, err := h.crypt(s, false, p11.NewMechanism(p11.CKM_DES3_CBC, iv), k.k1, padded[:8*(n-1)])
		if err != nil {
			return nil, fmt.Errorf("CBC under K1: %w", err)
		}
		defer clear(cbc)
		if len(cbc) != 8*(n-1) {
			return nil, fmt.Errorf("CBC under K1 returned %d bytes for %d", len(cbc), 8*(n-1))
		}
		iv = cbc[len(cbc)-8:]
	}
	mac, err := h.crypt(s, false, p11.NewMechanism(p11.CKM_DES3_CBC, iv), k.obj, padded[8*(n-1):])
	if err != nil {
		return nil, fmt.Errorf("final TDES block: %w", err)
	}
	return mac, nil
}
