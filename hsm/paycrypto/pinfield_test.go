package paycrypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// digits returns the digit values of a PIN string.
func digits(pin string) []byte {
	d := make([]byte, len(pin))
	for i := range d {
		d[i] = pin[i] - '0'
	}
	return d
}

// testPINFieldISO4 is PINFieldISO4 for a PIN string, failing t on error.
func testPINFieldISO4(t *testing.T, pin string, random []byte) []byte {
	t.Helper()
	f, err := PINFieldISO4(digits(pin), random)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// recorder wraps a BlockFunc and keeps every slice it returned, so a test
// can check that the codec wiped the ones it did not hand back.
type recorder struct {
	f   BlockFunc
	out [][]byte
}

func (r *recorder) run(in []byte) ([]byte, error) {
	out, err := r.f(in)
	r.out = append(r.out, out)
	return out, err
}

// checkWiped fails unless every recorded slice but the one returned (nil:
// none returned) is all zero.
func (r *recorder) checkWiped(t *testing.T, returned []byte) {
	t.Helper()
	for i, b := range r.out {
		if returned != nil && len(b) > 0 && &b[0] == &returned[0] {
			continue
		}
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("block function result %d not wiped: %X", i, b)
		}
	}
}

// TestDigitsCodecVectors runs the published vectors through the []byte
// API: format 0 (X9.24-1 A.4 clear block, then the DUKPT block under the
// counter-1 PIN key) and format 4 (X9.24-3 supplement, transaction 1).
func TestDigitsCodecVectors(t *testing.T) {
	clearBlock, err := PINBlockISO0Digits(digits("1234"), x924PAN)
	if err != nil || upperHex(clearBlock) != "041274EDCBA9876F" {
		t.Fatalf("PINBlockISO0Digits = %X, %v", clearBlock, err)
	}
	if pin, err := PINDigitsFromISO0(clearBlock, x924PAN); err != nil || !bytes.Equal(pin, digits("1234")) {
		t.Errorf("PINDigitsFromISO0 = %v, %v", pin, err)
	}
	if f, err := PANFieldISO0(x924PAN); err != nil || upperHex(f) != "0000401234567890" {
		t.Errorf("PANFieldISO0 = %X, %v", f, err)
	}

	pinKey := unhex("042666B49184CF5C68DE9628D0397B36") // A.4.2 counter 1, PIN variant
	c, err := NewTDESCipher(pinKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := &recorder{f: EncryptBlocks(c)}
	block, err := EncipherISO0(enc.run, digits("1234"), x924PAN)
	if err != nil || upperHex(block) != "1B9C1845EB993A7A" {
		t.Fatalf("EncipherISO0 = %X, %v", block, err)
	}
	enc.checkWiped(t, block)
	dec := &recorder{f: DecryptBlocks(c)}
	if pin, err := DecipherISO0(dec.run, block, x924PAN); err != nil || !bytes.Equal(pin, digits("1234")) {
		t.Errorf("DecipherISO0 = %v, %v", pin, err)
	}
	dec.checkWiped(t, nil)

	aesKey, _ := aesCipher(unhex("AF8CB133A78F8DC2D1359F18527593FB"))
	random := unhex("2F69ADDE2E9E7ACE")
	if f, err := PANFieldISO4("4111111111111111"); err != nil || upperHex(f) != "44111111111111111000000000000000" {
		t.Errorf("PANFieldISO4 = %X, %v", f, err)
	}
	enc = &recorder{f: EncryptBlocks(aesKey)}
	block, err = EncipherISO4(enc.run, digits("1234"), random, "4111111111111111")
	if err != nil || upperHex(block) != "A912150391AB65A67E52883D81CE2D15" {
		t.Fatalf("EncipherISO4 = %X, %v", block, err)
	}
	enc.checkWiped(t, block)
	dec = &recorder{f: DecryptBlocks(aesKey)}
	if pin, err := DecipherISO4(dec.run, block, "4111111111111111"); err != nil || !bytes.Equal(pin, digits("1234")) {
		t.Errorf("DecipherISO4 = %v, %v", pin, err)
	}
	dec.checkWiped(t, nil)
	if len(dec.out) != 2 {
		t.Errorf("DecipherISO4 ran the block function %d times, want 2", len(dec.out))
	}
}

// TestDigitsCodecErrors: a block that does not decode wraps ErrPINBlock,
// and so does a malformed block length; a malformed PAN or PIN argument
// does not; a failing block function's error is wrapped and what it
// returned before is wiped.
func TestDigitsCodecErrors(t *testing.T) {
	const pan = "4111111111111111"
	for _, pin := range [][]byte{nil, {1, 2, 3}, make([]byte, 13), {1, 2, 3, 10}, digits("12a4")} {
		if _, err := PINBlockISO0Digits(pin, pan); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("PINBlockISO0Digits(%v): %v, want a non-PIN-block error", pin, err)
		}
		if _, err := PINFieldISO4(pin, make([]byte, 8)); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("PINFieldISO4(%v): %v, want a non-PIN-block error", pin, err)
		}
	}
	if _, err := PINFieldISO4(digits("1234"), make([]byte, 7)); err == nil {
		t.Error("PINFieldISO4 accepted 7 random bytes")
	}
	for _, bad := range []string{"", "411111111111", "41111111111111a1"} {
		if _, err := PANFieldISO0(bad); err == nil || bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("PANFieldISO0(%q): %v", bad, err)
		}
		if _, err := PANFieldISO4(bad); err == nil {
			t.Errorf("PANFieldISO4(%q) accepted", bad)
		}
		if err := CheckPAN(bad); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("CheckPAN(%q): %v", bad, err)
		}
		if _, err := PINDigitsFromISO0(make([]byte, 8), bad); err == nil || errors.Is(err, ErrPINBlock) {
			t.Errorf("PINDigitsFromISO0 with PAN %q: %v, want a non-PIN-block error", bad, err)
		}
	}
	identity := func(in []byte) ([]byte, error) { return bytes.Clone(in), nil }
	if _, err := DecipherISO0(identity, make([]byte, 7), pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecipherISO0 of 7 bytes: %v", err)
	}
	if _, err := DecipherISO4(identity, make([]byte, 8), pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecipherISO4 of 8 bytes: %v", err)
	}
	if _, err := PINDigitsFromFieldISO4(make([]byte, 8)); !errors.Is(err, ErrPINBlock) {
		t.Errorf("PINDigitsFromFieldISO4 of 8 bytes: %v", err)
	}
	// A field with the wrong control nibble, through the identity cipher.
	if _, err := DecipherISO0(identity, unhex("141225EEEEEEEEEE"), pan); !errors.Is(err, ErrPINBlock) {
		t.Errorf("DecipherISO0 control 1: %v", err)
	}

	errToken := errors.New("token says no")
	calls := 0
	second := &recorder{f: func(in []byte) ([]byte, error) {
		if calls++; calls == 2 {
			return nil, errToken
		}
		return bytes.Clone(in), nil
	}}
	if _, err := EncipherISO4(second.run, digits("1234"), make([]byte, 8), pan); !errors.Is(err, errToken) {
		t.Errorf("EncipherISO4 with a failing cipher: %v", err)
	}
	second.checkWiped(t, nil)
	calls = 0
	if _, err := DecipherISO4(second.run, make([]byte, 16), pan); !errors.Is(err, errToken) || errors.Is(err, ErrPINBlock) {
		t.Errorf("DecipherISO4 with a failing cipher: %v", err)
	}
	second.checkWiped(t, nil)
}

func TestWipe(t *testing.T) {
	b := []byte{1, 2, 3}
	Wipe(b)
	if !bytes.Equal(b, []byte{0, 0, 0}) {
		t.Errorf("Wipe left %v", b)
	}
	Wipe(nil)
}
