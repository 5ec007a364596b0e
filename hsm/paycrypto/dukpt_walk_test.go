package paycrypto

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"
)

// TestTDESWalkFromIPEK splits TDES DUKPT the way a token-held BDK does:
// the IPEK input enciphered under the BDK and under its variant gives the
// A.4 IPEK, and the walk from the IPEK gives the annex's transaction keys
// and PIN keys, without touching its inputs.
func TestTDESWalkFromIPEK(t *testing.T) {
	bdk := unhex(x924BDK)
	in, err := TDESIPEKInput(unhex("FFFF9876543210E00015"))
	if err != nil || upperHex(in) != "FFFF9876543210E0" {
		t.Fatalf("TDESIPEKInput = %X, %v", in, err)
	}
	variant, err := TDESBDKVariant(bdk)
	if err != nil || upperHex(variant) != "C1E385A789ABCDEF3E1C7A5876543210" {
		t.Fatalf("TDESBDKVariant = %X, %v", variant, err)
	}
	ipek := make([]byte, 16)
	for i, k := range [][]byte{bdk, variant} {
		c, err := NewTDESCipher(k)
		if err != nil {
			t.Fatal(err)
		}
		c.Encrypt(ipek[8*i:], in)
	}
	if upperHex(ipek) != x924IPEK {
		t.Fatalf("IPEK from the halves = %X, want %s", ipek, x924IPEK)
	}
	for _, tt := range append(append([]tdesSequence(nil), tdesInitialSequence...), tdesRolloverSequence...) {
		ksn := unhex(tt.ksn)
		ipek0, ksn0 := bytes.Clone(ipek), bytes.Clone(ksn)
		key, err := TDESTransactionKeyFromIPEK(ipek, ksn)
		if err != nil || upperHex(key) != tt.key {
			t.Errorf("TDESTransactionKeyFromIPEK(%s) = %X, %v; want %s", tt.ksn, key, err, tt.key)
		}
		pinKey, err := TDESPINKeyFromIPEK(ipek, ksn)
		want, _ := TDESPINKey(bdk, ksn)
		if err != nil || !bytes.Equal(pinKey, want) {
			t.Errorf("TDESPINKeyFromIPEK(%s) = %X, %v; want %X", tt.ksn, pinKey, err, want)
		}
		if !bytes.Equal(ipek, ipek0) || !bytes.Equal(ksn, ksn0) {
			t.Fatalf("inputs modified")
		}
	}
	for _, bad := range []string{"FFFF9876543210E00000", "FFFF9876543210E007FF", "9876543210E00001"} {
		if err := CheckTDESKSN(unhex(bad)); err == nil {
			t.Errorf("CheckTDESKSN(%s) accepted", bad)
		}
		if _, err := TDESPINKeyFromIPEK(ipek, unhex(bad)); err == nil {
			t.Errorf("TDESPINKeyFromIPEK(%s) accepted", bad)
		}
	}
	if _, err := TDESPINKeyFromIPEK(ipek[:8], unhex("FFFF9876543210E00001")); err == nil {
		t.Error("TDESPINKeyFromIPEK accepted an 8-byte IPEK")
	}
	if _, err := TDESBDKVariant(bdk[:8]); err == nil {
		t.Error("TDESBDKVariant accepted an 8-byte BDK")
	}
}

// TestAESDerivations runs the X9.24-3 walk step by step, as a token does
// with C_DeriveKey: AES-ECB of each step's data under the key before,
// truncated to KeyLen, gives the published working keys.
func TestAESDerivations(t *testing.T) {
	// Published PIN encryption working keys (see TestAESWorkingKey), the
	// number of intermediate derivation keys and the head of the initial
	// key's derivation data (version, block 1, usage 8001, type, bits).
	tests := []struct{ bdk, counter, want, head string }{
		{x9243BDK128, "00000001", "AF8CB133A78F8DC2D1359F18527593FB", "0101800100020080"},
		{x9243BDK128, "FFFE4000", "6239A27F572DEDB17BCA1AC413EF9FE9", "0101800100020080"},
		{x9243BDK256, "00000003", "96A1AB5D37CB7CF81DDE64F66C46E0389B833E7AD5F4E44C791F04FAFDA6DA0E", "0101800100040100"},
	}
	for _, tt := range tests {
		bdkType, err := AESKeyTypeOf(len(unhex(tt.bdk)))
		if err != nil {
			t.Fatal(err)
		}
		wType := bdkType // these vectors: a working key as strong as the BDK
		steps, err := AESDerivations(ksnFor(tt.counter), bdkType, PINEncryption, wType)
		if err != nil {
			t.Fatal(err)
		}
		ones := bits.OnesCount32(binary.BigEndian.Uint32(unhex(tt.counter)))
		if len(steps) != ones+2 || steps[0].Usage != KeyDerivationInitialKey || steps[1].Usage != KeyDerivation {
			t.Fatalf("%s/%s: %d steps, first %v then %v", tt.bdk, tt.counter, len(steps), steps[0].Usage, steps[1].Usage)
		}
		if last := steps[len(steps)-1]; last.Usage != PINEncryption || last.Type != wType || last.KeyLen != len(unhex(tt.want)) {
			t.Errorf("last step %+v", last)
		}
		if got := upperHex(steps[0].Data[:8]); got != tt.head {
			t.Errorf("initial key derivation data starts %s, want %s", got, tt.head)
		}
		key := unhex(tt.bdk)
		for _, d := range steps {
			c, err := aesCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, len(d.Data))
			for i := 0; i < len(out); i += 16 {
				c.Encrypt(out[i:], d.Data[i:])
			}
			key = out[:d.KeyLen]
		}
		if upperHex(key) != tt.want {
			t.Errorf("%s/%s: walked to %X, want %s", tt.bdk, tt.counter, key, tt.want)
		}
	}
	if _, err := AESDerivations(ksnFor("00000000"), AES128, PINEncryption, AES128); err == nil {
		t.Error("AESDerivations accepted counter 0")
	}
	if _, err := AESDerivations(ksnFor("00000001"), AES128, KeyDerivation, AES128); err == nil {
		t.Error("AESDerivations accepted a derivation usage for the working key")
	}
	if _, err := AESKeyTypeOf(20); err == nil {
		t.Error("AESKeyTypeOf(20) accepted")
	}
}
