package hsmtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// op is one HSM call that should fail, for the error tables.
type op struct {
	name string
	call func(ctx context.Context, b Backend) error
}

func encryptPAN(key hsm.KeyRef) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		_, err := b.EncryptPAN(ctx, key, cards.PAN)
		return err
	}
}

func decryptPAN(key hsm.KeyRef) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		// 12-byte nonce, a PAN-sized body and a 16-byte tag.
		_, err := b.DecryptPAN(ctx, hsm.EncryptedPAN{Key: key, Ciphertext: make([]byte, 44)})
		return err
	}
}

func hashPAN(key hsm.KeyRef) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		_, err := b.HashPAN(ctx, key, cards.PAN)
		return err
	}
}

func generateMAC(key hsm.KeyRef, alg hsm.MACAlgorithm) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		_, err := b.GenerateMAC(ctx, hsm.MACRequest{Key: key, Algorithm: alg, Data: []byte("0200")})
		return err
	}
}

func verifyMAC(key hsm.KeyRef, alg hsm.MACAlgorithm) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		return b.VerifyMAC(ctx, hsm.VerifyMACRequest{
			MACRequest: hsm.MACRequest{Key: key, Algorithm: alg, Data: []byte("0200")},
			MAC:        make([]byte, 8),
		})
	}
}

// translate translates a well-formed ISO 0 block under the suite's TDES
// TPK (or a 16-byte block for ISO 4) from one key to another.
func translate(from, to hsm.PINKey) func(context.Context, Backend) error {
	return func(ctx context.Context, b Backend) error {
		block, err := paycrypto.EncryptISO0(unhex(tdesTPK), "1234", cards.PAN)
		if from.Format == hsm.ISO4 {
			block, err = paycrypto.EncryptISO4(unhex(aesTPK), "1234", cards.PAN, nil)
		}
		if err != nil {
			return err
		}
		_, err = b.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: block, PAN: cards.PAN, From: from, To: to})
		return err
	}
}

func testWrongUsage(t *testing.T, e *env) {
	k := e.importKeys()
	iso0 := func(k hsm.KeyRef) hsm.PINKey { return hsm.PINKey{Key: k, Format: hsm.ISO0} }
	iso4 := func(k hsm.KeyRef) hsm.PINKey { return hsm.PINKey{Key: k, Format: hsm.ISO4} }
	ksn := unhex(x924Blocks[0].ksn)

	cases := []op{
		{"EncryptPAN with a TPK", encryptPAN(k.tpk)},
		{"EncryptPAN with the hash key", encryptPAN(k.hash)},
		{"EncryptPAN with a MAC key", encryptPAN(k.macAES)},
		{"DecryptPAN with a ZPK", decryptPAN(hsm.KeyRef{Label: k.zpk.Label, Version: 1})},
		{"DecryptPAN with the hash key", decryptPAN(hsm.KeyRef{Label: k.hash.Label, Version: 1})},
		{"HashPAN with the data key", hashPAN(k.data)},
		{"HashPAN with a MAC key", hashPAN(k.macTDES)},
		{"GenerateMAC with the data key", generateMAC(k.data, hsm.CMAC)},
		{"GenerateMAC with a TPK", generateMAC(k.tpk, hsm.RetailMAC)},
		{"GenerateMAC with the hash key", generateMAC(k.hash, hsm.CMAC)},
		{"VerifyMAC with a ZPK", verifyMAC(k.zpk, hsm.RetailMAC)},
		{"RetailMAC with an AES MAC key", generateMAC(k.macAES, hsm.RetailMAC)},
		{"CMAC with a TDES MAC key", generateMAC(k.macTDES, hsm.CMAC)},
		{"TranslatePIN from the data key", translate(iso0(k.data), iso0(k.zpk))},
		{"TranslatePIN from a MAC key", translate(iso0(k.macTDES), iso0(k.zpk))},
		{"TranslatePIN to a MAC key", translate(iso0(k.tpk), iso0(k.macTDES))},
		{"TranslatePIN to the data key", translate(iso0(k.tpk), iso4(k.data))},
		{"TranslatePIN from a BDK without KSN", translate(iso0(k.bdk), iso0(k.zpk))},
		{"TranslatePIN from a TPK with a KSN", translate(hsm.PINKey{Key: k.tpk, Format: hsm.ISO0, KSN: ksn}, iso0(k.zpk))},
		{"TranslatePIN ISO0 under an AES key", translate(iso0(k.tpk), iso0(k.zpkAES))},
		{"TranslatePIN ISO4 under a TDES key", translate(iso4(k.tpkAES), iso4(k.zpk))},
		{"TranslatePIN ISO0 from an AES TPK", translate(iso0(k.tpkAES), iso0(k.zpk))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(e.ctx, e.b)
			wantErr(t, tc.name, err, hsm.ErrWrongUsage)
			if err != nil && strings.Contains(err.Error(), cards.PAN) {
				t.Errorf("error mentions the PAN: %v", err)
			}
		})
	}
}

