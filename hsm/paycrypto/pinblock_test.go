package paycrypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPINBlockISO0(t *testing.T) {
	tests := []struct {
		name, pin, pan, want string
	}{
		// The textbook format 0 example, worked from the ISO 9564-1
		// definition: PIN field 041234FFFFFFFFFF XOR PAN field
		// 0000111111111111.
		{"classic-4111", "1234", "4111111111111111", "041225EEEEEEEEEE"},
		// ANSI X9.24-1:2009 A.4: PIN 1234, PAN 4012345678909 -> the clear
		// PIN block 041274EDCBA9876F the DUKPT examples encrypt (openemv/dukpt
		// dukpt_tdes_test.c reproduces it).
		{"X9.24-1/A.4", "1234", "4012345678909", "041274EDCBA9876F"},
		// Constructed by hand: 12-digit PIN, 19-digit PAN. PIN field
		// 0C123456789012FF, PAN field 0000 + the 12 digits before the check
		// digit (789012345678) = 0000789012345678.
		{"12-digit-PIN/19-digit-PAN", "123456789012", "1234567890123456789", "0C124CC66AA44487"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PINBlockISO0(tt.pin, tt.pan)
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("PINBlockISO0 = %X, want %s", got, tt.want)
			}
			pin, err := PINFromISO0(got, tt.pan)
			if err != nil {
				t.Fatal(err)
			}
			if pin != tt.pin {
				t.Errorf("PINFromISO0 = %q, want %q", pin, tt.pin)
			}
		})
	}
}

func TestPINBlockISO0RoundTrip(t *testing.T) {
	pans := []string{"4012345678909", "4111111111111111", "5413330089099130", "6011000990139424123"}
	pins := []string{"0000", "1234", "99999", "012345", "1234567", "98765432", "123456789", "0123456789", "12345678901", "999999999999"}
	for _, pan := range pans {
		for _, pin := range pins {
			block, err := PINBlockISO0(pin, pan)
			if err != nil {
				t.Fatalf("PINBlockISO0(%d digits): %v", len(pin), err)
			}
			got, err := PINFromISO0(block, pan)
			if err != nil || got != pin {
				t.Errorf("round trip %d-digit PIN, %d-digit PAN: got %q, %v", len(pin), len(pan), got, err)
			}
		}
	}
}

// clearISO0 builds a clear format 0 block from a PIN field given as 16 hex
// nibbles, XOR the PAN field, so malformed PIN fields can be tested.
func clearISO0(pinField, pan string) []byte {
	b := unhex(pinField)
	xorInto(b, panFieldISO0(pan))
	return b
}

