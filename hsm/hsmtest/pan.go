package hsmtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/kbpay/switch/hsm"
)

// containsPAN reports whether ct contains the PAN's digits as ASCII or as
// packed BCD (the two ways a PAN sits in a message).
func containsPAN(ct []byte, pan string) bool {
	if bytes.Contains(ct, []byte(pan)) {
		return true
	}
	p := pan
	if len(p)%2 == 1 {
		p = p[:len(p)-1]
	}
	bcd, err := hex.DecodeString(p)
	return err == nil && len(bcd) >= 4 && bytes.Contains(ct, bcd)
}

func testPANRoundTrip(t *testing.T, e *env) {
	key := e.imp("pan-data", hsm.UsagePANData, hsm.AES, random(t, 32))
	for _, pan := range testPANs {
		t.Run(pan[:6], func(t *testing.T) {
			enc, err := e.b.EncryptPAN(e.ctx, key, pan)
			if err != nil {
				t.Fatalf("EncryptPAN: %v", err)
			}
			if enc.Key.Label != key.Label || enc.Key.Version != 1 {
				t.Errorf("EncryptPAN key = %+v, want %s version 1", enc.Key, key.Label)
			}
			if containsPAN(enc.Ciphertext, pan) {
				t.Errorf("ciphertext contains the PAN digits")
			}
			got, err := e.b.DecryptPAN(e.ctx, enc)
			if err != nil {
				t.Fatalf("DecryptPAN: %v", err)
			}
			if got != pan {
				t.Errorf("DecryptPAN = %q, want %q", got, pan)
			}
			enc2, err := e.b.EncryptPAN(e.ctx, key, pan)
			if err != nil {
				t.Fatalf("EncryptPAN again: %v", err)
			}
			if bytes.Equal(enc.Ciphertext, enc2.Ciphertext) {
				t.Errorf("two encryptions of the same PAN are equal")
			}
			// The version in the request is ignored: always the current key.
			enc3, err := e.b.EncryptPAN(e.ctx, hsm.KeyRef{Label: key.Label, Version: 7}, pan)
			if err != nil || enc3.Key.Version != 1 {
				t.Errorf("EncryptPAN with version 7 = %+v, %v; want current version 1", enc3.Key, err)
			}
		})
	}
}

func testPANTamper(t *testing.T, e *env) {
	key := e.imp("pan-data", hsm.UsagePANData, hsm.AES, random(t, 32))
	other := e.imp("pan-other", hsm.UsagePANData, hsm.AES, random(t, 32))
	pan := cards.PAN
	enc, err := e.b.EncryptPAN(e.ctx, key, pan)
	if err != nil {
		t.Fatalf("EncryptPAN: %v", err)
	}
	ct := enc.Ciphertext
	flip := func(i int) []byte {
		c := slices.Clone(ct)
		c[i] ^= 0x01
		return c
	}
	cases := []struct {
		name string
		enc  hsm.EncryptedPAN
	}{
		{"first byte flipped", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: flip(0)}},
		{"middle byte flipped", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: flip(len(ct) / 2)}},
		{"last byte flipped", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: flip(len(ct) - 1)}},
		{"truncated", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: ct[:len(ct)-1]}},
		{"extended", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: append(slices.Clone(ct), 0)}},
		{"short", hsm.EncryptedPAN{Key: enc.Key, Ciphertext: ct[:8]}},
		{"empty", hsm.EncryptedPAN{Key: enc.Key}},
		{"other key", hsm.EncryptedPAN{Key: hsm.KeyRef{Label: other.Label, Version: 1}, Ciphertext: ct}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.b.DecryptPAN(e.ctx, tc.enc)
			wantErr(t, "DecryptPAN", err, hsm.ErrDecrypt)
			if got != "" {
				t.Errorf("DecryptPAN returned %d characters with an error", len(got))
			}
		})
	}
}

func testPANHash(t *testing.T, e *env) {
	m1, m2 := random(t, 32), random(t, 32)
	k1 := e.imp("hash-1", hsm.UsagePANHash, hsm.HMAC, m1)
	k2 := e.imp("hash-2", hsm.UsagePANHash, hsm.HMAC, m2)
	seen := map[string]string{}
	for _, pan := range testPANs {
		h1, err := e.b.HashPAN(e.ctx, k1, pan)
		if err != nil {
			t.Fatalf("HashPAN: %v", err)
		}
		if len(h1.Hash) != 32 {
			t.Errorf("HashPAN length = %d, want 32", len(h1.Hash))
		}
		if h1.Key.Label != k1.Label || h1.Key.Version != 1 {
			t.Errorf("HashPAN key = %+v, want %s version 1", h1.Key, k1.Label)
		}
		mac := hmac.New(sha256.New, m1)
		mac.Write([]byte(pan))
		if want := mac.Sum(nil); !bytes.Equal(h1.Hash, want) {
			t.Errorf("HashPAN is not HMAC-SHA-256 of the PAN under the key")
		}
		again, err := e.b.HashPAN(e.ctx, k1, pan)
		if err != nil || !bytes.Equal(again.Hash, h1.Hash) {
			t.Errorf("HashPAN is not deterministic (err %v)", err)
		}
		h2, err := e.b.HashPAN(e.ctx, k2, pan)
		if err != nil {
			t.Fatalf("HashPAN key 2: %v", err)
		}
		if bytes.Equal(h1.Hash, h2.Hash) {
			t.Errorf("HashPAN is the same under two keys")
		}
		if containsPAN(h1.Hash, pan) {
			t.Errorf("hash contains the PAN digits")
		}
		if prev, dup := seen[string(h1.Hash)]; dup {
			t.Errorf("HashPAN collides for %s and %s", prev, pan)
		}
		seen[string(h1.Hash)] = pan
	}
}

