package hsmtest

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// pinCase is one translation: the input block, the keys and what the
// issuer must recover under the clear output key.
type pinCase struct {
	name  string
	block []byte
	pan   string
	pin   string
	from  hsm.PINKey
	to    hsm.PINKey
	toKey []byte // clear output key, to check the result
}

func (e *env) runPINCases(t *testing.T, cases []pinCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := hsm.TranslatePINRequest{PINBlock: tc.block, PAN: tc.pan, From: tc.from, To: tc.to}
			out, err := e.b.TranslatePIN(e.ctx, req)
			if err != nil {
				t.Fatalf("TranslatePIN: %v", err)
			}
			wantLen := 8
			if tc.to.Format == hsm.ISO4 {
				wantLen = 16
			}
			if len(out) != wantLen {
				t.Fatalf("TranslatePIN returned %d bytes, want %d", len(out), wantLen)
			}
			got, err := pinUnder(tc.to.Format, tc.toKey, out, tc.pan)
			if err != nil {
				t.Fatalf("output block does not decrypt under the clear ZPK: %v", err)
			}
			if got != tc.pin {
				t.Errorf("output block holds a %d-digit PIN that is not the input PIN", len(got))
			}
			if tc.to.Format == hsm.ISO4 {
				// Format 4 has random fill: translating twice differs.
				again, err := e.b.TranslatePIN(e.ctx, req)
				if err != nil {
					t.Fatalf("TranslatePIN again: %v", err)
				}
				if bytes.Equal(again, out) {
					t.Errorf("two ISO 4 outputs are equal; the fill is not random")
				}
			}
		})
	}
}

// keySet is every key of the test vectors (and a random PAN data and PAN
// hash key), imported under the subtest's labels.
type keySet struct {
	data, hash                  hsm.KeyRef // PAN data and PAN hash keys
	tpk, tpkAES                 hsm.KeyRef // terminal PIN keys (static)
	zpk, zpk3, zpkAES, zpkAES32 hsm.KeyRef // zone PIN keys
	bdk, bdkAES                 hsm.KeyRef // DUKPT base derivation keys
	macTDES, macAES             hsm.KeyRef // retail MAC and CMAC keys
}

// importKeys imports every key of the set.
func (e *env) importKeys() keySet {
	e.tb.Helper()
	return keySet{
		data:     e.imp("pan-data", hsm.UsagePANData, hsm.AES, random(e.tb, 32)),
		hash:     e.imp("pan-hash", hsm.UsagePANHash, hsm.HMAC, random(e.tb, 32)),
		tpk:      e.imp("tpk", hsm.UsageTerminalPIN, hsm.TDES, unhex(tdesTPK)),
		tpkAES:   e.imp("tpk-aes", hsm.UsageTerminalPIN, hsm.AES, unhex(aesTPK)),
		zpk:      e.imp("zpk", hsm.UsageZonePIN, hsm.TDES, unhex(tdesZPK)),
		zpk3:     e.imp("zpk-tdes3", hsm.UsageZonePIN, hsm.TDES, unhex(tdesZPK3)),
		zpkAES:   e.imp("zpk-aes", hsm.UsageZonePIN, hsm.AES, unhex(aesZPK)),
		zpkAES32: e.imp("zpk-aes256", hsm.UsageZonePIN, hsm.AES, unhex(aesZPK32)),
		bdk:      e.imp("bdk", hsm.UsageBDK, hsm.TDES, unhex(x924BDK)),
		bdkAES:   e.imp("bdk-aes", hsm.UsageBDK, hsm.AES, unhex(x9243BDK)),
		macTDES:  e.imp("mac-tdes", hsm.UsageMAC, hsm.TDES, unhex(x919Key)),
		macAES:   e.imp("mac-aes", hsm.UsageMAC, hsm.AES, unhex(rfc4493Key)),
	}
}

func mustBlock(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("building the input PIN block: %v", err)
		}
		return b
	}
}