func TestPINFromISO0Malformed(t *testing.T) {
	const pan = "4111111111111111"
	tests := []struct {
		name  string
		block []byte
		msg   string // a fragment of the error message
	}{
		{"short", make([]byte, 7), "8 bytes"},
		{"long", make([]byte, 9), "8 bytes"},
		{"empty", nil, "8 bytes"},
		{"control-1", clearISO0("141234FFFFFFFFFF", pan), "control field is 1"},
		{"control-F", clearISO0("F41234FFFFFFFFFF", pan), "control field is F"},
		{"length-3", clearISO0("03123FFFFFFFFFFF", pan), "PIN length 3"},
		{"length-0", clearISO0("00FFFFFFFFFFFFFF", pan), "PIN length 0"},
		{"length-13", clearISO0("0D1234567890123F", pan), "PIN length 13"},
		{"length-15", clearISO0("0F12345678901234", pan), "PIN length 15"},
		{"non-digit-A", clearISO0("04123AFFFFFFFFFF", pan), "PIN position 4"},
		{"non-digit-F", clearISO0("041F34FFFFFFFFFF", pan), "PIN position 2"},
		{"fill-not-F", clearISO0("041234FFFFFFFFFE", pan), "fill nibble 16"},
		{"fill-digit", clearISO0("0412340FFFFFFFFF", pan), "fill nibble 7"},
		{"wrong-PAN", clearISO0("041234FFFFFFFFFF", "4012345678909"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin, err := PINFromISO0(tt.block, pan)
			if err == nil {
				t.Fatalf("PINFromISO0 = %q, want error", pin)
			}
			if !errors.Is(err, ErrPINBlock) {
				t.Errorf("error %v does not wrap ErrPINBlock", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestPINAndPANValidation(t *testing.T) {
	key16 := unhex("0123456789ABCDEF FEDCBA9876543210")
	aesKey := unhex("00112233445566778899AABBCCDDEEFF")
	badPINs := []string{"", "123", "1234567890123", "12a4", "12 34", "١٢٣٤"}
	badPANs := []string{"", "411111111111", "41111111111111111111", "41111111111111a1", "4111-1111-1111-1111"}
	for _, pin := range badPINs {
		if _, err := PINBlockISO0(pin, "4111111111111111"); err == nil {
			t.Errorf("PINBlockISO0 accepted PIN %q", pin)
		}
		if _, err := EncryptISO4(aesKey, pin, "4111111111111111", nil); err == nil {
			t.Errorf("EncryptISO4 accepted PIN %q", pin)
		}
	}
	for _, pan := range badPANs {
		if _, err := PINBlockISO0("1234", pan); err == nil {
			t.Errorf("PINBlockISO0 accepted PAN %q", pan)
		}
		if _, err := PINFromISO0(make([]byte, 8), pan); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("PINFromISO0 with PAN %q: err = %v, want a non-PIN-block error", pan, err)
		}
		if _, err := EncryptISO0(key16, "1234", pan); err == nil {
			t.Errorf("EncryptISO0 accepted PAN %q", pan)
		}
		if _, err := EncryptISO4(aesKey, "1234", pan, nil); err == nil {
			t.Errorf("EncryptISO4 accepted PAN %q", pan)
		}
		if _, err := DecryptISO4(aesKey, make([]byte, 16), pan); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("DecryptISO4 with PAN %q: err = %v, want a non-PIN-block error", pan, err)
		}
	}
	// Errors never echo the PIN or PAN.
	_, err := PINBlockISO0("12a4", "4111111111111111")
	if err == nil || strings.Contains(err.Error(), "12a4") {
		t.Errorf("error %v leaks the PIN", err)
	}
	_, err = PINBlockISO0("1234", "41111111111111a1")
	if err == nil || strings.Contains(err.Error(), "41111111111111a1") {
		t.Errorf("error %v leaks the PAN", err)
	}
}

func TestEncryptISO0(t *testing.T) {
	const pan = "4012345678909"
	key16 := unhex("0123456789ABCDEF FEDCBA9876543210")
	key24 := append(append([]byte(nil), key16...), key16[:8]...)

	block16, err := EncryptISO0(key16, "1234", pan)
	if err != nil {
		t.Fatal(err)
	}
	// A double-length key is K1|K2|K1.
	block24, err := EncryptISO0(key24, "1234", pan)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(block16, block24) {
		t.Errorf("16-byte key %X != equivalent 24-byte key %X", block16, block24)
	}
	// Independent construction: TDES-ECB of the clear block.
	c, err := NewTDESCipher(key16)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8)
	c.Encrypt(want, unhex("041274EDCBA9876F"))
	if !bytes.Equal(block16, want) {
		t.Errorf("EncryptISO0 = %X, want %X", block16, want)
	}

	pin, err := DecryptISO0(key16, block16, pan)
	if err != nil || pin != "1234" {
		t.Errorf("DecryptISO0 = %q, %v", pin, err)
	}
	// Wrong key or PAN: the block does not decode.
	other := unhex("FEDCBA9876543210 0123456789ABCDEF")
	if _, err := DecryptISO0(other, block16, pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecryptISO0 with the wrong key: err = %v, want ErrPINBlock", err)
	}
	if _, err := DecryptISO0(key16, block16, "4111111111111111"); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecryptISO0 with the wrong PAN: err = %v, want ErrPINBlock", err)
	}
	if _, err := DecryptISO0(key16, block16[:7], pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecryptISO0 with a 7-byte block: err = %v, want ErrPINBlock", err)
	}
	for _, n := range []int{0, 8, 15, 17, 32} {
		if _, err := EncryptISO0(make([]byte, n), "1234", pan); err == nil {
			t.Errorf("EncryptISO0 with a %d-byte key: no error", n)
		}
		if _, err := DecryptISO0(make([]byte, n), block16, pan); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("DecryptISO0 with a %d-byte key: err = %v, want a key error", n, err)
		}
	}
}

func TestEncryptISO4Vectors(t *testing.T) {
	tests := []struct {
		name, key, pin, pan, random, want string
	}{
		// ANSI X9.24-3:2017 supplement test vectors, format 4 PIN block for
		// AES DUKPT transaction 1 (PIN key AF8C...) and 2 (PIN key D30B...),
		// PIN 1234, PAN 4111111111111111, random fill 2F69ADDE2E9E7ACE;
		// reproduced in the Forage Android SDK's PinBlockIso4Test and the
		// paycrypt-pinblock iso4 tests.
		{"X9.24-3/txn1", "AF8CB133A78F8DC2D1359F18527593FB", "1234", "4111111111111111", "2F69ADDE2E9E7ACE", "A912150391AB65A67E52883D81CE2D15"},
		{"X9.24-3/txn2", "D30BDC73EC9714B000BEC66BDB7B6D09", "1234", "4111111111111111", "2F69ADDE2E9E7ACE", "52A00503BD34BA1383F6A7EE9FE2547F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncryptISO4(unhex(tt.key), tt.pin, tt.pan, bytes.NewReader(unhex(tt.random)))
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("EncryptISO4 = %X, want %s", got, tt.want)
			}
			pin, err := DecryptISO4(unhex(tt.key), got, tt.pan)
			if err != nil || pin != tt.pin {
				t.Errorf("DecryptISO4 = %q, %v", pin, err)
			}
		})
	}
}