// mustImportVersion imports 32 random bytes under name (a rotation when
// the label has a key) and fails unless the import became version want.
func (e *env) mustImportVersion(name string, u hsm.Usage, alg hsm.Algorithm, want int) hsm.KeyInfo {
	e.tb.Helper()
	info := e.mustImport(name, u, alg, random(e.tb, 32))
	if info.Version != want {
		e.tb.Fatalf("ImportKey %s: version %d, want %d", info.Label, info.Version, want)
	}
	return info
}

// rotate imports version 1 of the key name, calls op with its label,
// imports version 2 (a rotation) and calls op again: op's results before
// and after the rotation.
func rotate[T any](e *env, name string, u hsm.Usage, alg hsm.Algorithm, what string, op func(hsm.KeyRef) (T, error)) (ref hsm.KeyRef, before, after T) {
	e.tb.Helper()
	ref = hsm.KeyRef{Label: e.mustImportVersion(name, u, alg, 1).Label}
	before, err := op(ref)
	if err != nil {
		e.tb.Fatalf("%s version 1: %v", what, err)
	}
	e.mustImportVersion(name, u, alg, 2)
	if after, err = op(ref); err != nil {
		e.tb.Fatalf("%s version 2 (current): %v", what, err)
	}
	return ref, before, after
}

func testRotationPANData(t *testing.T, e *env) {
	pan := cards.PAN
	ref, old, cur := rotate(e, "pan-data", hsm.UsagePANData, hsm.AES, "EncryptPAN", func(ref hsm.KeyRef) (hsm.EncryptedPAN, error) {
		return e.b.EncryptPAN(e.ctx, ref, pan)
	})
	if cur.Key.Version != 2 {
		t.Errorf("after rotation EncryptPAN version = %d, want 2", cur.Key.Version)
	}
	for _, enc := range []hsm.EncryptedPAN{old, cur} {
		got, err := e.b.DecryptPAN(e.ctx, enc)
		if err != nil || got != pan {
			t.Errorf("DecryptPAN version %d after rotation: %v", enc.Key.Version, err)
		}
	}
	// Old ciphertext presented as the new version must not decrypt.
	_, err := e.b.DecryptPAN(e.ctx, hsm.EncryptedPAN{Key: cur.Key, Ciphertext: old.Ciphertext})
	wantErr(t, "DecryptPAN v1 ciphertext as v2", err, hsm.ErrDecrypt)

	// GenerateKey under the same label rotates too.
	v3, err := e.b.GenerateKey(e.ctx, hsm.GenerateKeyRequest{Label: ref.Label, Usage: hsm.UsagePANData, Algorithm: hsm.AES, Size: 32})
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if v3.Version != 3 || len(v3.KCV) != 3 {
		t.Errorf("GenerateKey = version %d, KCV %d bytes; want 3, 3", v3.Version, len(v3.KCV))
	}
	enc3, err := e.b.EncryptPAN(e.ctx, ref, pan)
	if err != nil || enc3.Key.Version != 3 {
		t.Errorf("EncryptPAN after GenerateKey = %+v, %v; want version 3", enc3.Key, err)
	}
	if got, err := e.b.DecryptPAN(e.ctx, old); err != nil || got != pan {
		t.Errorf("DecryptPAN v1 after two rotations: %v", err)
	}
	keys, err := e.b.Keys(e.ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	versions := map[int]bool{}
	for _, k := range keys {
		if k.Label == ref.Label {
			versions[k.Version] = true
		}
	}
	if !versions[1] || !versions[2] || !versions[3] {
		t.Errorf("Keys lists versions %v of %s, want 1, 2 and 3", versions, ref.Label)
	}
}

func testRotationPANHash(t *testing.T, e *env) {
	pan := cards.PAN
	ref, h1, h2 := rotate(e, "pan-hash", hsm.UsagePANHash, hsm.HMAC, "HashPAN", func(ref hsm.KeyRef) (hsm.PANHash, error) {
		return e.b.HashPAN(e.ctx, ref, pan)
	})
	if h2.Key.Version != 2 || bytes.Equal(h2.Hash, h1.Hash) {
		t.Errorf("HashPAN after rotation: version %d, same hash %v; want version 2, a new hash",
			h2.Key.Version, bytes.Equal(h2.Hash, h1.Hash))
	}
	old, err := e.b.HashPAN(e.ctx, hsm.KeyRef{Label: ref.Label, Version: 1}, pan)
	if err != nil {
		t.Fatalf("HashPAN version 1: %v", err)
	}
	if old.Key.Version != 1 || !bytes.Equal(old.Hash, h1.Hash) {
		t.Errorf("HashPAN with explicit version 1 does not give the old hash")
	}
}
