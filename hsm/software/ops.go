package software

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// panAAD binds a PAN ciphertext to its key's label and version.
func panAAD(ref hsm.KeyRef) []byte {
	return []byte("pan|" + ref.Label + "|" + strconv.Itoa(ref.Version))
}

// EncryptPAN encrypts pan with AES-256-GCM under the current version of the
// data key: a random 12-byte nonce, ciphertext nonce|ct|tag.
func (h *HSM) EncryptPAN(ctx context.Context, ref hsm.KeyRef, pan string) (hsm.EncryptedPAN, error) {
	if err := ctx.Err(); err != nil {
		return hsm.EncryptedPAN{}, err
	}
	if pan == "" {
		return hsm.EncryptedPAN{}, fmt.Errorf("software hsm: encrypt PAN with key %q: empty PAN", ref.Label)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, err := h.lookup(hsm.KeyRef{Label: ref.Label}, hsm.UsagePANData)
	if err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("software hsm: encrypt PAN: %w", err)
	}
	ns := k.aead.NonceSize()
	out := make([]byte, ns, ns+len(pan)+k.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("software hsm: encrypt PAN with key %q: nonce: %w", ref.Label, err)
	}
	kr := k.ref()
	out = k.aead.Seal(out, out, []byte(pan), panAAD(kr))
	return hsm.EncryptedPAN{Key: kr, Ciphertext: out}, nil
}

// DecryptPAN decrypts a PAN encrypted by EncryptPAN under any version of
// its key. ErrDecrypt when the ciphertext was altered or belongs to
// another key or version.
func (h *HSM) DecryptPAN(ctx context.Context, enc hsm.EncryptedPAN) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, err := h.lookup(enc.Key, hsm.UsagePANData)
	if err != nil {
		return "", fmt.Errorf("software hsm: decrypt PAN: %w", err)
	}
	ns := k.aead.NonceSize()
	if len(enc.Ciphertext) < ns+k.aead.Overhead() {
		return "", fmt.Errorf("software hsm: decrypt PAN with key %q version %d: ciphertext too short: %w", k.info.Label, k.info.Version, hsm.ErrDecrypt)
	}
	ct := enc.Ciphertext
	pan, err := k.aead.Open(nil, ct[:ns], ct[ns:], panAAD(k.ref()))
	if err != nil {
		return "", fmt.Errorf("software hsm: decrypt PAN with key %q version %d: %w", k.info.Label, k.info.Version, hsm.ErrDecrypt)
	}
	s := string(pan)
	clear(pan)
	return s, nil
}

// HashPAN is HMAC-SHA-256 of pan under the hash key (version 0: current).
func (h *HSM) HashPAN(ctx context.Context, ref hsm.KeyRef, pan string) (hsm.PANHash, error) {
	if err := ctx.Err(); err != nil {
		return hsm.PANHash{}, err
	}
	if pan == "" {
		return hsm.PANHash{}, fmt.Errorf("software hsm: hash PAN with key %q: empty PAN", ref.Label)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, err := h.lookup(ref, hsm.UsagePANHash)
	if err != nil {
		return hsm.PANHash{}, fmt.Errorf("software hsm: hash PAN: %w", err)
	}
	m := hmac.New(sha256.New, k.material)
	m.Write([]byte(pan))
	return hsm.PANHash{Key: k.ref(), Hash: m.Sum(nil)}, nil
}

// TranslatePIN decrypts the PIN block under From and re-encrypts the PIN
// under To. From is a TPK or ZPK, or a BDK with a KSN (10 bytes: TDES DUKPT
// PIN key; 12 bytes: AES DUKPT PIN-encryption working key, AES-128, the
// BDK's type from its size); To is a TPK or ZPK. ISO 0 needs TDES keys,
// ISO 4 AES keys. ErrInvalidPINBlock when the block does not decode; the
// error never says why, so that it cannot serve as a decryption oracle.
func (h *HSM) TranslatePIN(ctx context.Context, req hsm.TranslatePINRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	from, err := h.lookup(req.From.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN, hsm.UsageBDK)
	if err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN from: %w", err)
	}
	to, err := h.lookup(req.To.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN)
	if err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN to: %w", err)
	}
	if err := checkPINKey(from, req.From); err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, err)
	}
	if err := checkPINKey(to, req.To); err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN to key %q version %d: %w", to.info.Label, to.info.Version, err)
	}

	fromKey, err := pinKeyMaterial(from, req.From.KSN)
	if err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, err)
	}
	var pin string
	if req.From.Format == hsm.ISO4 {
		pin, err = paycrypto.DecryptISO4(fromKey, req.PINBlock, req.PAN)
	} else {
		pin, err = paycrypto.DecryptISO0(fromKey, req.PINBlock, req.PAN)
	}
	if len(req.From.KSN) > 0 {
		clear(fromKey) // a derived key; static keys are the store's own
	}
	if err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, hsm.ErrInvalidPINBlock)
	}
	// The clear PIN is a Go string and cannot be wiped; it lives only until
	// the next collection.
	var out []byte
	if req.To.Format == hsm.ISO4 {
		out, err = paycrypto.EncryptISO4(to.material, pin, req.PAN, rand.Reader)
	} else {
		out, err = paycrypto.EncryptISO0(to.material, pin, req.PAN)
	}
	if err != nil {
		return nil, fmt.Errorf("software hsm: translate PIN to key %q version %d: encrypting: %w", to.info.Label, to.info.Version, err)
	}
	return out, nil
}

