package paycrypto

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex, ignoring spaces; it panics on bad input (test tables
// are constants).
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// The NIST SP 800-38B / RFC 4493 example messages: the first 0, 16, 40 and
// 64 bytes of this string.
const cmacExampleMessage = "6bc1bee22e409f96e93d7e117393172a" +
	"ae2d8a571e03ac9c9eb76fac45af8e51" +
	"30c81c46a35ce411e5fbc1191a0a52ef" +
	"f69f2445df4f9b17ad2b417be66c3710"

func TestAESCMAC(t *testing.T) {
	const (
		k128 = "2b7e151628aed2a6abf7158809cf4f3c"
		k192 = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b"
		k256 = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"
	)
	msg := unhex(cmacExampleMessage)
	tests := []struct {
		name string
		key  string
		n    int // message length in bytes
		want string
	}{
		// RFC 4493 section 4, examples 1-4 (AES-128); the same values are
		// NIST SP 800-38B appendix D.1.
		{"RFC4493/Example1/len0", k128, 0, "bb1d6929e95937287fa37d129b756746"},
		{"RFC4493/Example2/len16", k128, 16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{"RFC4493/Example3/len40", k128, 40, "dfa66747de9ae63030ca32611497c827"},
		{"RFC4493/Example4/len64", k128, 64, "51f0bebf7e3b9d92fc49741779363cfe"},
		// NIST SP 800-38B appendix D.2 (AES-192), updated CMAC examples.
		{"SP800-38B/D.2/Example5/len0", k192, 0, "d17ddf46adaacde531cac483de7a9367"},
		{"SP800-38B/D.2/Example6/len16", k192, 16, "9e99a7bf31e710900662f65e617c5184"},
		{"SP800-38B/D.2/Example7/len40", k192, 40, "8a1de5be2eb31aad089a82e6ee908b0e"},
		{"SP800-38B/D.2/Example8/len64", k192, 64, "a1d5df0eed790f794d77589659f39a11"},
		// NIST SP 800-38B appendix D.3 (AES-256).
		{"SP800-38B/D.3/Example9/len0", k256, 0, "028962f61b7bf89efc6b551f4667d983"},
		{"SP800-38B/D.3/Example10/len16", k256, 16, "28a7023f452e8f82bd4bf28d8c37c35c"},
		{"SP800-38B/D.3/Example11/len40", k256, 40, "aaf3d8f1de5640c232f5b169b9c911e6"},
		{"SP800-38B/D.3/Example12/len64", k256, 64, "e1992190549f6ed5696a2c056c315410"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AESCMAC(unhex(tt.key), msg[:tt.n])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, unhex(tt.want)) {
				t.Errorf("AESCMAC = %x, want %s", got, tt.want)
			}
		})
	}
}

func TestCMACSubkeys(t *testing.T) {
	tests := []struct {
		name, key, k1, k2 string
	}{
		// RFC 4493 section 4, "Subkey Generation".
		{"RFC4493/AES128", "2b7e151628aed2a6abf7158809cf4f3c",
			"fbeed618357133667c85e08f7236a8de", "f7ddac306ae266ccf90bc11ee46d513b"},
		// NIST SP 800-38B appendix D.2, "Subkey Generation" (AES-192).
		{"SP800-38B/D.2/AES192", "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
			"448a5b1c93514b273ee6439dd4daa296", "8914b63926a2964e7dcc873ba9b5452c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := aesCipher(unhex(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			k1, k2 := cmacSubkeys(c)
			if !bytes.Equal(k1, unhex(tt.k1)) || !bytes.Equal(k2, unhex(tt.k2)) {
				t.Errorf("subkeys = %x, %x; want %s, %s", k1, k2, tt.k1, tt.k2)
			}
		})
	}
}

func TestAESCMACKeyLength(t *testing.T) {
	for _, n := range []int{0, 8, 15, 17, 31, 33} {
		if _, err := AESCMAC(make([]byte, n), nil); err == nil {
			t.Errorf("AESCMAC with a %d-byte key: no error", n)
		}
	}
}

func TestRetailMAC(t *testing.T) {
	tests := []struct {
		name string
		key  string
		data []byte
		want string
	}{
		// ISO/IEC 9797-1:2011 annex B.4, MAC algorithm 3, padding method 1,
		// K = 0123456789ABCDEF, K' = FEDCBA9876543210; reproduced in the
		// RustCrypto retail-mac crate documentation and in ANSI X9.19
		// examples published by several open-source payment tools.
		{"ISO9797-1/B.4/string1", "0123456789ABCDEF FEDCBA9876543210", []byte("Now is the time for all "), "A1C72E74EA3FA9B6"},
		// Same annex, second string (22 bytes, so two zero bytes of padding).
		{"ISO9797-1/B.4/string2", "0123456789ABCDEF FEDCBA9876543210", []byte("Now is the time for it"), "2E2B1428CC78254F"},
		// Bouncy Castle ISO9797Alg3MacTest (a 16-byte message, no padding).
		{"BouncyCastle/ISO9797Alg3MacTest", "7CA110454A1A6E570131D9619DC1376E", []byte("Hello World !!!!"), "F09B856213BAB83B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RetailMAC(unhex(tt.key), tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("RetailMAC = %X, want %s", got, tt.want)
			}
		})
	}
}

