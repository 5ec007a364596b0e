package paycrypto

import "fmt"

// EncryptKeyECB encrypts a TDES key (16 or 24 bytes) under a TDES key-
// encryption key (a ZMK) in ECB mode, 8 bytes at a time: the plain form in
// which issuers send a new zone key in a key-change 0800 (DE 70 = 161).
func EncryptKeyECB(kek, key []byte) ([]byte, error) { return keyECB(kek, key, true) }

// DecryptKeyECB reverses EncryptKeyECB; callers check the result's KCV.
func DecryptKeyECB(kek, wrapped []byte) ([]byte, error) { return keyECB(kek, wrapped, false) }

func keyECB(kek, in []byte, encrypt bool) ([]byte, error) {
	if len(in) != 16 && len(in) != 24 {
		return nil, fmt.Errorf("a TDES key under a KEK is 16 or 24 bytes, got %d", len(in))
	}
	c, err := NewTDESCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", err)
	}
	out := make([]byte, len(in))
	for i := 0; i < len(in); i += 8 {
		if encrypt {
			c.Encrypt(out[i:i+8], in[i:i+8])
		} else {
			c.Decrypt(out[i:i+8], in[i:i+8])
		}
	}
	return out, nil
}

// SetOddParity sets each byte's low bit so that it has an odd number of
// one bits, as DES keys should.
func SetOddParity(b []byte) {
	for i, c := range b {
		c &^= 1
		p := c ^ c>>4
		p ^= p >> 2
		p ^= p >> 1
		b[i] = c | ^p&1
	}
}