func TestISO4Fields(t *testing.T) {
	// The X9.24-3:2017 supplement's intermediate values for transaction 1:
	// plaintext PIN field, plaintext PAN field and intermediate block A
	// (the PIN field enciphered under AF8CB133A78F8DC2D1359F18527593FB).
	pinField := testPINFieldISO4(t, "1234", unhex("2F69ADDE2E9E7ACE"))
	if got := upperHex(pinField); got != "441234AAAAAAAAAA2F69ADDE2E9E7ACE" {
		t.Errorf("PIN field = %s", got)
	}
	if got := upperHex(panFieldISO4("4111111111111111")); got != "44111111111111111000000000000000" {
		t.Errorf("PAN field = %s", got)
	}
	c, _ := aesCipher(unhex("AF8CB133A78F8DC2D1359F18527593FB"))
	a := make([]byte, 16)
	c.Encrypt(a, pinField)
	if got := upperHex(a); got != "DE84127CF6DCA7DFE47BDE89057CB820" {
		t.Errorf("intermediate block A = %s", got)
	}

	// Structure, by construction: control 4, length, digits, A fill, M =
	// PAN length - 12, PAN left-justified and zero-padded.
	tests := []struct{ pin, pan, pinField, panField string }{
		{"123456789012", "4012345678909", "4C123456789012AA", "14012345678909000000000000000000"},
		{"0000", "1234567890123456789", "440000AAAAAAAAAA", "71234567890123456789000000000000"},
		{"98765", "432198765432109870", "4598765AAAAAAAAA", "64321987654321098700000000000000"},
	}
	for _, tt := range tests {
		if got := upperHex(testPINFieldISO4(t, tt.pin, make([]byte, 8))[:8]); got != tt.pinField {
			t.Errorf("PIN field(%s) = %s, want %s", tt.pin, got, tt.pinField)
		}
		if got := upperHex(panFieldISO4(tt.pan)); got != tt.panField {
			t.Errorf("PAN field(%s) = %s, want %s", tt.pan, got, tt.panField)
		}
	}
}

