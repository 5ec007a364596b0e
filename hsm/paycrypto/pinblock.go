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

func checkPIN(pin string) error {
	if len(pin) < minPINLen || len(pin) > maxPINLen {
		return fmt.Errorf("paycrypto: PIN must be %d to %d digits, got %d characters", minPINLen, maxPINLen, len(pin))
	}
	if !allDigits(pin) {
		return errors.New("paycrypto: PIN must contain only decimal digits")
	}
	return nil
}

func checkPAN(pan string) error {
	if len(pan) < minPANLen || len(pan) > maxPANLen {
		return fmt.Errorf("paycrypto: PAN must be %d to %d digits, got %d characters", minPANLen, maxPANLen, len(pan))
	}
	if !allDigits(pan) {
		return errors.New("paycrypto: PAN must contain only decimal digits")
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

// PINBlockISO0 returns the clear 8-byte ISO 9564-1 format 0 PIN block: the
// PIN field (0, length, PIN digits, F fill) XOR the PAN field (0000 and the
// 12 rightmost PAN digits excluding the check digit).
func PINBlockISO0(pin, pan string) ([]byte, error) {
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	block := make([]byte, 8)
	for i := range block {
		block[i] = 0xFF
	}
	setNibble(block, 0, 0)
	setNibble(block, 1, byte(len(pin)))
	for i := 0; i < len(pin); i++ {
		setNibble(block, 2+i, pin[i]-'0')
	}
	xorInto(block, panFieldISO0(pan))
	return block, nil
}

// PINFromISO0 decodes a clear format 0 PIN block bound to pan. Every
// malformation returns an error wrapping ErrPINBlock.
func PINFromISO0(block []byte, pan string) (string, error) {
	if err := checkPAN(pan); err != nil {
		return "", err
	}
	if len(block) != 8 {
		return "", fmt.Errorf("%w: format 0 block must be 8 bytes, got %d", ErrPINBlock, len(block))
	}
	field := make([]byte, 8)
	copy(field, block)
	xorInto(field, panFieldISO0(pan))
	return pinFromField(field, 0, 0xF)
}

// tdesCipher returns TDES-EDE for a 16-byte (K1|K2, used as K1|K2|K1) or
// 24-byte key.
func tdesCipher(key []byte) (cipher.Block, error) {
	var k []byte
	switch len(key) {
	case 16:
		k = make([]byte, 0, 24)
		k = append(k, key...)
		k = append(k, key[:8]...)
	case 24:
		k = key
	default:
		return nil, fmt.Errorf("paycrypto: TDES key must be 16 or 24 bytes, got %d", len(key))
	}
	return des.NewTripleDESCipher(k)
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
	c, err := tdesCipher(key)
	if err != nil {
		return nil, err
	}
	block, err := PINBlockISO0(pin, pan)
	if err != nil {
		return nil, err
	}
	c.Encrypt(block, block)
	return block, nil
}

// DecryptISO0 deciphers a format 0 PIN block under key and returns the PIN.
// A wrong key or PAN gives an error wrapping ErrPINBlock (with overwhelming
// probability).
func DecryptISO0(key, block []byte, pan string) (string, error) {
	c, err := tdesCipher(key)
	if err != nil {
		return "", err
	}
	if len(block) != 8 {
		return "", fmt.Errorf("%w: format 0 block must be 8 bytes, got %d", ErrPINBlock, len(block))
	}
	clear := make([]byte, 8)
	c.Decrypt(clear, block)
	return PINFromISO0(clear, pan)
}

// pinFieldISO4 is the plaintext format 4 PIN field: 4, length, PIN digits,
// A fill up to nibble 16, then 8 random bytes.
func pinFieldISO4(pin string, random []byte) []byte {
	f := make([]byte, 16)
	for i := 0; i < 8; i++ {
		f[i] = 0xAA
	}
	setNibble(f, 0, 4)
	setNibble(f, 1, byte(len(pin)))
	for i := 0; i < len(pin); i++ {
		setNibble(f, 2+i, pin[i]-'0')
	}
	copy(f[8:], random)
	return f
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
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
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
	block := pinFieldISO4(pin, random)
	c.Encrypt(block, block)
	xorInto(block, panFieldISO4(pan))
	c.Encrypt(block, block)
	return block, nil
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
	if err := checkPAN(pan); err != nil {
		return "", err
	}
	if len(block) != 16 {
		return "", fmt.Errorf("%w: format 4 block must be 16 bytes, got %d", ErrPINBlock, len(block))
	}
	field := make([]byte, 16)
	c.Decrypt(field, block)
	xorInto(field, panFieldISO4(pan))
	c.Decrypt(field, field)
	return pinFromFieldISO4(field)
}

// pinFromFieldISO4 decodes a plaintext format 4 PIN field.
func pinFromFieldISO4(field []byte) (string, error) { return pinFromField(field, 4, 0xA) }

// pinFromField decodes the first 16 nibbles of a PIN field: control nibble,
// PIN length, PIN digits, then fill nibbles up to nibble 16 (format 0: F;
// format 4: A, followed by random nibbles the caller ignores).
func pinFromField(field []byte, control, fill byte) (string, error) {
	if c := nibble(field, 0); c != control {
		return "", fmt.Errorf("%w: control field is %X, want %X", ErrPINBlock, c, control)
	}
	n := int(nibble(field, 1))
	if n < minPINLen || n > maxPINLen {
		return "", fmt.Errorf("%w: PIN length %d outside %d..%d", ErrPINBlock, n, minPINLen, maxPINLen)
	}
	pin := make([]byte, n)
	for i := 0; i < n; i++ {
		d := nibble(field, 2+i)
		if d > 9 {
			return "", fmt.Errorf("%w: PIN position %d is not a decimal digit", ErrPINBlock, i+1)
		}
		pin[i] = '0' + d
	}
	for i := 2 + n; i < 16; i++ {
		if nibble(field, i) != fill {
			return "", fmt.Errorf("%w: fill nibble %d is not %X", ErrPINBlock, i+1, fill)
		}
	}
	return string(pin), nil
}

// xorInto sets dst[i] ^= src[i] for i < len(dst).
func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
