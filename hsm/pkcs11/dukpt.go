//go:build cgo

package pkcs11

import (
	"crypto/des"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	p11 "github.com/miekg/pkcs11"
)

// TDES DUKPT (ANSI X9.24-1:2009), split between the token and the host.
// The token enciphers the IPEK input under the BDK object and under its
// variant object (the two halves of the IPEK); the walk from the IPEK to
// the transaction key for the KSN's counter XORs key halves into data and
// keys, which no SoftHSM2 mechanism does on objects, so it runs here, with
// the same math as paycrypto.TDESPINKey.

const (
	tdesKSNLen      = 10
	tdesCounterBits = 21
	tdesMaxOneBits  = 10
	aesKSNLen       = 12
	aesMaxOneBits   = 16
)

// tdesPINVariant turns the transaction key into the PIN encryption key.
var tdesPINVariant = [16]byte{7: 0xFF, 15: 0xFF}

// ipekInput is the leftmost 8 bytes of the KSN with its counter cleared.
func ipekInput(ksn []byte) []byte {
	r := slices.Clone(ksn[:8])
	r[7] &^= 0x1F
	return r
}

func tdesCounter(ksn []byte) uint32 {
	return (uint32(ksn[7])<<16 | uint32(ksn[8])<<8 | uint32(ksn[9])) & (1<<tdesCounterBits - 1)
}

// checkTDESCounter accepts what an originating device can send: non-zero,
// at most 10 one bits.
func checkTDESCounter(ksn []byte) error {
	c := tdesCounter(ksn)
	if c == 0 {
		return fmt.Errorf("TDES DUKPT transaction counter is zero")
	}
	if n := bits.OnesCount32(c); n > tdesMaxOneBits {
		return fmt.Errorf("TDES DUKPT transaction counter has %d one bits, at most %d allowed", n, tdesMaxOneBits)
	}
	return nil
}

// tdesPINKeyFromIPEK walks from the 16-byte IPEK to the transaction key of
// the KSN's counter and applies the PIN variant. The result is a fresh
// slice the caller wipes; intermediate keys are wiped here (crypto/des key
// schedules cannot be, and are left to the collector).
func tdesPINKeyFromIPEK(ipek, ksn []byte) ([]byte, error) {
	if err := checkTDESCounter(ksn); err != nil {
		return nil, err
	}
	counter := tdesCounter(ksn)
	key := slices.Clone(ipek)
	var reg [8]byte
	copy(reg[:], ksn[2:])
	reg[5] &^= 0x1F
	reg[6], reg[7] = 0, 0
	for bit := uint32(1) << (tdesCounterBits - 1); bit != 0; bit >>= 1 {
		if counter&bit == 0 {
			continue
		}
		reg[5] |= byte(bit >> 16)
		reg[6] |= byte(bit >> 8)
		reg[7] |= byte(bit)
		next, err := nonReversibleKey(key, reg[:])
		clear(key)
		if err != nil {
			return nil, err
		}
		key = next
	}
	xorInto(key, tdesPINVariant[:])
	return key, nil
}

// nonReversibleKey is the X9.24-1 non-reversible key generation process.
func nonReversibleKey(key, data []byte) ([]byte, error) {
	out := make([]byte, 16)
	half := func(k, dst []byte) error {
		c, err := des.NewCipher(k[:8])
		if err != nil {
			return err
		}
		for i := range 8 {
			dst[i] = data[i] ^ k[8+i]
		}
		c.Encrypt(dst, dst)
		xorInto(dst, k[8:])
		return nil
	}
	if err := half(key, out[8:]); err != nil {
		return nil, err
	}
	variant := slices.Clone(key)
	defer clear(variant)
	xorInto(variant, tdesKeyVariant[:])
	if err := half(variant, out[:8]); err != nil {
		return nil, err
	}
	return out, nil
}

// tdesDUKPTPINKey derives the PIN encryption key of a TDES BDK for ksn:
// the IPEK halves in the token, the rest here.
func (h *HSM) tdesDUKPTPINKey(s p11.SessionHandle, k *key, ksn []byte) ([]byte, error) {
	if err := checkTDESCounter(ksn); err != nil {
		return nil, err
	}
	in := ipekInput(ksn)
	ecb := p11.NewMechanism(p11.CKM_DES3_ECB, nil)
	left, err := h.crypt(s, false, ecb, k.obj, in)
	if err != nil {
		return nil, fmt.Errorf("IPEK left half under the BDK: %w", err)
	}
	defer clear(left)
	right, err := h.crypt(s, false, ecb, k.variant, in)
	if err != nil {
		return nil, fmt.Errorf("IPEK right half under the BDK variant: %w", err)
	}
	defer clear(right)
	ipek := append(slices.Clone(left), right...)
	defer clear(ipek)
	return tdesPINKeyFromIPEK(ipek, ksn)
}