func TestDecryptISO4Vectors(t *testing.T) {
	tests := []struct {
		name, key, block, pan, want string
	}{
		// psec (knovichikhin/psec) decipher_pinblock_iso_4 docstring example.
		{"psec", "00112233445566778899AABBCCDDEEFF", "E4BE5B623AF7E006AC319E5B93544564", "1234567890123456", "1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin, err := DecryptISO4(unhex(tt.key), unhex(tt.block), tt.pan)
			if err != nil || pin != tt.want {
				t.Errorf("DecryptISO4 = %q, %v; want %q", pin, err, tt.want)
			}
		})
	}
}

// fixedReader yields the same byte forever.
type fixedReader byte

func (r fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestISO4RoundTrip(t *testing.T) {
	keys := []string{
		"00112233445566778899AABBCCDDEEFF",
		"00112233445566778899AABBCCDDEEFF0011223344556677",
		"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
	}
	pans := []string{"4012345678909", "4111111111111111", "432198765432109870", "6011000990139424123"}
	pins := []string{"0000", "1234", "98765", "123456789012"}
	for _, k := range keys {
		key := unhex(k)
		for _, pan := range pans {
			for _, pin := range pins {
				block, err := EncryptISO4(key, pin, pan, fixedReader(0x5A))
				if err != nil {
					t.Fatal(err)
				}
				if len(block) != 16 {
					t.Fatalf("block is %d bytes", len(block))
				}
				// Deterministic for a fixed random source.
				again, _ := EncryptISO4(key, pin, pan, fixedReader(0x5A))
				if !bytes.Equal(block, again) {
					t.Errorf("EncryptISO4 not deterministic for fixed random fill")
				}
				got, err := DecryptISO4(key, block, pan)
				if err != nil || got != pin {
					t.Errorf("key %d bytes, PAN %d digits: DecryptISO4 = %q, %v; want %q", len(key), len(pan), got, err, pin)
				}
			}
		}
	}

	// Default randomness: blocks differ and both decode.
	key := unhex(keys[0])
	a, err := EncryptISO4(key, "1234", "4111111111111111", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncryptISO4(key, "1234", "4111111111111111", nil)
	if bytes.Equal(a, b) {
		t.Errorf("two format 4 blocks with crypto/rand fill are equal")
	}
	for _, blk := range [][]byte{a, b} {
		if pin, err := DecryptISO4(key, blk, "4111111111111111"); err != nil || pin != "1234" {
			t.Errorf("DecryptISO4 = %q, %v", pin, err)
		}
	}
}

func TestDecryptISO4Wrong(t *testing.T) {
	key := unhex("00112233445566778899AABBCCDDEEFF")
	const pan = "4111111111111111"
	block, err := EncryptISO4(key, "1234", pan, fixedReader(0))
	if err != nil {
		t.Fatal(err)
	}
	// A wrong PAN changes the intermediate block, so the deciphered PIN
	// field is garbage; the wrong PAN field is also visible directly.
	for _, other := range []string{"4111111111111112", "41111111111111111", "4012345678909"} {
		if _, err := DecryptISO4(key, block, other); !errors.Is(err, ErrPINBlock) {
			t.Errorf("DecryptISO4 with PAN of %d digits: err = %v, want ErrPINBlock", len(other), err)
		}
		if bytes.Equal(panFieldISO4(other), panFieldISO4(pan)) {
			t.Errorf("PAN fields of different PANs are equal")
		}
	}
	if _, err := DecryptISO4(unhex("FFEEDDCCBBAA99887766554433221100"), block, pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecryptISO4 with the wrong key: err = %v, want ErrPINBlock", err)
	}
	for _, n := range []int{0, 8, 15, 17, 32} {
		if _, err := DecryptISO4(key, make([]byte, n), pan); !errors.Is(err, ErrPINBlock) {
			t.Errorf("DecryptISO4 with a %d-byte block: err = %v, want ErrPINBlock", n, err)
		}
	}
	for _, n := range []int{0, 8, 17, 33} {
		if _, err := EncryptISO4(make([]byte, n), "1234", pan, nil); err == nil {
			t.Errorf("EncryptISO4 with a %d-byte key: no error", n)
		}
		if _, err := DecryptISO4(make([]byte, n), block, pan); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("DecryptISO4 with a %d-byte key: err = %v, want a key error", n, err)
		}
	}
	// A failing random source is reported.
	if _, err := EncryptISO4(key, "1234", pan, bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Errorf("EncryptISO4 with a short random source: no error")
	}
}

// encipherISO4Field enciphers a chosen plaintext PIN field the way
// EncryptISO4 does, so malformed fields can be fed to DecryptISO4.
func encipherISO4Field(t *testing.T, key []byte, field, pan string) []byte {
	t.Helper()
	c, err := aesCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	b := unhex(field)
	c.Encrypt(b, b)
	xorInto(b, panFieldISO4(pan))
	c.Encrypt(b, b)
	return b
}

func TestDecryptISO4Malformed(t *testing.T) {
	key := unhex("00112233445566778899AABBCCDDEEFF")
	const pan = "4111111111111111"
	tests := []struct{ name, field, msg string }{
		{"control-0", "041234AAAAAAAAAA0000000000000000", "control field is 0"},
		{"control-5", "541234AAAAAAAAAA0000000000000000", "control field is 5"},
		{"length-3", "43123AAAAAAAAAAA0000000000000000", "PIN length 3"},
		{"length-13", "4D1234567890123A0000000000000000", "PIN length 13"},
		{"non-digit", "4412B4AAAAAAAAAA0000000000000000", "PIN position 3"},
		{"fill-F", "441234AAAAAAAAAF0000000000000000", "fill nibble 16"},
		{"fill-digit", "441234AAAA0AAAAA0000000000000000", "fill nibble 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin, err := DecryptISO4(key, encipherISO4Field(t, key, tt.field, pan), pan)
			if err == nil {
				t.Fatalf("DecryptISO4 = %q, want error", pin)
			}
			if !errors.Is(err, ErrPINBlock) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q: want ErrPINBlock mentioning %q", err, tt.msg)
			}
		})
	}
	// The random half is not checked.
	pin, err := DecryptISO4(key, encipherISO4Field(t, key, "441234AAAAAAAAAAFFFFFFFFFFFFFFFF", pan), pan)
	if err != nil || pin != "1234" {
		t.Errorf("DecryptISO4 = %q, %v", pin, err)
	}
}

