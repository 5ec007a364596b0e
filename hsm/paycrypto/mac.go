package paycrypto

import (
	"crypto/cipher"
	"crypto/des"
	"fmt"
	"strings"
)

// RetailMAC computes the ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC)
// of data under a 16-byte double-length TDES key K1|K2: padding method 1
// (zero bytes up to a multiple of 8, none if already a multiple, one zero
// block for an empty message), single-DES CBC under K1 with a zero IV, then
// the final block is deciphered under K2 and enciphered under K1. The MAC is
// the full 8-byte result; truncate it where a field is shorter.
func RetailMAC(key, data []byte) ([]byte, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("paycrypto: retail MAC key must be 16 bytes (K1|K2), got %d", len(key))
	}
	k1, err := des.NewCipher(key[:8])
	if err != nil {
		return nil, err
	}
	k2, err := des.NewCipher(key[8:])
	if err != nil {
		return nil, err
	}
	n := (len(data) + 7) / 8
	if n == 0 {
		n = 1
	}
	padded := make([]byte, n*8)
	copy(padded, data)
	h := make([]byte, 8)
	for i := 0; i < len(padded); i += 8 {
		xorInto(h, padded[i:i+8])
		k1.Encrypt(h, h)
	}
	k2.Decrypt(h, h)
	k1.Encrypt(h, h)
	return h, nil
}

// AESCMAC computes the full 16-byte AES-CMAC (NIST SP 800-38B, RFC 4493) of
// data under a 16, 24 or 32-byte AES key.
func AESCMAC(key, data []byte) ([]byte, error) {
	c, err := aesCipher(key)
	if err != nil {
		return nil, err
	}
	return cmac(c, data), nil
}

// cmac is CMAC over any block cipher with a 64 or 128-bit block.
func cmac(c cipher.Block, data []byte) []byte {
	bs := c.BlockSize()
	k1, k2 := cmacSubkeys(c)
	n := (len(data) + bs - 1) / bs
	complete := n > 0 && len(data)%bs == 0
	if n == 0 {
		n = 1
	}
	last := make([]byte, bs)
	copy(last, data[(n-1)*bs:])
	if complete {
		xorInto(last, k1)
	} else {
		last[len(data)-(n-1)*bs] = 0x80
		xorInto(last, k2)
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		xorInto(x, data[i*bs:(i+1)*bs])
		c.Encrypt(x, x)
	}
	xorInto(x, last)
	c.Encrypt(x, x)
	return x
}

// cmacSubkeys derives K1 and K2 from L = E(K, 0^b) by doubling in GF(2^b).
func cmacSubkeys(c cipher.Block) (k1, k2 []byte) {
	bs := c.BlockSize()
	l := make([]byte, bs)
	c.Encrypt(l, l)
	k1 = gfDouble(l)
	k2 = gfDouble(k1)
	return k1, k2
}

// gfDouble shifts b left by one bit and, if the top bit was set, XORs the
// reduction constant (0x87 for 128-bit blocks, 0x1B for 64-bit blocks).
func gfDouble(b []byte) []byte {
	out := make([]byte, len(b))
	var carry byte
	for i := len(b) - 1; i >= 0; i-- {
		out[i] = b[i]<<1 | carry
		carry = b[i] >> 7
	}
	if carry != 0 {
		if len(b) == 16 {
			out[len(out)-1] ^= 0x87
		} else {
			out[len(out)-1] ^= 0x1B
		}
	}
	return out
}

// KCV returns the 3-byte key check value of key. alg is "tdes" (16 or
// 24-byte key: the first 3 bytes of TDES-encrypting 8 zero bytes) or "aes"
// (16, 24 or 32-byte key: the first 3 bytes of AES-CMAC over 16 zero bytes,
// the CMAC method of ANSI X9.24-1:2017 and X9.24-3).
func KCV(alg string, key []byte) ([]byte, error) {
	switch strings.ToLower(alg) {
	case "tdes":
		c, err := NewTDESCipher(key)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 8)
		c.Encrypt(out, out)
		return out[:3], nil
	case "aes":
		mac, err := AESCMAC(key, make([]byte, 16))
		if err != nil {
			return nil, err
		}
		return mac[:3], nil
	default:
		return nil, fmt.Errorf("paycrypto: KCV algorithm must be \"tdes\" or \"aes\", got %q", alg)
	}
}
