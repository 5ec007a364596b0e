package hsmtest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm/paycrypto"
)

// TestVectors checks the suite's own known answers against paycrypto, so
// that a backend failure points at the backend, not at a typo here.
func TestVectors(t *testing.T) {
	t.Run("X9.24-1 Annex A", func(t *testing.T) {
		for _, v := range x924Blocks {
			key, err := paycrypto.TDESPINKey(unhex(x924BDK), unhex(v.ksn))
			if err != nil {
				t.Fatal(err)
			}
			got, err := paycrypto.EncryptISO0(key, x924PIN, x924PAN)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, unhex(v.block)) {
				t.Errorf("KSN %s: block %X, published %s", v.ksn, got, v.block)
			}
		}
	})
	t.Run("X9.19", func(t *testing.T) {
		got, err := paycrypto.RetailMAC(unhex(x919Key), []byte(x919Data))
		if err != nil || !bytes.Equal(got, unhex(x919MAC)) {
			t.Errorf("retail MAC %X (%v), published %s", got, err, x919MAC)
		}
	})
	t.Run("RFC 4493", func(t *testing.T) {
		for _, v := range rfc4493Tags {
			got, err := paycrypto.AESCMAC(unhex(rfc4493Key), unhex(rfc4493Msg)[:v.n])
			if err != nil || !bytes.Equal(got, unhex(v.tag)) {
				t.Errorf("CMAC of %d bytes %X (%v), published %s", v.n, got, err, v.tag)
			}
		}
		got, err := paycrypto.AESCMAC(unhex(sp80038BKey256), unhex(rfc4493Msg)[:16])
		if err != nil || !bytes.Equal(got, unhex(sp80038BTag256)) {
			t.Errorf("AES-256 CMAC %X (%v), published %s", got, err, sp80038BTag256)
		}
	})
	t.Run("KCV", func(t *testing.T) {
		got, err := paycrypto.KCV("tdes", unhex(x924BDK))
		if err != nil || !bytes.Equal(got, unhex(x924KCV)) {
			t.Errorf("KCV %X (%v), published %s", got, err, x924KCV)
		}
	})
	t.Run("X9.24-3 initial key", func(t *testing.T) {
		got, err := paycrypto.AESInitialKey(unhex(x9243BDK), unhex(x9243KeyID), paycrypto.AES128)
		if err != nil || !bytes.Equal(got, unhex(x9243InitialKey)) {
			t.Errorf("initial key %X (%v), published %s", got, err, x9243InitialKey)
		}
	})
	t.Run("X9.24-3 KSNs", func(t *testing.T) {
		for _, ksn := range x9243KSNs {
			if !strings.HasPrefix(ksn, x9243KeyID) || len(unhex(ksn)) != 12 {
				t.Errorf("KSN %s is not initial key ID | counter", ksn)
			}
			block := aesDUKPTBlock(t, unhex(ksn), "1234", x924PAN)
			key, _ := paycrypto.AESWorkingKey(unhex(x9243BDK), unhex(ksn), paycrypto.AES128, paycrypto.PINEncryption, paycrypto.AES128)
			if pin, err := paycrypto.DecryptISO4(key, block, x924PAN); err != nil || pin != "1234" {
				t.Errorf("KSN %s: round trip gives %v", ksn, err)
			}
		}
	})
}

// TestLabels checks that generated labels are unique and fit the common
// label rules (1 to 64 characters of letters, digits and '-').
func TestLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range []string{"a", "Some/Very Long Sub-test Name With Spaces & Symbols!!", "x"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nopBackend{}, config{})
			l := e.label("zpk-aes256")
			if len(l) > 64 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				t.Errorf("label %q is not 1-64 of [a-z0-9-]", l)
			}
			if seen[l] {
				t.Errorf("label %q repeats", l)
			}
			seen[l] = true
		})
	}
}

// nopBackend satisfies Backend for TestLabels; only Close is called.
type nopBackend struct{ Backend }

func (nopBackend) Close() error { return nil }