// AES DUKPT (ANSI X9.24-3:2017) runs entirely in the token: every key is
// AES-ECB of derivation data under its parent, which is exactly
// CKM_AES_ECB_ENCRYPT_DATA (C_DeriveKey; SoftHSM2 keeps the leftmost
// CKA_VALUE_LEN bytes, as X9.24-3 does). The initial key, the intermediate
// derivation keys and the PIN encryption working key are sensitive,
// non-extractable session objects, destroyed after the translation.

// X9.24-3 key usage indicators and algorithm indicators used here.
const (
	aesUsageKeyDerivation = 0x8000
	aesUsageInitialKey    = 0x8001
	aesUsagePINEncryption = 0x1000
	aesAlgAES128          = 2
)

// aesAlgorithm returns the X9.24-3 algorithm indicator of an AES key size.
func aesAlgorithm(size int) uint16 {
	switch size {
	case 24:
		return 3
	case 32:
		return 4
	}
	return aesAlgAES128
}

// aesDerivationData is the derivation data for a key of size bytes: one
// 16-byte block per 16 bytes of key, differing in the block counter.
func aesDerivationData(usage, alg uint16, size int, tail []byte) []byte {
	n := (size + 15) / 16
	data := make([]byte, 16*n)
	for i := range n {
		b := data[16*i : 16*(i+1)]
		b[0] = 0x01
		b[1] = byte(i + 1)
		binary.BigEndian.PutUint16(b[2:], usage)
		binary.BigEndian.PutUint16(b[4:], alg)
		binary.BigEndian.PutUint16(b[6:], uint16(size*8))
		copy(b[8:], tail)
	}
	return data
}

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
	counter := binary.BigEndian.Uint32(ksn[8:])
	if counter == 0 {
		return 0, destroy, fmt.Errorf("AES DUKPT transaction counter is zero")
	}
	if n := bits.OnesCount32(counter); n > aesMaxOneBits {
		return 0, destroy, fmt.Errorf("AES DUKPT transaction counter has %d one bits, at most %d allowed", n, aesMaxOneBits)
	}
	derive := func(base p11.ObjectHandle, usage, alg uint16, size int, tail []byte, final bool) (p11.ObjectHandle, error) {
		param, free := derivationData(aesDerivationData(usage, alg, size, tail))
		defer free()
		use, allowed := uint(p11.CKA_DERIVE), uint(p11.CKM_AES_ECB_ENCRYPT_DATA)
		if final {
			use, allowed = p11.CKA_DECRYPT, p11.CKM_AES_ECB
		}
		o, err := h.ctx.DeriveKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_ECB_ENCRYPT_DATA, param)}, base, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_VALUE_LEN, size),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(use, true),
			p11.NewAttribute(p11.CKA_ALLOWED_MECHANISMS, ulongs([]uint{allowed})),
		})
		if err != nil {
			return 0, err
		}
		objs = append(objs, o)
		return o, nil
	}
	alg := aesAlgorithm(k.size)
	cur, err := derive(k.obj, aesUsageInitialKey, alg, k.size, ksn[:8], false)
	if err != nil {
		return 0, destroy, fmt.Errorf("deriving the initial key: %w", err)
	}
	tail := slices.Clone(ksn[4:12])
	var working uint32
	for bit := uint32(1) << 31; bit != 0; bit >>= 1 {
		if counter&bit == 0 {
			continue
		}
		working |= bit
		binary.BigEndian.PutUint32(tail[4:], working)
		if cur, err = derive(cur, aesUsageKeyDerivation, alg, k.size, tail, false); err != nil {
			return 0, destroy, fmt.Errorf("deriving an intermediate derivation key: %w", err)
		}
	}
	if wk, err = derive(cur, aesUsagePINEncryption, aesAlgAES128, 16, ksn[4:12], true); err != nil {
		return 0, destroy, fmt.Errorf("deriving the PIN encryption key: %w", err)
	}
	return wk, destroy, nil
}