func testTranslateStatic(t *testing.T, e *env) {
	must := mustBlock(t)
	k := e.importKeys()
	iso0 := func(k hsm.KeyRef) hsm.PINKey { return hsm.PINKey{Key: k, Format: hsm.ISO0} }
	iso4 := func(k hsm.KeyRef) hsm.PINKey { return hsm.PINKey{Key: k, Format: hsm.ISO4} }

	var cases []pinCase
	for _, p := range []struct{ pin, pan string }{
		{"1234", "4012345678909"},
		{"0000", cards.PAN},
		{"987654321098", "5413330089010434571"},
	} {
		b0 := must(paycrypto.EncryptISO0(unhex(tdesTPK), p.pin, p.pan))
		b4 := must(paycrypto.EncryptISO4(unhex(aesTPK), p.pin, p.pan, nil))
		z0 := must(paycrypto.EncryptISO0(unhex(tdesZPK), p.pin, p.pan))
		cases = append(cases,
			pinCase{"ISO0 TPK to ISO0 ZPK/" + p.pan[:6], b0, p.pan, p.pin, iso0(k.tpk), iso0(k.zpk), unhex(tdesZPK)},
			pinCase{"ISO0 TPK to ISO0 triple-length ZPK/" + p.pan[:6], b0, p.pan, p.pin, iso0(k.tpk), iso0(k.zpk3), unhex(tdesZPK3)},
			pinCase{"ISO0 ZPK to ISO0 ZPK/" + p.pan[:6], z0, p.pan, p.pin, iso0(k.zpk), iso0(k.zpk3), unhex(tdesZPK3)},
			pinCase{"ISO0 TDES to ISO4 AES/" + p.pan[:6], b0, p.pan, p.pin, iso0(k.tpk), iso4(k.zpkAES), unhex(aesZPK)},
			pinCase{"ISO4 AES TPK to ISO4 AES-256 ZPK/" + p.pan[:6], b4, p.pan, p.pin, iso4(k.tpkAES), iso4(k.zpkAES32), unhex(aesZPK32)},
		)
	}
	e.runPINCases(t, cases)
}

func testTranslateTDESDUKPT(t *testing.T, e *env) {
	must := mustBlock(t)
	k := e.importKeys()
	var cases []pinCase
	// The published X9.24-1 Annex A blocks, as a terminal sends them.
	for _, v := range x924Blocks {
		cases = append(cases, pinCase{
			name: "X9.24-1 " + v.ksn, block: unhex(v.block), pan: x924PAN, pin: x924PIN,
			from:  hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: unhex(v.ksn)},
			to:    hsm.PINKey{Key: k.zpk, Format: hsm.ISO0},
			toKey: unhex(tdesZPK),
		})
	}
	// Further counters, with the PIN key from paycrypto.
	for _, ksnHex := range []string{"FFFF9876543210E00010", "FFFF9876543210E0FFC0", "FFFF9876543210FFF800"} {
		ksn := unhex(ksnHex)
		pinKey := must(paycrypto.TDESPINKey(unhex(x924BDK), ksn))
		pin, pan := "4321", cards.PAN
		block := must(paycrypto.EncryptISO0(pinKey, pin, pan))
		cases = append(cases,
			pinCase{"KSN " + ksnHex, block, pan, pin,
				hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: ksn}, hsm.PINKey{Key: k.zpk, Format: hsm.ISO0}, unhex(tdesZPK)},
			pinCase{"KSN " + ksnHex + " to ISO4", block, pan, pin,
				hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: ksn}, hsm.PINKey{Key: k.zpkAES, Format: hsm.ISO4}, unhex(aesZPK)},
		)
	}
	e.runPINCases(t, cases)
}

// aesDUKPTBlock builds the ISO 4 block a terminal sends under the AES-128
// PIN encryption working key of the X9.24-3 BDK for ksn.
func aesDUKPTBlock(t testing.TB, ksn []byte, pin, pan string) []byte {
	t.Helper()
	key, err := paycrypto.AESWorkingKey(unhex(x9243BDK), ksn, paycrypto.AES128, paycrypto.PINEncryption, paycrypto.AES128)
	if err != nil {
		t.Fatalf("paycrypto.AESWorkingKey: %v", err)
	}
	block, err := paycrypto.EncryptISO4(key, pin, pan, nil)
	if err != nil {
		t.Fatalf("paycrypto.EncryptISO4: %v", err)
	}
	return block
}

func testTranslateAESDUKPT(t *testing.T, e *env) {
	k := e.importKeys()
	var cases []pinCase
	for i, ksnHex := range x9243KSNs {
		if ksnHex[:16] != x9243KeyID {
			t.Fatalf("KSN %s does not start with the initial key ID", ksnHex)
		}
		ksn := unhex(ksnHex)
		pin, pan := "1234", testPANs[i%len(testPANs)]
		block := aesDUKPTBlock(t, ksn, pin, pan)
		from := hsm.PINKey{Key: k.bdkAES, Format: hsm.ISO4, KSN: ksn}
		cases = append(cases,
			pinCase{"KSN " + ksnHex, block, pan, pin, from, hsm.PINKey{Key: k.zpkAES, Format: hsm.ISO4}, unhex(aesZPK)},
			pinCase{"KSN " + ksnHex + " to AES-256", block, pan, pin, from, hsm.PINKey{Key: k.zpkAES32, Format: hsm.ISO4}, unhex(aesZPK32)},
		)
		if i == 0 {
			// Format 4 to format 0 (for an issuer still on TDES).
			cases = append(cases, pinCase{"KSN " + ksnHex + " to ISO0", block, pan, pin, from,
				hsm.PINKey{Key: k.zpk, Format: hsm.ISO0}, unhex(tdesZPK)})
		}
	}
	e.runPINCases(t, cases)
}