func testKeyNotFound(t *testing.T, e *env) {
	data := e.imp("pan-data", hsm.UsagePANData, hsm.AES, random(t, 32))
	hash := e.imp("pan-hash", hsm.UsagePANHash, hsm.HMAC, random(t, 32))
	zpk := e.imp("zpk", hsm.UsageZonePIN, hsm.TDES, unhex(tdesZPK))
	tpk := e.imp("tpk", hsm.UsageTerminalPIN, hsm.TDES, unhex(tdesTPK))
	missing := hsm.KeyRef{Label: e.label("missing")}
	iso0 := func(k hsm.KeyRef) hsm.PINKey { return hsm.PINKey{Key: k, Format: hsm.ISO0} }

	cases := []op{
		{"EncryptPAN", encryptPAN(missing)},
		{"DecryptPAN", decryptPAN(hsm.KeyRef{Label: missing.Label, Version: 1})},
		{"DecryptPAN unknown version", decryptPAN(hsm.KeyRef{Label: data.Label, Version: 9})},
		{"HashPAN", hashPAN(missing)},
		{"HashPAN unknown version", hashPAN(hsm.KeyRef{Label: hash.Label, Version: 9})},
		{"GenerateMAC", generateMAC(missing, hsm.CMAC)},
		{"VerifyMAC", verifyMAC(missing, hsm.RetailMAC)},
		{"TranslatePIN from", translate(iso0(missing), iso0(zpk))},
		{"TranslatePIN to", translate(iso0(tpk), iso0(missing))},
		{"TranslatePIN from unknown version", translate(iso0(hsm.KeyRef{Label: tpk.Label, Version: 9}), iso0(zpk))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(e.ctx, e.b), hsm.ErrKeyNotFound)
		})
	}
}

