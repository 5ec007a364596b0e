//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// TranslatePIN re-encrypts a PIN block from From to To. From is a TPK or
// ZPK, or a BDK with a KSN (10 bytes: TDES DUKPT PIN key; 12 bytes: AES
// DUKPT AES-128 PIN encryption working key); To is a TPK or ZPK. ISO 0
// needs TDES keys, ISO 4 AES keys. The block is deciphered in the token,
// the PIN decoded and re-encoded here by paycrypto's []byte codec (the
// clear block and PIN digits are wiped before returning), and the new
// block enciphered in the token; under TDES DUKPT the block is deciphered
// here with the PIN key derived here (see tdesDUKPTPINKey).
// hsm.ErrInvalidPINBlock when the block does not decode, without saying
// why, so it cannot serve as an oracle.
func (h *HSM) TranslatePIN(ctx context.Context, req hsm.TranslatePINRequest) (_ []byte, err error) {
	s, err := h.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN from key %q: %w", req.From.Key.Label, err)
	}
	defer func() { h.put(s, err) }()
	from, err := h.lookup(s, req.From.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN, hsm.UsageBDK)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN from: %w", err)
	}
	to, err := h.lookup(s, req.To.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN to: %w", err)
	}
	if err := checkPINKey(from, req.From); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, err)
	}
	if err := checkPINKey(to, req.To); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN to key %q version %d: %w", to.info.Label, to.info.Version, err)
	}
	pin, err := h.decryptPIN(s, from, req)
	if err != nil {
		if !p11Error(err) {
			// Not the module's: the block, PAN or KSN cannot decode. The
			// reason stays here, so the error is no oracle.
			err = hsm.ErrInvalidPINBlock
		}
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, err)
	}
	defer paycrypto.Wipe(pin)
	out, err := h.encryptPIN(s, to, req.To.Format, pin, req.PAN)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN to key %q version %d: encrypting: %w", to.info.Label, to.info.Version, err)
	}
	return out, nil
}

// checkPINKey checks that a key suits a PINKey: a KSN exactly with a BDK,
// and the cipher the format needs (ISO 0: TDES, ISO 4: AES).
func checkPINKey(k *key, pk hsm.PINKey) error {
	if err := hsm.CheckPINKey(k.info, pk); err != nil {
		return err
	}
	if k.info.Usage != hsm.UsageBDK {
		return nil
	}
	switch n := len(pk.KSN); {
	case n == paycrypto.TDESKSNLen && k.info.Algorithm == hsm.TDES, n == paycrypto.AESKSNLen && k.info.Algorithm == hsm.AES:
		return nil
	case n == paycrypto.TDESKSNLen || n == paycrypto.AESKSNLen:
		return fmt.Errorf("a %d-byte KSN does not go with a %s BDK: %w", n, k.info.Algorithm, hsm.ErrWrongUsage)
	default:
		return fmt.Errorf("KSN must be 10 bytes (TDES DUKPT) or 12 (AES DUKPT), got %d: %w", n, hsm.ErrInvalidPINBlock)
	}
}

// decryptPIN returns the PIN digit values (0..9) of req.PINBlock under
// from, which the caller wipes. Any error but the module's means the block
// does not decode.
func (h *HSM) decryptPIN(s p11.SessionHandle, from *key, req hsm.TranslatePINRequest) ([]byte, error) {
	// Checked before the token derives any key for a block that cannot
	// decode (paycrypto checks again).
	if err := paycrypto.CheckPAN(req.PAN); err != nil {
		return nil, err
	}
	if n := len(req.PINBlock); req.From.Format == hsm.ISO0 && n != 8 || req.From.Format == hsm.ISO4 && n != 16 {
		return nil, fmt.Errorf("a format %d block of %d bytes", req.From.Format, n)
	}
	switch {
	case from.info.Usage == hsm.UsageBDK && from.info.Algorithm == hsm.TDES:
		pinKey, err := h.tdesDUKPTPINKey(s, from, req.From.KSN)
		if err != nil {
			return nil, fmt.Errorf("deriving the DUKPT PIN key: %w", err)
		}
		defer paycrypto.Wipe(pinKey)
		c, err := paycrypto.NewTDESCipher(pinKey)
		if err != nil {
			return nil, err
		}
		return paycrypto.DecipherISO0(paycrypto.DecryptBlocks(c), req.PINBlock, req.PAN)

	case from.info.Usage == hsm.UsageBDK:
		wk, destroy, err := h.aesDUKPTPINKey(s, from, req.From.KSN)
		defer destroy()
		if err != nil {
			return nil, fmt.Errorf("deriving the DUKPT PIN key: %w", err)
		}
		return paycrypto.DecipherISO4(h.inToken(s, true, p11.CKM_AES_ECB, wk), req.PINBlock, req.PAN)

	case req.From.Format == hsm.ISO4:
		return paycrypto.DecipherISO4(h.inToken(s, true, p11.CKM_AES_ECB, from.obj), req.PINBlock, req.PAN)

	default:
		return paycrypto.DecipherISO0(h.inToken(s, true, p11.CKM_DES3_ECB, from.obj), req.PINBlock, req.PAN)
	}
}

// encryptPIN builds the block for the PIN digits here and enciphers it
// under the key object in the token.
func (h *HSM) encryptPIN(s p11.SessionHandle, to *key, f hsm.PINFormat, pin []byte, pan string) ([]byte, error) {
	if f == hsm.ISO0 {
		return paycrypto.EncipherISO0(h.inToken(s, false, p11.CKM_DES3_ECB, to.obj), pin, pan)
	}
	random := make([]byte, 8)
	if _, err := rand.Read(random); err != nil {
		return nil, fmt.Errorf("reading the random fill: %w", err)
	}
	return paycrypto.EncipherISO4(h.inToken(s, false, p11.CKM_AES_ECB, to.obj), pin, random, pan)
}

// inToken is the paycrypto.BlockFunc running mech (an ECB mechanism) under
// the key object in the token.
func (h *HSM) inToken(s p11.SessionHandle, decrypt bool, mech uint, key p11.ObjectHandle) paycrypto.BlockFunc {
	m := p11.NewMechanism(mech, nil)
	return func(in []byte) ([]byte, error) { return h.crypt(s, decrypt, m, key, in) }
}

// p11Error reports whether err came from the module (rather than from a
// KSN the BDK cannot derive from).
func p11Error(err error) bool {
	var e p11.Error
	return errors.As(err, &e)
}