func testTranslateInvalid(t *testing.T, e *env) {
	must := mustBlock(t)
	k := e.importKeys()

	pin, pan := "1234", cards.PAN
	// wrongPAN differs from pan in every digit the blocks bind, so format
	// 0's fill (and format 4's whole field) cannot decode.
	wrongPAN := cards.WrongPAN
	iso0 := must(paycrypto.EncryptISO0(unhex(tdesTPK), pin, pan))
	iso4 := must(paycrypto.EncryptISO4(unhex(aesTPK), pin, pan, nil))
	otherKey := must(paycrypto.EncryptISO0(unhex(tdesZPK), pin, pan))
	dukptKSN := unhex(x924Blocks[0].ksn)
	dukpt := unhex(x924Blocks[0].block)
	aesKSN := unhex(x9243KSNs[0])
	aesBlock := aesDUKPTBlock(t, aesKSN, pin, pan)
	// A format 0 block whose plaintext has control nibble 1 (format 1).
	fmt1 := must(paycrypto.PINBlockISO0(pin, pan))
	fmt1[0] = 0x14
	fmt1Enc := tdesEncrypt(t, unhex(tdesTPK), fmt1)

	from0 := hsm.PINKey{Key: k.tpk, Format: hsm.ISO0}
	from4 := hsm.PINKey{Key: k.tpkAES, Format: hsm.ISO4}
	to0 := hsm.PINKey{Key: k.zpk, Format: hsm.ISO0}
	to4 := hsm.PINKey{Key: k.zpkAES, Format: hsm.ISO4}
	fromDUKPT := func(ksn []byte) hsm.PINKey { return hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: ksn} }
	nextKSN := unhex(x924Blocks[1].ksn)

	cases := []struct {
		name  string
		block []byte
		pan   string
		from  hsm.PINKey
		to    hsm.PINKey
	}{
		{"ISO0 wrong PAN", iso0, wrongPAN, from0, to0},
		{"ISO0 wrong PAN to ISO4", iso0, wrongPAN, from0, to4},
		{"ISO4 wrong PAN", iso4, wrongPAN, from4, to4},
		{"ISO0 under another key", otherKey, pan, from0, to0},
		{"ISO0 garbage", unhex("0011223344556677"), pan, from0, to0},
		{"ISO0 all zeros", make([]byte, 8), pan, from0, to0},
		{"ISO0 control nibble 1", fmt1Enc, pan, from0, to0},
		{"ISO0 short", iso0[:7], pan, from0, to0},
		{"ISO0 long", append(append([]byte{}, iso0...), 0), pan, from0, to0},
		{"ISO0 empty", nil, pan, from0, to0},
		{"ISO4 garbage", unhex("00112233445566778899AABBCCDDEEFF"), pan, from4, to4},
		{"ISO4 given 8 bytes", iso0, pan, from4, to4},
		{"ISO4 short", iso4[:15], pan, from4, to4},
		{"DUKPT wrong PAN", dukpt, wrongPAN, fromDUKPT(dukptKSN), to0},
		{"DUKPT wrong KSN", dukpt, x924PAN, fromDUKPT(nextKSN), to0},
		{"AES DUKPT wrong PAN", aesBlock, wrongPAN, hsm.PINKey{Key: k.bdkAES, Format: hsm.ISO4, KSN: aesKSN}, to4},
		{"AES DUKPT wrong KSN", aesBlock, pan, hsm.PINKey{Key: k.bdkAES, Format: hsm.ISO4, KSN: unhex(x9243KSNs[1])}, to4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: tc.block, PAN: tc.pan, From: tc.from, To: tc.to})
			if e.cfg.noAESDK && tc.from.Key == k.bdkAES {
				// WithoutAESDUKPT: refused as unsupported, never translated.
				wantErr(t, "TranslatePIN", err, hsm.ErrUnsupported)
			} else {
				wantErr(t, "TranslatePIN", err, hsm.ErrInvalidPINBlock)
			}
			if out != nil {
				t.Errorf("TranslatePIN returned a block (%s) with the error", hex.EncodeToString(out))
			}
		})
	}

	// A KSN of the wrong length is refused (with whatever error).
	for _, n := range []int{0, 8, 11, 12} {
		t.Run(fmt.Sprintf("TDES KSN of %d bytes", n), func(t *testing.T) {
			_, err := e.b.TranslatePIN(e.ctx, hsm.TranslatePINRequest{PINBlock: dukpt, PAN: x924PAN,
				From: hsm.PINKey{Key: k.bdk, Format: hsm.ISO0, KSN: make([]byte, n)}, To: to0})
			if err == nil {
				t.Errorf("TranslatePIN accepted a %d-byte KSN for a TDES BDK", n)
			}
		})
	}
}

// tdesEncrypt enciphers one 8-byte block under a 16-byte TDES key (K1|K2|K1).
func tdesEncrypt(t testing.TB, key, block []byte) []byte {
	t.Helper()
	c, err := des.NewTripleDESCipher(append(append([]byte{}, key...), key[:8]...))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8)
	c.Encrypt(out, block)
	return out
}
