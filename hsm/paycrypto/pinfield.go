package paycrypto

import (
	"crypto/cipher"
	"errors"
	"fmt"
)

// The ISO 9564-1 PIN and PAN fields on byte slices, for callers that must
// wipe the clear PIN (a PKCS#11 backend, whose token does the block cipher
// operations while the fields are built and read in host memory).
//
// A PIN here is a []byte of digit values 0..9 (not ASCII), 4 to 12 of
// them, never a Go string, which could not be wiped.
//
// Ownership. Arguments are only read: never kept, never modified. Every
// slice a function returns is fresh and belongs to the caller, who wipes
// it (Wipe) once done when it holds a PIN, a PIN field, a clear PIN block
// or a key. Intermediate fields and blocks made inside these functions,
// including every result of a BlockFunc that is not returned, are wiped
// before they return, on success and on error. Errors never include PIN or
// PAN digits; a block that does not decode gives an error wrapping
// ErrPINBlock, a malformed PAN or PIN argument one that does not.

// Wipe sets every byte of b to zero. Use it on every PIN, PIN field,
// clear PIN block and key this package hands out once done with it.
func Wipe(b []byte) { clear(b) }

// BlockFunc enciphers or deciphers whole cipher blocks (8 bytes for a
// format 0 block under TDES, 16 for format 4 under AES) under a key the
// caller holds wherever it is: in memory (EncryptBlocks, DecryptBlocks) or
// in a token. It returns a fresh slice of len(in) and must not keep in.
// The function it is passed to owns what it returns (and wipes it unless
// it returns it in turn).
type BlockFunc func(in []byte) ([]byte, error)

// EncryptBlocks is the BlockFunc enciphering ECB under c.
func EncryptBlocks(c cipher.Block) BlockFunc { return blocks(c.Encrypt, c.BlockSize()) }

// DecryptBlocks is the BlockFunc deciphering ECB under c.
func DecryptBlocks(c cipher.Block) BlockFunc { return blocks(c.Decrypt, c.BlockSize()) }

func blocks(f func(dst, src []byte), size int) BlockFunc {
	return func(in []byte) ([]byte, error) {
		if len(in)%size != 0 {
			return nil, fmt.Errorf("paycrypto: %d bytes is not a whole number of %d-byte blocks", len(in), size)
		}
		out := make([]byte, len(in))
		for i := 0; i < len(in); i += size {
			f(out[i:i+size], in[i:i+size])
		}
		return out, nil
	}
}

// CheckPAN checks that pan can be bound to a PIN block: 13 to 19 decimal
// digits.
func CheckPAN(pan string) error { return checkPAN(pan) }

// checkPINDigits checks 4 to 12 digit values.
func checkPINDigits(pin []byte) error {
	if len(pin) < minPINLen || len(pin) > maxPINLen {
		return fmt.Errorf("paycrypto: PIN must be %d to %d digits, got %d", minPINLen, maxPINLen, len(pin))
	}
	for _, d := range pin {
		if d > 9 {
			return errors.New("paycrypto: PIN must hold digit values 0 to 9")
		}
	}
	return nil
}

// PANFieldISO0 returns the 8-byte format 0 account field: four zero
// nibbles, then the 12 rightmost PAN digits excluding the check digit.
func PANFieldISO0(pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	return panFieldISO0(pan), nil
}

// PANFieldISO4 returns the 16-byte plaintext format 4 PAN field: M (PAN
// length - 12), then the PAN left-justified, zero-padded to 32 nibbles.
func PANFieldISO4(pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	return panFieldISO4(pan), nil
}

// PINBlockISO0Digits returns the clear 8-byte format 0 PIN block for the
// PIN digit values: the PIN field (0, length, digits, F fill) XOR the PAN
// field. The caller wipes it.
func PINBlockISO0Digits(pin []byte, pan string) ([]byte, error) {
	if err := checkPINDigits(pin); err != nil {
		return nil, err
	}
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	block := []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	setNibble(block, 0, 0)
	setNibble(block, 1, byte(len(pin)))
	for i, d := range pin {
		setNibble(block, 2+i, d)
	}
	xorInto(block, panFieldISO0(pan))
	return block, nil
}

// PINDigitsFromISO0 decodes a clear format 0 PIN block bound to pan into
// PIN digit values, which the caller wipes. Every malformation of the
// block gives an error wrapping ErrPINBlock.
func PINDigitsFromISO0(block []byte, pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	if len(block) != 8 {
		return nil, errISO0Len(block)
	}
	field := make([]byte, 8)
	defer Wipe(field)
	copy(field, block)
	xorInto(field, panFieldISO0(pan))
	return pinFromField(field, 0, 0xF)
}

func errISO0Len(block []byte) error {
	return fmt.Errorf("%w: format 0 block must be 8 bytes, got %d", ErrPINBlock, len(block))
}

// PINFieldISO4 returns the 16-byte plaintext format 4 PIN field: 4,
// length, PIN digits, A fill up to nibble 16, then the 8 random bytes.
// The caller wipes it.
func PINFieldISO4(pin, random []byte) ([]byte, error) {
	if err := checkPINDigits(pin); err != nil {
		return nil, err
	}
	if len(random) != 8 {
		return nil, fmt.Errorf("paycrypto: format 4 random fill must be 8 bytes, got %d", len(random))
	}
	f := make([]byte, 16)
	for i := 0; i < 8; i++ {
		f[i] = 0xAA
	}
	setNibble(f, 0, 4)
	setNibble(f, 1, byte(len(pin)))
	for i, d := range pin {
		setNibble(f, 2+i, d)
	}
	copy(f[8:], random)
	return f, nil
}