func testKeyInfo(t *testing.T, e *env) {
	cases := []struct {
		name     string
		usage    hsm.Usage
		alg      hsm.Algorithm
		material []byte
		kcv      string // a published KCV, or "" for paycrypto.KCV only
	}{
		{"bdk-x924", hsm.UsageBDK, hsm.TDES, unhex(x924BDK), x924KCV},
		{"bdk-aes", hsm.UsageBDK, hsm.AES, unhex(x9243BDK), ""},
		{"tpk-tdes", hsm.UsageTerminalPIN, hsm.TDES, unhex(tdesTPK), ""},
		{"tpk-aes", hsm.UsageTerminalPIN, hsm.AES, unhex(aesTPK), ""},
		{"zpk-tdes3", hsm.UsageZonePIN, hsm.TDES, unhex(tdesZPK3), ""},
		{"zpk-aes256", hsm.UsageZonePIN, hsm.AES, unhex(aesZPK32), ""},
		{"mac-tdes", hsm.UsageMAC, hsm.TDES, unhex(x919Key), ""},
		{"mac-aes", hsm.UsageMAC, hsm.AES, unhex(rfc4493Key), ""},
		{"pan-data", hsm.UsagePANData, hsm.AES, random(t, 32), ""},
	}
	imported := map[string]hsm.KeyInfo{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := e.mustImport(tc.name, tc.usage, tc.alg, tc.material)
			if info.Version != 1 {
				t.Errorf("Version = %d, want 1", info.Version)
			}
			want, err := paycrypto.KCV(string(tc.alg), tc.material)
			if err != nil {
				t.Fatalf("paycrypto.KCV: %v", err)
			}
			if !bytes.Equal(info.KCV, want) {
				t.Errorf("KCV = %X, want %X", info.KCV, want)
			}
			if tc.kcv != "" && !strings.EqualFold(hex.EncodeToString(info.KCV), tc.kcv) {
				t.Errorf("KCV = %X, want the published %s", info.KCV, tc.kcv)
			}
			imported[info.Label] = info
		})
	}
	hashInfo := e.mustImport("pan-hash", hsm.UsagePANHash, hsm.HMAC, random(t, 32))
	imported[hashInfo.Label] = hashInfo

	gen := []hsm.GenerateKeyRequest{
		{Label: e.label("gen-data"), Usage: hsm.UsagePANData, Algorithm: hsm.AES, Size: 32},
		{Label: e.label("gen-hash"), Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC, Size: 32},
		{Label: e.label("gen-zpk"), Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Size: 16},
		{Label: e.label("gen-mac"), Usage: hsm.UsageMAC, Algorithm: hsm.AES, Size: 16},
	}
	for _, req := range gen {
		info, err := e.b.GenerateKey(e.ctx, req)
		if err != nil {
			t.Fatalf("GenerateKey %s: %v", req.Label, err)
		}
		if info.Label != req.Label || info.Version != 1 || info.Usage != req.Usage || info.Algorithm != req.Algorithm {
			t.Errorf("GenerateKey %s = %+v", req.Label, info)
		}
		if req.Algorithm != hsm.HMAC && len(info.KCV) != 3 {
			t.Errorf("GenerateKey %s KCV is %d bytes, want 3", req.Label, len(info.KCV))
		}
		imported[info.Label] = info
	}

	keys, err := e.b.Keys(e.ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	listed := map[string]hsm.KeyInfo{}
	for _, k := range keys {
		listed[k.Label] = k
	}
	for label, want := range imported {
		got, ok := listed[label]
		if !ok {
			t.Errorf("Keys does not list %s", label)
			continue
		}
		if got.Version != want.Version || got.Usage != want.Usage || got.Algorithm != want.Algorithm || !bytes.Equal(got.KCV, want.KCV) {
			t.Errorf("Keys lists %+v, want %+v", got, want)
		}
	}

	bad := []struct {
		name string
		req  hsm.ImportKeyRequest
	}{
		{"empty label", hsm.ImportKeyRequest{Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: unhex(tdesZPK)}},
		{"short TDES key", hsm.ImportKeyRequest{Label: e.label("bad-1"), Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: make([]byte, 8)}},
		{"odd AES key", hsm.ImportKeyRequest{Label: e.label("bad-2"), Usage: hsm.UsageMAC, Algorithm: hsm.AES, Material: make([]byte, 20)}},
		{"TDES data key", hsm.ImportKeyRequest{Label: e.label("bad-3"), Usage: hsm.UsagePANData, Algorithm: hsm.TDES, Material: unhex(tdesZPK)}},
		{"HMAC PIN key", hsm.ImportKeyRequest{Label: e.label("bad-4"), Usage: hsm.UsageZonePIN, Algorithm: hsm.HMAC, Material: random(t, 32)}},
		{"unknown usage", hsm.ImportKeyRequest{Label: e.label("bad-5"), Usage: "kek", Algorithm: hsm.AES, Material: random(t, 16)}},
		{"unknown algorithm", hsm.ImportKeyRequest{Label: e.label("bad-6"), Usage: hsm.UsageMAC, Algorithm: "rc4", Material: random(t, 16)}},
		{"usage change on rotation", hsm.ImportKeyRequest{Label: hashInfo.Label, Usage: hsm.UsagePANData, Algorithm: hsm.AES, Material: random(t, 32)}},
	}
	for _, tc := range bad {
		t.Run("reject "+tc.name, func(t *testing.T) {
			if info, err := e.importKey(tc.req); err == nil {
				t.Errorf("ImportKey accepted it: %+v", info)
			}
		})
	}
}
