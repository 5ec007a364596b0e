package paycrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// KeyBlockHeader is the 16-character header of an ANSI X9.143 (TR-31)
// key block without optional blocks: what the wrapped key may be used
// for, bound to it by the block's MAC.
type KeyBlockHeader struct {
	// Usage is the 2-character key usage: P0 PIN encryption, B0 BDK,
	// K0 key encryption (KEK/ZMK), M3 ISO 9797-1 MAC algorithm 3, M6
	// CMAC, M7 HMAC, D0 data encryption.
	Usage string
	// Algorithm is T (TDES), A (AES) or H (HMAC).
	Algorithm byte
	// ModeOfUse is B (both), C (generate and verify), E (encrypt only),
	// D (decrypt only), X (derive keys) or N (no restrictions).
	ModeOfUse byte
	// Version is the 2-character key version number ("00": none).
	Version string
	// Exportability is E (exportable under a trusted key), N (not
	// exportable) or S (sensitive).
	Exportability byte
}

// ErrKeyBlock is returned when a key block does not parse or its MAC does
// not verify under the protection key: the block was altered or belongs
// to another key. It never says which.
var ErrKeyBlock = errors.New("paycrypto: key block does not verify")

// keyBlockHeaderLen is the length of the fixed header.
const keyBlockHeaderLen = 16

func (h KeyBlockHeader) encode(total int) (string, error) {
	if len(h.Usage) != 2 || len(h.Version) != 2 || h.Algorithm == 0 || h.ModeOfUse == 0 || h.Exportability == 0 {
		return "", fmt.Errorf("paycrypto: incomplete key block header %+v", h)
	}
	if total > 9999 {
		return "", fmt.Errorf("paycrypto: key block of %d characters is too long", total)
	}
	return fmt.Sprintf("D%04d%s%c%c%s%c0000", total, h.Usage, h.Algorithm, h.ModeOfUse, h.Version, h.Exportability), nil
}

// ParseKeyBlockHeader reads the header of a version D key block without
// checking its MAC (that takes the protection key: UnwrapKeyBlock).
func ParseKeyBlockHeader(block string) (KeyBlockHeader, error) {
	if len(block) < keyBlockHeaderLen || block[0] != 'D' {
		return KeyBlockHeader{}, fmt.Errorf("not a version D key block: %w", ErrKeyBlock)
	}
	n, err := strconv.Atoi(block[1:5])
	if err != nil || n != len(block) {
		return KeyBlockHeader{}, fmt.Errorf("key block length field does not match its %d characters: %w", len(block), ErrKeyBlock)
	}
	if block[12:14] != "00" {
		return KeyBlockHeader{}, fmt.Errorf("key block optional blocks are not supported: %w", ErrKeyBlock)
	}
	return KeyBlockHeader{
		Usage: block[5:7], Algorithm: block[7], ModeOfUse: block[8], Version: block[9:11], Exportability: block[11],
	}, nil
}

// keyBlockKeys derives the key block encryption and authentication keys
// from an AES protection key with AES-CMAC as the PRF in counter mode
// (NIST SP 800-108), as X9.143 / TR-31:2018 version D specifies.
func keyBlockKeys(kbpk []byte) (kbek, kbak []byte, err error) {
	var alg uint16
	switch len(kbpk) {
	case 16:
		alg = 2
	case 24:
		alg = 3
	case 32:
		alg = 4
	default:
		return nil, nil, fmt.Errorf("paycrypto: key block protection key must be AES-128, -192 or -256, got %d bytes", len(kbpk))
	}
	bits := uint16(len(kbpk) * 8)
	derive := func(usage uint16) ([]byte, error) {
		var out []byte
		for counter := byte(1); len(out) < len(kbpk); counter++ {
			in := []byte{counter, 0, 0, 0, 0, 0, 0, 0}
			binary.BigEndian.PutUint16(in[1:], usage)
			binary.BigEndian.PutUint16(in[4:], alg)
			binary.BigEndian.PutUint16(in[6:], bits)
			mac, err := AESCMAC(kbpk, in)
			if err != nil {
				return nil, err
			}
			out = append(out, mac...)
		}
		return out[:len(kbpk)], nil
	}
	if kbek, err = derive(0x0000); err != nil {
		return nil, nil, err
	}
	if kbak, err = derive(0x0001); err != nil {
		return nil, nil, err
	}
	return kbek, kbak, nil
}

// WrapKeyBlock wraps key under the AES protection key kbpk as an X9.143
// (TR-31) version D key block: the key length in bits, the key and random
// padding (from rnd) to a multiple of 16 bytes, authenticated with a
// 16-byte AES-CMAC over header and clear key data, enciphered with
// AES-CBC under the derived encryption key with the MAC as IV.
func WrapKeyBlock(kbpk []byte, h KeyBlockHeader, key []byte, rnd io.Reader) (string, error) {
	kbek, kbak, err := keyBlockKeys(kbpk)
	if err != nil {
		return "", err
	}
	n := 2 + len(key)
	padded := (n + 15) / 16 * 16
	data := make([]byte, padded)
	binary.BigEndian.PutUint16(data, uint16(len(key)*8))
	copy(data[2:], key)
	if _, err := io.ReadFull(rnd, data[n:]); err != nil {
		return "", fmt.Errorf("paycrypto: key block padding: %w", err)
	}
	header, err := h.encode(keyBlockHeaderLen + 2*padded + 32)
	if err != nil {
		return "", err
	}
	mac, err := AESCMAC(kbak, append([]byte(header), data...))
	if err != nil {
		return "", err
	}
	c, err := aes.NewCipher(kbek)
	if err != nil {
		return "", err
	}
	enc := make([]byte, len(data))
	cipher.NewCBCEncrypter(c, mac).CryptBlocks(enc, data)
	clear(data)
	return header + hexUpper(enc) + hexUpper(mac), nil
}

// UnwrapKeyBlock checks a version D key block under kbpk and returns its
// header and the clear key. ErrKeyBlock when it does not verify.
func UnwrapKeyBlock(kbpk []byte, block string) (KeyBlockHeader, []byte, error) {
	h, err := ParseKeyBlockHeader(block)
	if err != nil {
		return KeyBlockHeader{}, nil, err
	}
	body, err := hex.DecodeString(block[keyBlockHeaderLen:])
	if err != nil || len(body) < 32 || len(body)%16 != 0 {
		return KeyBlockHeader{}, nil, fmt.Errorf("key block body: %w", ErrKeyBlock)
	}
	kbek, kbak, err := keyBlockKeys(kbpk)
	if err != nil {
		return KeyBlockHeader{}, nil, err
	}
	enc, mac := body[:len(body)-16], body[len(body)-16:]
	c, err := aes.NewCipher(kbek)
	if err != nil {
		return KeyBlockHeader{}, nil, err
	}
	data := make([]byte, len(enc))
	cipher.NewCBCDecrypter(c, mac).CryptBlocks(data, enc)
	want, err := AESCMAC(kbak, append([]byte(block[:keyBlockHeaderLen]), data...))
	if err != nil {
		return KeyBlockHeader{}, nil, err
	}
	if subtle.ConstantTimeCompare(want, mac) != 1 {
		clear(data)
		return KeyBlockHeader{}, nil, ErrKeyBlock
	}
	bits := int(binary.BigEndian.Uint16(data))
	if bits%8 != 0 || bits/8 > len(data)-2 || bits == 0 {
		clear(data)
		return KeyBlockHeader{}, nil, fmt.Errorf("key block key length: %w", ErrKeyBlock)
	}
	key := append([]byte(nil), data[2:2+bits/8]...)
	clear(data)
	return h, key, nil
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