// PINDigitsFromFieldISO4 decodes a plaintext format 4 PIN field (control
// 4, length, digits, A fill; the random half is not checked) into PIN
// digit values, which the caller wipes. Errors wrap ErrPINBlock.
func PINDigitsFromFieldISO4(field []byte) ([]byte, error) {
	if len(field) != 16 {
		return nil, fmt.Errorf("%w: format 4 PIN field must be 16 bytes, got %d", ErrPINBlock, len(field))
	}
	return pinFromField(field, 4, 0xA)
}

// EncipherISO0 returns the format 0 PIN block for the PIN digit values and
// pan enciphered by encipher; the clear block is wiped.
func EncipherISO0(encipher BlockFunc, pin []byte, pan string) ([]byte, error) {
	block, err := PINBlockISO0Digits(pin, pan)
	if err != nil {
		return nil, err
	}
	defer Wipe(block)
	out, err := encipher(block)
	if err != nil {
		return nil, fmt.Errorf("paycrypto: enciphering the PIN block: %w", err)
	}
	return out, nil
}

// DecipherISO0 deciphers a format 0 PIN block with decipher and returns
// the PIN digit values; the clear block is wiped. A wrong key or PAN gives
// an error wrapping ErrPINBlock (with overwhelming probability).
func DecipherISO0(decipher BlockFunc, block []byte, pan string) ([]byte, error) {
	if len(block) != 8 {
		return nil, errISO0Len(block)
	}
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	clearBlock, err := decipher(block)
	if err != nil {
		return nil, fmt.Errorf("paycrypto: deciphering the PIN block: %w", err)
	}
	defer Wipe(clearBlock)
	return PINDigitsFromISO0(clearBlock, pan)
}

// EncipherISO4 returns the 16-byte format 4 enciphered PIN block:
// encipher the plaintext PIN field (PIN digit values and 8 random bytes),
// XOR the plaintext PAN field, encipher again. The PIN field and the
// intermediate block are wiped.
func EncipherISO4(encipher BlockFunc, pin, random []byte, pan string) ([]byte, error) {
	field, err := PINFieldISO4(pin, random)
	if err != nil {
		return nil, err
	}
	defer Wipe(field)
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	return iso4Rounds(encipher, field, pan)
}

// DecipherISO4 deciphers a format 4 PIN block with decipher (decipher, XOR
// the plaintext PAN field, decipher again) and returns the PIN digit
// values; the intermediate block and the PIN field are wiped. A malformed
// PIN field gives an error wrapping ErrPINBlock; so does a wrong key or
// PAN, with overwhelming probability.
func DecipherISO4(decipher BlockFunc, block []byte, pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	if len(block) != 16 {
		return nil, fmt.Errorf("%w: format 4 block must be 16 bytes, got %d", ErrPINBlock, len(block))
	}
	field, err := iso4Rounds(decipher, block, pan)
	if err != nil {
		return nil, err
	}
	defer Wipe(field)
	return PINDigitsFromFieldISO4(field)
}

// iso4Rounds is the format 4 construction, the same both ways: f, XOR the
// PAN field (pan already checked), f again. The intermediate block is
// wiped; the result is the caller's.
func iso4Rounds(f BlockFunc, in []byte, pan string) ([]byte, error) {
	mid, err := f(in)
	if err != nil {
		return nil, fmt.Errorf("paycrypto: format 4, first cipher step: %w", err)
	}
	defer Wipe(mid)
	xorInto(mid, panFieldISO4(pan))
	out, err := f(mid)
	if err != nil {
		return nil, fmt.Errorf("paycrypto: format 4, second cipher step: %w", err)
	}
	return out, nil
}

// pinFromField decodes the first 16 nibbles of a PIN field into PIN digit
// values: control nibble, PIN length, PIN digits, then fill nibbles up to
// nibble 16 (format 0: F; format 4: A, followed by random nibbles the
// caller ignores). Nothing is left behind on error.
func pinFromField(field []byte, control, fill byte) ([]byte, error) {
	if c := nibble(field, 0); c != control {
		return nil, fmt.Errorf("%w: control field is %X, want %X", ErrPINBlock, c, control)
	}
	n := int(nibble(field, 1))
	if n < minPINLen || n > maxPINLen {
		return nil, fmt.Errorf("%w: PIN length %d outside %d..%d", ErrPINBlock, n, minPINLen, maxPINLen)
	}
	pin := make([]byte, n)
	for i := range pin {
		if pin[i] = nibble(field, 2+i); pin[i] > 9 {
			Wipe(pin)
			return nil, fmt.Errorf("%w: PIN position %d is not a decimal digit", ErrPINBlock, i+1)
		}
	}
	for i := 2 + n; i < 16; i++ {
		if nibble(field, i) != fill {
			Wipe(pin)
			return nil, fmt.Errorf("%w: fill nibble %d is not %X", ErrPINBlock, i+1, fill)
		}
	}
	return pin, nil
}
