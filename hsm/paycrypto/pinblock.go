package paycrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// ErrPINBlock is wrapped by every error about a PIN block that does not
// decode: wrong length, wrong control field, PIN length out of range,
// non-digit PIN or wrong fill. A wrong key or PAN shows up as this error.
var ErrPINBlock = errors.New("paycrypto: invalid PIN block")

const (
	minPINLen = 4
	maxPINLen = 12
	minPANLen = 13
	maxPANLen = 19
)

// Errors never include PIN or PAN digits.

func checkPIN(pin string) error { return checkDigits("PIN", pin, minPINLen, maxPINLen) }

func checkPAN(pan string) error { return checkDigits("PAN", pan, minPANLen, maxPANLen) }

// checkDigits checks that s (a PIN or PAN, named by what) is min to max
// decimal digits.
func checkDigits(what, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		return fmt.Errorf("paycrypto: %s must be %d to %d digits, got %d characters", what, min, max, len(s))
	}
	if !allDigits(s) {
		return fmt.Errorf("paycrypto: %s must contain only decimal digits", what)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// nibble returns nibble i (0 = high nibble of b[0]) of b.
func nibble(b []byte, i int) byte {
	if i%2 == 0 {
		return b[i/2] >> 4
	}
	return b[i/2] & 0x0F
}

// setNibble sets nibble i of b to v (0..15).
func setNibble(b []byte, i int, v byte) {
	if i%2 == 0 {
		b[i/2] = b[i/2]&0x0F | v<<4
	} else {
		b[i/2] = b[i/2]&0xF0 | v&0x0F
	}
}

// panFieldISO0 is the format 0 account field: four zero nibbles then the
// 12 rightmost PAN digits excluding the check digit.
func panFieldISO0(pan string) []byte {
	f := make([]byte, 8)
	digits := pan[len(pan)-13 : len(pan)-1]
	for i := 0; i < 12; i++ {
		setNibble(f, 4+i, digits[i]-'0')
	}
	return f
}

// withDigits checks pin, runs f on its digit values and wipes them (the
// string itself cannot be).
func withDigits(pin string, f func(d []byte) ([]byte, error)) ([]byte, error) {
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
	d := make([]byte, len(pin))
	defer Wipe(d)
	for i := range d {
		d[i] = pin[i] - '0'
	}
	return f(d)
}

// pinString turns PIN digit values into the PIN string and wipes them.
func pinString(d []byte, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer Wipe(d)
	s := make([]byte, len(d))
	defer Wipe(s)
	for i, v := range d {
		s[i] = '0' + v
	}
	return string(s), nil
}

// The string functions below cannot wipe the PIN they take or return; the
// []byte functions of pinfield.go can, and do the work.

// PINBlockISO0 returns the clear 8-byte ISO 9564-1 format 0 PIN block: the
// PIN field (0, length, PIN digits, F fill) XOR the PAN field (0000 and the
// 12 rightmost PAN digits excluding the check digit).
func PINBlockISO0(pin, pan string) ([]byte, error) {
	return withDigits(pin, func(d []byte) ([]byte, error) { return PINBlockISO0Digits(d, pan) })
}

// PINFromISO0 decodes a clear format 0 PIN block bound to pan. Every
// malformation returns an error wrapping ErrPINBlock.
func PINFromISO0(block []byte, pan string) (string, error) {
	return pinString(PINDigitsFromISO0(block, pan))
}

// NewTDESCipher returns TDES-EDE for a 16-byte (K1|K2, used as K1|K2|K1)
// or 24-byte key. It keeps no reference to key; the 24-byte expansion of a
// 16-byte key is wiped (the cipher's key schedule cannot be, and is left
// to the collector).
func NewTDESCipher(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 16:
		k := make([]byte, 0, 24)
		k = append(k, key...)
		k = append(k, key[:8]...)
		defer Wipe(k)
		return des.NewTripleDESCipher(k)
	case 24:
		return des.NewTripleDESCipher(key)
	default:
		return nil, fmt.Errorf("paycrypto: TDES key must be 16 or 24 bytes, got %d", len(key))
	}
}

// aesCipher returns AES for a 16, 24 or 32-byte key.
func aesCipher(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 16, 24, 32:
		return aes.NewCipher(key)
	default:
		return nil, fmt.Errorf("paycrypto: AES key must be 16, 24 or 32 bytes, got %d", len(key))
	}
}

// EncryptISO0 returns the format 0 PIN block for pin and pan enciphered
// with TDES-ECB under key (16 or 24 bytes).
func EncryptISO0(key []byte, pin, pan string) ([]byte, error) {
	c, err := NewTDESCipher(key)
	if err != nil {
		return nil, err
	}
	return withDigits(pin, func(d []byte) ([]byte, error) { return EncipherISO0(EncryptBlocks(c), d, pan) })
}

// DecryptISO0 deciphers a format 0 PIN block under key and returns the PIN.
// A wrong key or PAN gives an error wrapping ErrPINBlock (with overwhelming
// probability).
func DecryptISO0(key, block []byte, pan string) (string, error) {
	c, err := NewTDESCipher(key)
	if err != nil {
		return "", err
	}
	return pinString(DecipherISO0(DecryptBlocks(c), block, pan))
}

// panFieldISO4 is the plaintext format 4 PAN field: M (PAN length - 12),
// then the PAN left-justified, zero-padded to 32 nibbles. PANs shorter than
// 12 digits would be left-padded with zeros (M = 0), but checkPAN already
// requires at least 13.
func panFieldISO4(pan string) []byte {
	f := make([]byte, 16)
	setNibble(f, 0, byte(len(pan)-12))
	for i := 0; i < len(pan); i++ {
		setNibble(f, 1+i, pan[i]-'0')
	}
	return f
}

// EncryptISO4 returns the 16-byte ISO 9564-1:2017 format 4 enciphered PIN
// block under the AES key (16, 24 or 32 bytes): encipher the plaintext PIN
// field, XOR the plaintext PAN field, encipher again. rnd supplies the 8
// random fill bytes; nil means crypto/rand.
func EncryptISO4(key []byte, pin, pan string, rnd io.Reader) ([]byte, error) {
	c, err := aesCipher(key)
	if err != nil {
		return nil, err
	}
	return withDigits(pin, func(d []byte) ([]byte, error) {
		if err := checkPAN(pan); err != nil {
			return nil, err
		}
		if rnd == nil {
			rnd = rand.Reader
		}
		random := make([]byte, 8)
		if _, err := io.ReadFull(rnd, random); err != nil {
			return nil, fmt.Errorf("paycrypto: reading PIN block random fill: %w", err)
		}
		return EncipherISO4(EncryptBlocks(c), d, random, pan)
	})
}

// DecryptISO4 deciphers a format 4 PIN block under key and returns the PIN.
// A malformed plaintext PIN field (control nibble not 4, length outside
// 4..12, non-digit PIN, fill not A) gives an error wrapping ErrPINBlock; so
// does a wrong key or PAN, with overwhelming probability.
func DecryptISO4(key, block []byte, pan string) (string, error) {
	c, err := aesCipher(key)
	if err != nil {
		return "", err
	}
	return pinString(DecipherISO4(DecryptBlocks(c), block, pan))
}

// xorInto sets dst[i] ^= src[i] for i < len(dst).
func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
