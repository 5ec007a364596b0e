package hsmtest

import (
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// Benchmarks measures the hot-path operations of a backend: PAN
// encryption, decryption and hashing, PIN translation (static ISO 0 TPK to
// ZPK, TDES DUKPT and AES DUKPT), retail MAC and CMAC, each serially and
// in parallel (session pooling shows in the second). open is called once;
// the backend is closed when b ends.
func Benchmarks(b *testing.B, open func(b *testing.B) Backend, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	e := newEnv(b, open(b), cfg)
	pan, pin := cards.PAN, "1234"
	k := e.importKeys()

	var enc hsm.EncryptedPAN
	if !cfg.pinMAC {
		var err error
		if enc, err = e.b.EncryptPAN(e.ctx, k.data, pan); err != nil {
			b.Fatal(err)
		}
	}
	iso0, err := paycrypto.EncryptISO0(unhex(tdesTPK), pin, pan)
	if err != nil {
		b.Fatal(err)
	}
	aesKSN := unhex(x9243KSNs[0])
	aesBlock := aesDUKPTBlock(b, aesKSN, pin, pan)
	// A typical ISO 8583 authorisation request is a few hundred bytes.
	msg := random(b, 256)

	ops := []struct {
		name string
		fn   func() error
	}{
		{"EncryptPAN", func() error { _, err := e.b.EncryptPAN(e.ctx, k.data, pan); return err }},
		{"DecryptPAN", func() error { _, err := e.b.DecryptPAN(e.ctx, enc); return err }},
		{"HashPAN", func() error { _, err := e.b.HashPAN(e.ctx, k.hash, pan); return err }},
		{"TranslatePIN/ISO0-TPK-ZPK", func() error {
			_, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: iso0, PAN: pan,
				From: hsm.PINKey{Key: k.tpk, Format: hsm.ISO0}, To: hsm.PINKey{Key: k.zpk, Format: hsm.ISO0}})
			return err
		}},
		{"TranslatePIN/TDES-DUKPT", func() error {
			_, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: unhex(x924Blocks[0].block), PAN: x924PAN,
				From: hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: unhex(x924Blocks[0].ksn)}, To: hsm.PINKey{Key: k.zpk, Format: hsm.ISO0}})
			return err
		}},
		{"TranslatePIN/AES-DUKPT", func() error {
			_, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: aesBlock, PAN: pan,
				From: hsm.PINKey{Key: k.bdkAES, Format: hsm.ISO4, KSN: aesKSN}, To: hsm.PINKey{Key: k.zpkAES, Format: hsm.ISO4}})
			return err
		}},
		{"RetailMAC", func() error {
			_, err := e.b.GenerateMAC(e.ctx, hsm.MACRequest{Key: k.macTDES, Algorithm: hsm.RetailMAC, Data: msg})
			return err
		}},
		{"CMAC", func() error {
			_, err := e.b.GenerateMAC(e.ctx, hsm.MACRequest{Key: k.macAES, Algorithm: hsm.CMAC, Data: msg})
			return err
		}},
	}
	for _, op := range ops {
		if (cfg.pinMAC && strings.HasSuffix(op.name, "PAN")) || (cfg.noAESDK && op.name == "TranslatePIN/AES-DUKPT") {
			continue
		}
		if err := op.fn(); err != nil {
			b.Fatalf("%s: %v", op.name, err)
		}
		b.Run(op.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := op.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op.fn(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