// checkPINKey checks that a key suits a PINKey: a KSN exactly with a BDK,
// and the cipher the format needs (ISO 0: TDES, ISO 4: AES).
func checkPINKey(k *key, pk hsm.PINKey) error {
	if err := hsm.CheckPINKey(k.info, pk); err != nil {
		return err
	}
	return nil
}

// pinKeyMaterial returns the key a PIN block is encrypted under: the
// static key itself, or the DUKPT PIN key derived from the BDK for the KSN
// (a fresh slice the caller wipes).
func pinKeyMaterial(k *key, ksn []byte) ([]byte, error) {
	if k.info.Usage != hsm.UsageBDK {
		return k.material, nil
	}
	var (
		derived []byte
		err     error
	)
	switch {
	case len(ksn) == 10 && k.info.Algorithm == hsm.TDES:
		derived, err = paycrypto.TDESPINKey(k.material, ksn)
	case len(ksn) == 12 && k.info.Algorithm == hsm.AES:
		var bdkType paycrypto.AESKeyType
		switch len(k.material) {
		case 16:
			bdkType = paycrypto.AES128
		case 24:
			bdkType = paycrypto.AES192
		default:
			bdkType = paycrypto.AES256
		}
		derived, err = paycrypto.AESWorkingKey(k.material, ksn, bdkType, paycrypto.PINEncryption, paycrypto.AES128)
	case len(ksn) == 10 || len(ksn) == 12:
		return nil, fmt.Errorf("a %d-byte KSN does not go with a %s BDK: %w", len(ksn), k.info.Algorithm, hsm.ErrWrongUsage)
	default:
		return nil, fmt.Errorf("KSN must be 10 bytes (TDES DUKPT) or 12 (AES DUKPT), got %d: %w", len(ksn), hsm.ErrInvalidPINBlock)
	}
	if err != nil {
		// A KSN the BDK cannot derive from (counter zero or with too many
		// one bits): nothing decodes under it.
		return nil, fmt.Errorf("deriving the DUKPT key: %w", hsm.ErrInvalidPINBlock)
	}
	return derived, nil
}

// GenerateMAC returns the 8-byte MAC: the retail MAC under a double-length
// TDES key, or AES-CMAC truncated to 8 bytes.
func (h *HSM) GenerateMAC(ctx context.Context, req hsm.MACRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.mac(req)
}

// VerifyMAC recomputes the MAC and compares it in constant time;
// ErrMACMismatch when it differs (including in length).
func (h *HSM) VerifyMAC(ctx context.Context, req hsm.VerifyMACRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	mac, err := h.mac(req.MACRequest)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(mac, req.MAC) != 1 {
		return fmt.Errorf("software hsm: verify MAC with key %q: %w", req.Key.Label, hsm.ErrMACMismatch)
	}
	return nil
}

// mac computes a MAC; callers hold mu for reading.
func (h *HSM) mac(req hsm.MACRequest) ([]byte, error) {
	k, err := h.lookup(req.Key, hsm.UsageMAC)
	if err != nil {
		return nil, fmt.Errorf("software hsm: MAC: %w", err)
	}
	if err := hsm.CheckMACKey(k.info, req.Algorithm); err != nil {
		return nil, fmt.Errorf("software hsm: %w", err)
	}
	var mac []byte
	if req.Algorithm == hsm.RetailMAC {
		mac, err = paycrypto.RetailMAC(k.material, req.Data)
	} else {
		mac, err = paycrypto.AESCMAC(k.material, req.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("software hsm: MAC with key %q version %d: %w", k.info.Label, k.info.Version, err)
	}
	return mac[:8], nil
}