// retailMACReference builds MAC algorithm 3 from single-DES primitives, step
// by step, independently of RetailMAC: the single-DES CBC-MAC under K1,
// then decrypt under K2 and encrypt under K1.
func retailMACReference(t *testing.T, key, data []byte) []byte {
	t.Helper()
	chain := singleDESCBCMAC(t, key[:8], data)
	k1, err := des.NewCipher(key[:8])
	if err != nil {
		t.Fatal(err)
	}
	k2, err := des.NewCipher(key[8:16])
	if err != nil {
		t.Fatal(err)
	}
	var d, e [8]byte
	k2.Decrypt(d[:], chain)
	k1.Encrypt(e[:], d[:])
	return e[:]
}

// singleDESCBCMAC is ISO 9797-1 MAC algorithm 1 with padding method 1.
func singleDESCBCMAC(t *testing.T, key, data []byte) []byte {
	t.Helper()
	c, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	padded := append([]byte(nil), data...)
	for len(padded)%8 != 0 || len(padded) == 0 {
		padded = append(padded, 0)
	}
	chain := make([]byte, 8)
	for i := 0; i < len(padded); i += 8 {
		xorInto(chain, padded[i:i+8])
		c.Encrypt(chain, chain)
	}
	return chain
}

func TestRetailMACProperties(t *testing.T) {
	key := unhex("0123456789ABCDEF FEDCBA9876543210")
	messages := [][]byte{nil, {}, {0}, []byte("1234567"), []byte("12345678"), []byte("123456789"), bytes.Repeat([]byte{0xA5}, 1000)}
	for _, m := range messages {
		got, err := RetailMAC(key, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := retailMACReference(t, key, m); !bytes.Equal(got, want) {
			t.Errorf("len %d: RetailMAC = %X, reference = %X", len(m), got, want)
		}
		// With K1 == K2 the final D(K2), E(K1) cancel: algorithm 3
		// degenerates to the single-DES CBC-MAC.
		same := append(append([]byte(nil), key[:8]...), key[:8]...)
		got, err = RetailMAC(same, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := singleDESCBCMAC(t, key[:8], m); !bytes.Equal(got, want) {
			t.Errorf("len %d, K1 == K2: RetailMAC = %X, CBC-MAC = %X", len(m), got, want)
		}
	}

	// Padding method 1: an empty message MACs as one zero block, and a
	// message MACs as itself zero-padded.
	empty, _ := RetailMAC(key, nil)
	zero, _ := RetailMAC(key, make([]byte, 8))
	if !bytes.Equal(empty, zero) {
		t.Errorf("empty message MAC %X != one zero block MAC %X", empty, zero)
	}
	short, _ := RetailMAC(key, []byte("abc"))
	padded, _ := RetailMAC(key, []byte("abc\x00\x00\x00\x00\x00"))
	if !bytes.Equal(short, padded) {
		t.Errorf("MAC of \"abc\" %X != MAC of zero-padded %X", short, padded)
	}

	for _, n := range []int{0, 8, 15, 17, 24} {
		if _, err := RetailMAC(make([]byte, n), []byte("x")); err == nil {
			t.Errorf("RetailMAC with a %d-byte key: no error", n)
		}
	}
}

func TestKCV(t *testing.T) {
	tests := []struct {
		name, alg, key, want string
	}{
		// The classic test key 0123456789ABCDEF FEDCBA9876543210: encrypting
		// zeros gives 08D7B4FB629D0885 (the check value Dspread QPOS sample
		// code pairs with it; also in public Go HSM-tool KCV tests).
		{"tdes/classic-test-key", "tdes", "0123456789ABCDEF FEDCBA9876543210", "08D7B4"},
		// Triple-length variant from the same Go KCV test table.
		{"tdes/triple-length", "tdes", "0123456789ABCDEF FEDCBA9876543210 0011223344556677", "CBE6A7"},
		// TR-31:2018 A.7.2.1 example key and KCV (openemv/tr31 tests).
		{"tdes/TR-31:2018/A.7.2.1", "tdes", "F039121BEC83D26B169BDCD5B22AAF8F", "CB9DEA"},
		// TR-31:2018 A.7.2.2 example key and KCV (openemv/tr31 tests).
		{"tdes/TR-31:2018/A.7.2.2", "tdes", "3F419E1CB7079442 AA37474C2EFBF8B8", "57C409"},
		// TR-31:2018 A.7.4: the same key bits as an AES-128 key; its KCV is
		// the X9.24-1:2017 CMAC-based check value (openemv/tr31 tests).
		{"aes/TR-31:2018/A.7.4", "aes", "3F419E1CB7079442AA37474C2EFBF8B8", "08793E"},
		// AES-256 key from a Thales payShield 10k example (openemv/tr31
		// tests), CMAC-based check value.
		{"aes/payShield-AES256", "aes", "BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC", "0A00E3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KCV(tt.alg, unhex(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("KCV = %X, want %s", got, tt.want)
			}
		})
	}
}

func TestKCVIsCMACOfZeros(t *testing.T) {
	for _, k := range []string{
		"2b7e151628aed2a6abf7158809cf4f3c",
		"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
		"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	} {
		key := unhex(k)
		mac, err := AESCMAC(key, make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		kcv, err := KCV("aes", key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kcv, mac[:3]) {
			t.Errorf("KCV = %X, want %X", kcv, mac[:3])
		}
	}
}

func TestKCVErrors(t *testing.T) {
	tests := []struct {
		alg string
		n   int
	}{
		{"tdes", 8}, {"tdes", 15}, {"tdes", 32},
		{"aes", 8}, {"aes", 20}, {"aes", 33},
		{"des", 8}, {"", 16}, {"hmac", 32},
	}
	for _, tt := range tests {
		if _, err := KCV(tt.alg, make([]byte, tt.n)); err == nil {
			t.Errorf("KCV(%q, %d bytes): no error", tt.alg, tt.n)
		}
	}
}
