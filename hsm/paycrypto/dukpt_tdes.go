package paycrypto

import (
	"crypto/des"
	"fmt"
	"math/bits"
)

// TDES DUKPT, ANSI X9.24-1:2009 Annex A (also X9.24-3:2017 for TDES).
//
// The 80-bit KSN is a 59-bit initial key serial number followed by a 21-bit
// transaction counter. The host derives the initial key (IPEK) from the BDK
// and the KSN with its counter cleared, then walks the counter's one bits
// from the most significant down, applying the non-reversible key
// generation process for each.

// TDESKSNLen is the length of a TDES DUKPT KSN in bytes.
const TDESKSNLen = 10

const (
	tdesCounterBits  = 21
	tdesCounterMask  = 1<<tdesCounterBits - 1
	tdesMaxOneBits   = 10 // an originating device never uses a counter with more
	tdesDoubleKeyLen = 16
)

var (
	// tdesKeyVariant is XORed into the BDK for the IPEK's right half and
	// into the key register inside the non-reversible process.
	tdesKeyVariant = [16]byte{0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0}
	// tdesPINVariant is the PIN encryption variant of the transaction key.
	tdesPINVariant = [16]byte{7: 0xFF, 15: 0xFF}
	// tdesMACRequestVariant is the request (and both-ways) MAC variant.
	tdesMACRequestVariant = [16]byte{6: 0xFF, 14: 0xFF}
)

// The walk on byte slices. A caller that keeps the BDK elsewhere (a
// PKCS#11 token) enciphers TDESIPEKInput under the BDK and under
// TDESBDKVariant of it there, joins the halves into the IPEK, and walks
// from it here with TDESTransactionKeyFromIPEK or TDESPINKeyFromIPEK. Keys
// returned are fresh slices the caller wipes (Wipe); the intermediate
// future keys of the walk are wiped here (crypto/des key schedules cannot
// be, and are left to the collector). Inputs are never modified.

func checkTDESKey(name string, key []byte) error {
	if len(key) != tdesDoubleKeyLen {
		return fmt.Errorf("paycrypto: TDES DUKPT %s must be %d bytes, got %d", name, tdesDoubleKeyLen, len(key))
	}
	return nil
}

func checkTDESKSNLen(ksn []byte) error {
	if len(ksn) != TDESKSNLen {
		return fmt.Errorf("paycrypto: TDES DUKPT KSN must be %d bytes, got %d", TDESKSNLen, len(ksn))
	}
	return nil
}

// tdesCounter returns the KSN's 21-bit transaction counter.
func tdesCounter(ksn []byte) uint32 {
	return (uint32(ksn[7])<<16 | uint32(ksn[8])<<8 | uint32(ksn[9])) & tdesCounterMask
}

// CheckTDESKSN checks a KSN a transaction key can be derived for: 10
// bytes, a non-zero counter with at most 10 one bits (an originating
// device never uses any other value).
func CheckTDESKSN(ksn []byte) error {
	if err := checkTDESKSNLen(ksn); err != nil {
		return err
	}
	counter := tdesCounter(ksn)
	if counter == 0 {
		return fmt.Errorf("paycrypto: TDES DUKPT transaction counter is zero")
	}
	if n := bits.OnesCount32(counter); n > tdesMaxOneBits {
		return fmt.Errorf("paycrypto: TDES DUKPT transaction counter %#x has %d one bits, at most %d allowed", counter, n, tdesMaxOneBits)
	}
	return nil
}

// TDESIPEKInput returns the 8 bytes the BDK enciphers into the IPEK's left
// half, and its variant (TDESBDKVariant) into the right half: the leftmost
// 8 bytes of the KSN with the counter cleared. It is not secret.
func TDESIPEKInput(ksn []byte) ([]byte, error) {
	if err := checkTDESKSNLen(ksn); err != nil {
		return nil, err
	}
	in := make([]byte, 8)
	copy(in, ksn[:8])
	in[7] &^= 0x1F // the counter's top 5 bits live in byte 7
	return in, nil
}

// TDESBDKVariant returns the 16-byte BDK XOR
// C0C0C0C000000000C0C0C0C000000000, the key that enciphers the IPEK's
// right half. The caller wipes it.
func TDESBDKVariant(bdk []byte) ([]byte, error) {
	if err := checkTDESKey("BDK", bdk); err != nil {
		return nil, err
	}
	variant := make([]byte, 16)
	copy(variant, bdk)
	xorInto(variant, tdesKeyVariant[:])
	return variant, nil
}

