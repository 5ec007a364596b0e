package hsmtest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// testConcurrent runs 64 goroutines of mixed operations while one of them
// keeps rotating the data key; run it with -race.
func testConcurrent(t *testing.T, e *env) {
	const goroutines, rounds = 64, 16
	pan := cards.PAN
	ks := e.importKeys()
	msg := unhex(rfc4493Msg)[:16]
	wantCMAC := unhex(rfc4493Tags[1].tag)[:8]
	iso0, err := paycrypto.EncryptISO0(unhex(tdesTPK), "1234", pan)
	if err != nil {
		t.Fatal(err)
	}
	var (
		hash1 hsm.PANHash
		old   hsm.EncryptedPAN
	)
	if !e.cfg.pinMAC {
		if hash1, err = e.b.HashPAN(e.ctx, ks.hash, pan); err != nil {
			t.Fatal(err)
		}
		if old, err = e.b.EncryptPAN(e.ctx, ks.data, pan); err != nil {
			t.Fatal(err)
		}
	}

	steps := []func(g int) error{
		func(int) error { // PAN round trip, and the pre-rotation ciphertext
			enc, err := e.b.EncryptPAN(e.ctx, ks.data, pan)
			if err != nil {
				return fmt.Errorf("EncryptPAN: %w", err)
			}
			for _, c := range []hsm.EncryptedPAN{enc, old} {
				got, err := e.b.DecryptPAN(e.ctx, c)
				if err != nil || got != pan {
					return fmt.Errorf("DecryptPAN version %d: %v", c.Key.Version, err)
				}
			}
			return nil
		},
		func(int) error {
			h, err := e.b.HashPAN(e.ctx, ks.hash, pan)
			if err != nil || !bytes.Equal(h.Hash, hash1.Hash) {
				return fmt.Errorf("HashPAN: %v (hash equal %v)", err, err == nil && bytes.Equal(h.Hash, hash1.Hash))
			}
			return nil
		},
		func(int) error {
			out, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: iso0, PAN: pan,
				From: hsm.PINKey{Key: ks.tpk, Format: hsm.ISO0}, To: hsm.PINKey{Key: ks.zpk, Format: hsm.ISO0}})
			if err != nil {
				return fmt.Errorf("TranslatePIN TPK: %w", err)
			}
			if pin, err := paycrypto.DecryptISO0(unhex(tdesZPK), out, pan); err != nil || pin != "1234" {
				return fmt.Errorf("TranslatePIN TPK output does not decode: %v", err)
			}
			return nil
		},
		func(g int) error {
			v := x924Blocks[g%len(x924Blocks)]
			out, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: unhex(v.block), PAN: x924PAN,
				From: hsm.PINKey{Key: ks.bdk, Format: hsm.ISO0, KSN: unhex(v.ksn)}, To: hsm.PINKey{Key: ks.zpkAES, Format: hsm.ISO4}})
			if err != nil {
				return fmt.Errorf("TranslatePIN DUKPT: %w", err)
			}
			if pin, err := paycrypto.DecryptISO4(unhex(aesZPK), out, x924PAN); err != nil || pin != x924PIN {
				return fmt.Errorf("TranslatePIN DUKPT output does not decode: %v", err)
			}
			return nil
		},
		func(int) error {
			mac, err := e.b.GenerateMAC(e.ctx, hsm.MACRequest{Key: ks.macTDES, Algorithm: hsm.RetailMAC, Data: []byte(x919Data)})
			if err != nil || !bytes.Equal(mac, unhex(x919MAC)) {
				return fmt.Errorf("GenerateMAC retail: %X, %v", mac, err)
			}
			return nil
		},
		func(int) error {
			err := e.b.VerifyMAC(e.ctx, hsm.VerifyMACRequest{
				MACRequest: hsm.MACRequest{Key: ks.macAES, Algorithm: hsm.CMAC, Data: msg}, MAC: wantCMAC})
			if err != nil {
				return fmt.Errorf("VerifyMAC CMAC: %w", err)
			}
			bad := append([]byte{}, wantCMAC...)
			bad[0] ^= 0x80
			err = e.b.VerifyMAC(e.ctx, hsm.VerifyMACRequest{
				MACRequest: hsm.MACRequest{Key: ks.macAES, Algorithm: hsm.CMAC, Data: msg}, MAC: bad})
			if !errors.Is(err, hsm.ErrMACMismatch) {
				return fmt.Errorf("VerifyMAC CMAC of a wrong MAC: %v", err)
			}
			return nil
		},
		func(int) error {
			if _, err := e.b.Keys(e.ctx); err != nil {
				return fmt.Errorf("listing keys: %w", err)
			}
			return nil
		},
	}

	if e.cfg.pinMAC {
		steps = steps[2:] // the PAN steps
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				var err error
				if g == 0 {
					// Rotate the data key under the others' feet.
					_, err = e.b.GenerateKey(e.ctx, hsm.GenerateKeyRequest{
						Label: ks.data.Label, Usage: hsm.UsagePANData, Algorithm: hsm.AES, Size: 32})
				} else {
					err = steps[(g+i)%len(steps)](g)
				}
				if err != nil {
					t.Errorf("goroutine %d round %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()

	keys, err := e.b.Keys(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	current := 0
	for _, k := range keys {
		if k.Label == ks.data.Label {
			current = max(current, k.Version)
		}
	}
	if current != rounds+1 {
		t.Errorf("after %d concurrent rotations the data key is version %d, want %d", rounds, current, rounds+1)
	}
	if e.cfg.pinMAC {
		return
	}
	enc, err := e.b.EncryptPAN(e.ctx, ks.data, pan)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Key.Version != rounds+1 {
		t.Errorf("after %d concurrent rotations EncryptPAN uses version %d, want %d", rounds, enc.Key.Version, rounds+1)
	}
}
