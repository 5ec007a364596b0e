//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
)

// The ISO 9564-1 PIN field codecs, on byte slices. They mirror paycrypto's
// (PINBlockISO0, PINFromISO0 and the format 4 fields inside EncryptISO4 and
// DecryptISO4; the tests check they agree) but never make the PIN a Go
// string, which could not be wiped: here the PIN digits are a []byte the
// caller clears. Errors wrap errPINBlock and never include digits.

var errPINBlock = errors.New("PIN block does not decode")

const (
	minPINLen = 4
	maxPINLen = 12
)

func checkPAN(pan string) error {
	if len(pan) < 13 || len(pan) > 19 {
		return fmt.Errorf("%w: PAN must be 13 to 19 digits, got %d characters", errPINBlock, len(pan))
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return fmt.Errorf("%w: PAN must contain only decimal digits", errPINBlock)
		}
	}
	return nil
}

func nibble(b []byte, i int) byte {
	if i%2 == 0 {
		return b[i/2] >> 4
	}
	return b[i/2] & 0x0F
}

func setNibble(b []byte, i int, v byte) {
	if i%2 == 0 {
		b[i/2] = b[i/2]&0x0F | v<<4
	} else {
		b[i/2] = b[i/2]&0xF0 | v&0x0F
	}
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// panFieldISO0: 0000 and the 12 rightmost PAN digits without the check
// digit. pan must have passed checkPAN.
func panFieldISO0(pan string) []byte {
	f := make([]byte, 8)
	digits := pan[len(pan)-13 : len(pan)-1]
	for i := 0; i < 12; i++ {
		setNibble(f, 4+i, digits[i]-'0')
	}
	return f
}

// panFieldISO4: M (PAN length - 12), then the PAN, zero-padded to 32
// nibbles.
func panFieldISO4(pan string) []byte {
	f := make([]byte, 16)
	setNibble(f, 0, byte(len(pan)-12))
	for i := 0; i < len(pan); i++ {
		setNibble(f, 1+i, pan[i]-'0')
	}
	return f
}

// pinDigits checks that pin is 4 to 12 digit values (0..9, not ASCII).
func pinDigits(pin []byte) error {
	if len(pin) < minPINLen || len(pin) > maxPINLen {
		return fmt.Errorf("%w: PIN length %d outside %d..%d", errPINBlock, len(pin), minPINLen, maxPINLen)
	}
	for _, d := range pin {
		if d > 9 {
			return fmt.Errorf("%w: PIN holds a non-digit", errPINBlock)
		}
	}
	return nil
}

// pinBlockISO0 returns the clear format 0 block for the PIN digit values.
func pinBlockISO0(pin []byte, pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	if err := pinDigits(pin); err != nil {
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

// pinFromISO0 decodes a clear format 0 block into PIN digit values.
func pinFromISO0(block []byte, pan string) ([]byte, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	if len(block) != 8 {
		return nil, fmt.Errorf("%w: format 0 block must be 8 bytes, got %d", errPINBlock, len(block))
	}
	field := make([]byte, 8)
	defer clear(field)
	copy(field, block)
	xorInto(field, panFieldISO0(pan))
	return pinFromField(field, 0, 0xF)
}

// pinFieldISO4 is the plaintext format 4 PIN field: 4, length, PIN, A
// fill to nibble 16, then the 8 random bytes.
func pinFieldISO4(pin, random []byte) ([]byte, error) {
	if err := pinDigits(pin); err != nil {
		return nil, err
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

// pinFromField decodes control nibble, length, digits and fill of the
// first 8 bytes of a PIN field (format 0 after removing the PAN, or the
// plaintext format 4 field).
func pinFromField(field []byte, control, fill byte) ([]byte, error) {
	if c := nibble(field, 0); c != control {
		return nil, fmt.Errorf("%w: control field is %X, want %X", errPINBlock, c, control)
	}
	n := int(nibble(field, 1))
	if n < minPINLen || n > maxPINLen {
		return nil, fmt.Errorf("%w: PIN length %d outside %d..%d", errPINBlock, n, minPINLen, maxPINLen)
	}
	pin := make([]byte, n)
	for i := range pin {
		if pin[i] = nibble(field, 2+i); pin[i] > 9 {
			clear(pin)
			return nil, fmt.Errorf("%w: PIN position %d is not a decimal digit", errPINBlock, i+1)
		}
	}
	for i := 2 + n; i < 16; i++ {
		if nibble(field, i) != fill {
			clear(pin)
			return nil, fmt.Errorf("%w: fill nibble %d is not %X", errPINBlock, i+1, fill)
		}
	}
	return pin, nil
}
