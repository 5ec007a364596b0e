package paycrypto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// TestKeyBlockPublishedVector wraps and unwraps the ANSI X9.143 /
// TR-31:2018 Annex A.7.4 example: an AES-128 PIN key under an AES-256
// KBPK with the published padding.
func TestKeyBlockPublishedVector(t *testing.T) {
	kbpk, _ := hex.DecodeString("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6")
	key, _ := hex.DecodeString("3F419E1CB7079442AA37474C2EFBF8B8")
	pad, _ := hex.DecodeString("1C2965473CE206BB855B01533782")
	const want = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34"
	h := KeyBlockHeader{Usage: "P0", Algorithm: 'A', ModeOfUse: 'E', Version: "00", Exportability: 'E'}
	got, err := WrapKeyBlock(kbpk, h, key, bytes.NewReader(pad))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WrapKeyBlock =\n%s, want the published\n%s", got, want)
	}
	gh, gk, err := UnwrapKeyBlock(kbpk, want)
	if err != nil {
		t.Fatalf("UnwrapKeyBlock: %v", err)
	}
	if gh != h || !bytes.Equal(gk, key) {
		t.Errorf("UnwrapKeyBlock = %+v %X", gh, gk)
	}
}

func TestKeyBlockRoundTripAndTamper(t *testing.T) {
	kbpk := make([]byte, 32)
	rand.Read(kbpk)
	other := make([]byte, 32)
	rand.Read(other)
	for _, n := range []int{14, 16, 24, 32} {
		key := make([]byte, n)
		rand.Read(key)
		h := KeyBlockHeader{Usage: "M3", Algorithm: 'T', ModeOfUse: 'C', Version: "00", Exportability: 'N'}
		block, err := WrapKeyBlock(kbpk, h, key, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, got, err := UnwrapKeyBlock(kbpk, block); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("%d-byte key: round trip %X, %v", n, got, err)
		}
		bad := map[string]string{
			"usage changed":  block[:5] + "P0" + block[7:],
			"body bit":       block[:20] + flipHex(block[20]) + block[21:],
			"MAC bit":        block[:len(block)-1] + flipHex(block[len(block)-1]),
			"truncated":      block[:len(block)-2],
			"not hex":        block[:20] + "Z" + block[21:],
			"other KBPK":     "",
			"length lies":    "D9999" + block[5:],
			"not version D":  "B" + block[1:],
			"header only":    block[:16],
			"optional block": block[:12] + "01" + block[14:],
		}
		for name, b := range bad {
			k := kbpk
			if name == "other KBPK" {
				b, k = block, other
			}
			if _, _, err := UnwrapKeyBlock(k, b); !errors.Is(err, ErrKeyBlock) {
				t.Errorf("%d-byte key, %s: error %v, want ErrKeyBlock", n, name, err)
			}
		}
	}
}

func flipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}