func FuzzPINBlockISO0(f *testing.F) {
	f.Add(unhex("041225EEEEEEEEEE"), "1234", "4111111111111111")
	f.Add(unhex("041274EDCBA9876F"), "1234", "4012345678909")
	f.Add([]byte{}, "", "")
	f.Add(make([]byte, 8), "123456789012", "1234567890123456789")
	f.Add(unhex("FFFFFFFFFFFFFFFF"), "12a4", "41111111111111a1")
	f.Fuzz(func(t *testing.T, block []byte, pin, pan string) {
		// Decoding arbitrary input never panics; a block that decodes is
		// the canonical encoding of the PIN it decodes to.
		if got, err := PINFromISO0(block, pan); err == nil {
			again, err := PINBlockISO0(got, pan)
			if err != nil {
				t.Fatalf("decoded PIN does not re-encode: %v", err)
			}
			if !bytes.Equal(again, block) {
				t.Fatalf("re-encoded block %X != decoded block %X", again, block)
			}
		}
		// Encoding a valid PIN and PAN round-trips.
		enc, err := PINBlockISO0(pin, pan)
		if err != nil {
			if checkPIN(pin) == nil && checkPAN(pan) == nil {
				t.Fatalf("valid inputs rejected: %v", err)
			}
			return
		}
		got, err := PINFromISO0(enc, pan)
		if err != nil || got != pin {
			t.Fatalf("round trip: got %q, %v", got, err)
		}
	})
}
