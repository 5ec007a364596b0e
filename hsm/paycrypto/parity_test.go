package paycrypto

import (
	"bytes"
	"math/bits"
	"testing"
)

func TestSetOddParity(t *testing.T) {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	SetOddParity(b)
	for i, c := range b {
		if bits.OnesCount8(c)%2 != 1 || c&^1 != byte(i)&^1 {
			t.Errorf("SetOddParity(%#02x) = %#02x: want odd parity, the top 7 bits kept", i, c)
		}
	}
	// The classic test key 0123456789ABCDEF has odd parity already.
	k := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}
	want := bytes.Clone(k)
	if SetOddParity(k); !bytes.Equal(k, want) {
		t.Errorf("SetOddParity changed an odd-parity key: %X", k)
	}
}