// TDESIPEK derives the 16-byte initial key (IPEK) from a 16-byte BDK and a
// 10-byte KSN (its counter is ignored): the left half is the TDES
// encryption of the leftmost 8 bytes of the counter-cleared KSN under the
// BDK, the right half the same under the BDK XOR C0C0C0C000000000C0C0C0C000000000.
func TDESIPEK(bdk, ksn []byte) ([]byte, error) {
	if err := checkTDESKey("BDK", bdk); err != nil {
		return nil, err
	}
	in, err := TDESIPEKInput(ksn)
	if err != nil {
		return nil, err
	}
	ipek := make([]byte, 16)
	left, err := NewTDESCipher(bdk)
	if err != nil {
		return nil, err
	}
	left.Encrypt(ipek[:8], in)

	variant, err := TDESBDKVariant(bdk)
	if err != nil {
		return nil, err
	}
	defer Wipe(variant)
	right, err := NewTDESCipher(variant)
	if err != nil {
		return nil, err
	}
	right.Encrypt(ipek[8:], in)
	return ipek, nil
}

// TDESTransactionKey returns the 16-byte transaction key (the future key
// register the originating device uses) for the KSN's counter. The counter
// must be non-zero and have at most 10 one bits, as an originating device
// never uses any other value.
func TDESTransactionKey(bdk, ksn []byte) ([]byte, error) {
	if err := checkTDESKey("BDK", bdk); err != nil {
		return nil, err
	}
	if err := CheckTDESKSN(ksn); err != nil {
		return nil, err
	}
	ipek, err := TDESIPEK(bdk, ksn)
	if err != nil {
		return nil, err
	}
	defer Wipe(ipek)
	return TDESTransactionKeyFromIPEK(ipek, ksn)
}

// TDESTransactionKeyFromIPEK walks from the 16-byte IPEK to the
// transaction key for the KSN's counter (checked as CheckTDESKSN does):
// the KSN register (the rightmost 64 bits of the KSN, counter cleared)
// takes the counter's one bits from the most significant down, and each
// step applies the non-reversible key generation process.
func TDESTransactionKeyFromIPEK(ipek, ksn []byte) ([]byte, error) {
	if err := checkTDESKey("IPEK", ipek); err != nil {
		return nil, err
	}
	if err := CheckTDESKSN(ksn); err != nil {
		return nil, err
	}
	counter := tdesCounter(ksn)
	key := make([]byte, 16)
	copy(key, ipek)
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
		Wipe(key)
		if err != nil {
			return nil, err
		}
		key = next
	}
	return key, nil
}

// TDESPINKeyFromIPEK returns the PIN encryption key for the KSN from the
// IPEK: the transaction key XOR 00000000000000FF00000000000000FF.
func TDESPINKeyFromIPEK(ipek, ksn []byte) ([]byte, error) {
	key, err := TDESTransactionKeyFromIPEK(ipek, ksn)
	if err != nil {
		return nil, err
	}
	xorInto(key, tdesPINVariant[:])
	return key, nil
}

// nonReversibleKey is the X9.24-1 non-reversible key generation process:
// the new right half is DES(keyL, data XOR keyR) XOR keyR, and the new left
// half is the same under the key XOR C0C0C0C000000000C0C0C0C000000000.
func nonReversibleKey(key, data []byte) ([]byte, error) {
	out := make([]byte, 16)
	half := func(k []byte, dst []byte) error {
		c, err := des.NewCipher(k[:8])
		if err != nil {
			return err
		}
		for i := 0; i < 8; i++ {
			dst[i] = data[i] ^ k[8+i]
		}
		c.Encrypt(dst, dst)
		xorInto(dst, k[8:])
		return nil
	}
	if err := half(key, out[8:]); err != nil {
		Wipe(out)
		return nil, err
	}
	variant := make([]byte, 16)
	defer Wipe(variant)
	copy(variant, key)
	xorInto(variant, tdesKeyVariant[:])
	if err := half(variant, out[:8]); err != nil {
		Wipe(out)
		return nil, err
	}
	return out, nil
}

// TDESPINKey returns the PIN encryption key for the KSN: the transaction
// key XOR 00000000000000FF00000000000000FF.
func TDESPINKey(bdk, ksn []byte) ([]byte, error) {
	return tdesVariantKey(bdk, ksn, tdesPINVariant)
}

// TDESMACKey returns the request MAC key for the KSN: the transaction key
// XOR 000000000000FF00000000000000FF00, for the ISO 9797-1 algorithm 3
// retail MAC.
func TDESMACKey(bdk, ksn []byte) ([]byte, error) {
	return tdesVariantKey(bdk, ksn, tdesMACRequestVariant)
}

func tdesVariantKey(bdk, ksn []byte, variant [16]byte) ([]byte, error) {
	key, err := TDESTransactionKey(bdk, ksn)
	if err != nil {
		return nil, err
	}
	xorInto(key, variant[:])
	return key, nil
}
