//go:build cgo

package pkcs11

import (
	"context"
	"crypto/des"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm"
)

// TranslatePIN re-encrypts a PIN block from From to To. From is a TPK or
// ZPK, or a BDK with a KSN (10 bytes: TDES DUKPT PIN key; 12 bytes: AES
// DUKPT AES-128 PIN encryption working key); To is a TPK or ZPK. ISO 0
// needs TDES keys, ISO 4 AES keys. The block is deciphered in the token,
// the PIN decoded and re-encoded here (the clear block and PIN digits are
// wiped before returning), and the new block enciphered in the token;
// under TDES DUKPT the block is deciphered here with the PIN key derived
// here (see tdesDUKPTPINKey). hsm.ErrInvalidPINBlock when the block does
// not decode, without saying why, so it cannot serve as an oracle.
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
		if errors.Is(err, errPINBlock) {
			return nil, fmt.Errorf("pkcs11 hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, hsm.ErrInvalidPINBlock)
		}
		return nil, fmt.Errorf("pkcs11 hsm: translate PIN from key %q version %d: %w", from.info.Label, from.info.Version, err)
	}
	defer clear(pin)
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
	case n == tdesKSNLen && k.info.Algorithm == hsm.TDES, n == aesKSNLen && k.info.Algorithm == hsm.AES:
		return nil
	case n == tdesKSNLen || n == aesKSNLen:
		return fmt.Errorf("a %d-byte KSN does not go with a %s BDK: %w", n, k.info.Algorithm, hsm.ErrWrongUsage)
	default:
		return fmt.Errorf("KSN must be 10 bytes (TDES DUKPT) or 12 (AES DUKPT), got %d: %w", n, hsm.ErrInvalidPINBlock)
	}
}

// decryptPIN returns the PIN digit values (0..9) of req.PINBlock under
// from; errors that mean "does not decode" wrap errPINBlock.
func (h *HSM) decryptPIN(s p11.SessionHandle, from *key, req hsm.TranslatePINRequest) ([]byte, error) {
	if err := checkPAN(req.PAN); err != nil {
		return nil, err
	}
	block := req.PINBlock
	switch f := req.From.Format; {
	case f == hsm.ISO0 && len(block) != 8:
		return nil, fmt.Errorf("%w: format 0 block must be 8 bytes, got %d", errPINBlock, len(block))
	case f == hsm.ISO4 && len(block) != 16:
		return nil, fmt.Errorf("%w: format 4 block must be 16 bytes, got %d", errPINBlock, len(block))
	}
	switch {
	case from.info.Usage == hsm.UsageBDK && from.info.Algorithm == hsm.TDES:
		pinKey, err := h.tdesDUKPTPINKey(s, from, req.From.KSN)
		if err != nil {
			if p11Error(err) {
				return nil, fmt.Errorf("deriving the DUKPT PIN key: %w", err)
			}
			return nil, fmt.Errorf("%w: deriving the DUKPT PIN key: %v", errPINBlock, err)
		}
		defer clear(pinKey)
		c, err := des.NewTripleDESCipher(append(slices.Clone(pinKey), pinKey[:8]...))
		if err != nil {
			return nil, err
		}
		clearBlock := make([]byte, 8)
		defer clear(clearBlock)
		c.Decrypt(clearBlock, block)
		return pinFromISO0(clearBlock, req.PAN)

	case from.info.Usage == hsm.UsageBDK:
		wk, destroy, err := h.aesDUKPTPINKey(s, from, req.From.KSN)
		defer destroy()
		if err != nil {
			if p11Error(err) {
				return nil, fmt.Errorf("deriving the DUKPT PIN key: %w", err)
			}
			return nil, fmt.Errorf("%w: deriving the DUKPT PIN key: %v", errPINBlock, err)
		}
		return h.decryptISO4(s, wk, block, req.PAN)

	case req.From.Format == hsm.ISO4:
		return h.decryptISO4(s, from.obj, block, req.PAN)

	default:
		clearBlock, err := h.crypt(s, true, p11.NewMechanism(p11.CKM_DES3_ECB, nil), from.obj, block)
		if err != nil {
			return nil, fmt.Errorf("deciphering the block: %w", err)
		}
		defer clear(clearBlock)
		return pinFromISO0(clearBlock, req.PAN)
	}
}

// decryptISO4 deciphers a format 4 block under the AES key object: D_K,
// XOR the PAN field (here), D_K again, decode.
func (h *HSM) decryptISO4(s p11.SessionHandle, key p11.ObjectHandle, block []byte, pan string) ([]byte, error) {
	ecb := p11.NewMechanism(p11.CKM_AES_ECB, nil)
	mid, err := h.crypt(s, true, ecb, key, block)
	if err != nil {
		return nil, fmt.Errorf("deciphering the block: %w", err)
	}
	defer clear(mid)
	xorInto(mid, panFieldISO4(pan))
	field, err := h.crypt(s, true, ecb, key, mid)
	if err != nil {
		return nil, fmt.Errorf("deciphering the PIN field: %w", err)
	}
	defer clear(field)
	return pinFromField(field, 4, 0xA)
}

// encryptPIN builds the block for the PIN digits and enciphers it under
// the key object in the token.
func (h *HSM) encryptPIN(s p11.SessionHandle, to *key, f hsm.PINFormat, pin []byte, pan string) ([]byte, error) {
	if f == hsm.ISO0 {
		block, err := pinBlockISO0(pin, pan)
		if err != nil {
			return nil, err
		}
		defer clear(block)
		return h.crypt(s, false, p11.NewMechanism(p11.CKM_DES3_ECB, nil), to.obj, block)
	}
	random := make([]byte, 8)
	if _, err := rand.Read(random); err != nil {
		return nil, fmt.Errorf("reading the random fill: %w", err)
	}
	field, err := pinFieldISO4(pin, random)
	if err != nil {
		return nil, err
	}
	defer clear(field)
	ecb := p11.NewMechanism(p11.CKM_AES_ECB, nil)
	mid, err := h.crypt(s, false, ecb, to.obj, field)
	if err != nil {
		return nil, err
	}
	xorInto(mid, panFieldISO4(pan))
	return h.crypt(s, false, ecb, to.obj, mid)
}

// p11Error reports whether err came from the module (rather than from a
// KSN the BDK cannot derive from).
func p11Error(err error) bool {
	var e p11.Error
	return errors.As(err, &e)
}
