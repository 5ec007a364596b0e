//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestOpenMissingLibrary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libsofthsm2.so")
	_, err := Open(Options{Library: path, TokenLabel: "kbpay", PIN: "1234"}, nil)
	if err == nil {
		t.Fatal("Open with a missing library succeeded")
	}
	for _, want := range []string{path, "apt-get install softhsm2", "does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	if _, err := Open(Options{PIN: "1234"}, nil); err == nil || !strings.Contains(err.Error(), "TokenLabel") {
		t.Errorf("Open without a token label: %v", err)
	}
	if _, err := Open(Options{TokenLabel: "x", Sessions: -1}, nil); err == nil || !strings.Contains(err.Error(), "Sessions") {
		t.Errorf("Open with -1 sessions: %v", err)
	}
}

func TestOpenWrongTokenLabel(t *testing.T) {
	opts := newToken(t, "kbpay-present")
	opts.TokenLabel = "kbpay-absent"
	_, err := Open(opts, nil)
	if !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("Open with a wrong label: %v, want ErrTokenNotFound", err)
	}
	for _, want := range []string{`"kbpay-absent"`, `tokens present: "kbpay-present"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	libraries.Lock()
	defer libraries.Unlock()
	if len(libraries.m) != 0 {
		t.Errorf("a failed Open left the module loaded")
	}
}

func TestOpenWrongPIN(t *testing.T) {
	opts := newToken(t, "kbpay-pin")
	bad := opts
	bad.PIN = "not-the-pin"
	_, err := Open(bad, nil)
	if err == nil {
		t.Fatal("Open with a wrong PIN succeeded")
	}
	for _, want := range []string{`logging in to token "kbpay-pin"`, "wrong PIN", "CKR_PIN_INCORRECT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), bad.PIN) {
		t.Errorf("error mentions the PIN: %v", err)
	}
	// With the process already logged in, a wrong PIN must still fail.
	mustOpen(t, opts)
	if _, err := Open(bad, nil); err == nil || !strings.Contains(err.Error(), "wrong PIN") {
		t.Errorf("second Open with a wrong PIN: %v", err)
	}
}

// TestTwoHSMsShareTheModule: C_Initialize and the login are process-wide;
// closing one HSM must not break another on the same token.
func TestTwoHSMsShareTheModule(t *testing.T) {
	opts := newToken(t, "kbpay-shared")
	ctx := context.Background()
	a, b := mustOpen(t, opts), mustOpen(t, opts)
	if _, err := a.ImportKey(ctx, hsm.ImportKeyRequest{Label: "hash", Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC, Material: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close a: %v", err)
	}
	// b learns of the key written through a by re-reading on the miss.
	if _, err := b.HashPAN(ctx, hsm.KeyRef{Label: "hash"}, "4111111111111111"); err != nil {
		t.Fatalf("HashPAN through b after a closed: %v", err)
	}
}

// TestPersistence: keys, versions, KCVs and hidden companion objects
// survive Close and Open.
func TestPersistence(t *testing.T) {
	opts := newToken(t, "kbpay-persist")
	ctx := context.Background()
	const pan = "4012345678909"
	macKey := unhex(t, "0123456789ABCDEFFEDCBA9876543210")
	bdk := unhex(t, "0123456789ABCDEFFEDCBA9876543210")
	zpk := unhex(t, "89ABCDEF0123456776543210FEDCBA98")
	msg := []byte("0200 F23C46D129E09220 authorisation request of some length")

	h := mustOpen(t, opts)
	imp := func(label string, u hsm.Usage, alg hsm.Algorithm, m []byte) {
		t.Helper()
		if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: label, Usage: u, Algorithm: alg, Material: m}); err != nil {
			t.Fatalf("ImportKey %s: %v", label, err)
		}
	}
	imp("data", hsm.UsagePANData, hsm.AES, bytes.Repeat([]byte{1}, 32))
	old, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES}); err != nil {
		t.Fatal(err)
	}
	cur, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan)
	if err != nil || cur.Key.Version != 2 {
		t.Fatalf("EncryptPAN after rotation: %+v, %v", cur.Key, err)
	}
	imp("mac", hsm.UsageMAC, hsm.TDES, macKey)
	if _, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "mac-gen", Usage: hsm.UsageMAC, Algorithm: hsm.TDES}); err != nil {
		t.Fatal(err)
	}
	genMAC, err := h.GenerateMAC(ctx, hsm.MACRequest{Key: hsm.KeyRef{Label: "mac-gen"}, Algorithm: hsm.RetailMAC, Data: msg})
	if err != nil {
		t.Fatal(err)
	}
	imp("bdk", hsm.UsageBDK, hsm.TDES, bdk)
	imp("zpk", hsm.UsageZonePIN, hsm.TDES, zpk)
	before, err := h.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	h = mustOpen(t, opts)
	after, err := h.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(before, after, func(a, b hsm.KeyInfo) bool {
		return a.Label == b.Label && a.Version == b.Version && a.Usage == b.Usage && a.Algorithm == b.Algorithm && bytes.Equal(a.KCV, b.KCV)
	}) {
		t.Errorf("Keys after re-open:\n%+v\nbefore:\n%+v", after, before)
	}
	for _, enc := range []hsm.EncryptedPAN{old, cur} {
		if got, err := h.DecryptPAN(ctx, enc); err != nil || got != pan {
			t.Errorf("DecryptPAN version %d after re-open: %v", enc.Key.Version, err)
		}
	}
	if enc, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan); err != nil || enc.Key.Version != 2 {
		t.Errorf("EncryptPAN after re-open: %+v, %v; want version 2", enc.Key, err)
	}
	want, _ := paycrypto.RetailMAC(macKey, msg)
	if got, err := h.GenerateMAC(ctx, hsm.MACRequest{Key: hsm.KeyRef{Label: "mac"}, Algorithm: hsm.RetailMAC, Data: msg}); err != nil || !bytes.Equal(got, want) {
		t.Errorf("retail MAC after re-open = %X, %v; want %X", got, err, want)
	}
	if got, err := h.GenerateMAC(ctx, hsm.MACRequest{Key: hsm.KeyRef{Label: "mac-gen"}, Algorithm: hsm.RetailMAC, Data: msg}); err != nil || !bytes.Equal(got, genMAC) {
		t.Errorf("generated key's retail MAC after re-open = %X, %v; want %X", got, err, genMAC)
	}
	// The X9.24-1 block needs the BDK's hidden variant object.
	out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: unhex(t, "1B9C1845EB993A7A"), PAN: pan,
		From: hsm.PINKey{Key: hsm.KeyRef{Label: "bdk"}, Format: hsm.ISO0, KSN: unhex(t, "FFFF9876543210E00001")},
		To:   hsm.PINKey{Key: hsm.KeyRef{Label: "zpk"}, Format: hsm.ISO0}})
	if err != nil {
		t.Fatalf("TranslatePIN DUKPT after re-open: %v", err)
	}
	if pin, err := paycrypto.DecryptISO0(zpk, out, pan); err != nil || pin != "1234" {
		t.Errorf("translated block does not hold the PIN: %v", err)
	}
	if info, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES}); err != nil || info.Version != 3 {
		t.Errorf("rotation after re-open: %+v, %v; want version 3", info, err)
	}
}

func TestGenerateTDESBDKUnsupported(t *testing.T) {
	h := mustOpen(t, newToken(t, "kbpay-gen"))
	_, err := h.GenerateKey(context.Background(), hsm.GenerateKeyRequest{Label: "bdk", Usage: hsm.UsageBDK, Algorithm: hsm.TDES})
	if !errors.Is(err, hsm.ErrUnsupported) {
		t.Errorf("GenerateKey TDES BDK: %v, want ErrUnsupported", err)
	}
	if keys, _ := h.Keys(context.Background()); len(keys) != 0 {
		t.Errorf("a refused GenerateKey left keys: %+v", keys)
	}
}

// TestDerivedTDESMACKey derives a MAC key from a seed whose value the test
// knows, and checks the retail MAC against paycrypto with the key that
// derivation must give: E_S(d1)|E_S(d2).
func TestDerivedTDESMACKey(t *testing.T) {
	h := mustOpen(t, newToken(t, "kbpay-derive"))
	seedValue := unhex(t, "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
	d := unhex(t, "112233445566778899AABBCCDDEEFF00")
	s, err := h.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer h.put(s, nil)
	seed, err := h.ctx.CreateObject(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_DES3),
		p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_DERIVE, true), p11.NewAttribute(p11.CKA_VALUE, seedValue)})
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := specs(hsm.UsageMAC, hsm.TDES, 16)
	objs, err := h.deriveTDESMACFrom(s, seed, d, template(sp[0], "derived", 1, hsm.UsageMAC, hsm.TDES, 16), template(sp[1], "derived", 1, hsm.UsageMAC, hsm.TDES, 16))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := des.NewTripleDESCipher(seedValue)
	want := make([]byte, 16)
	c.Encrypt(want[:8], d[:8])
	c.Encrypt(want[8:], d[8:])
	k := &key{info: hsm.KeyInfo{Label: "derived", Version: 1, Usage: hsm.UsageMAC, Algorithm: hsm.TDES}, size: 16, obj: objs[0], k1: objs[1]}
	for _, n := range []int{0, 8, 9, 64, 300} {
		data := bytes.Repeat([]byte{0x5A}, n)
		got, err := h.retailMAC(s, k, data)
		exp, _ := paycrypto.RetailMAC(want, data)
		if err != nil || !bytes.Equal(got, exp) {
			t.Errorf("retail MAC of %d bytes = %X, %v; want %X", n, got, err, exp)
		}
	}
	kcv, _ := paycrypto.KCV("tdes", want)
	if got, err := h.kcv(s, k); err != nil || !bytes.Equal(got, kcv) {
		t.Errorf("KCV = %X, %v; want %X", got, err, kcv)
	}
}

// TestAESDUKPTLongerBDKs covers AES-192 and AES-256 BDKs (two-block
// derivation data, and SoftHSM2 truncating 32 bytes of output to 24).
func TestAESDUKPTLongerBDKs(t *testing.T) {
	h := mustOpen(t, newToken(t, "kbpay-aes-dukpt"))
	ctx := context.Background()
	zpk := unhex(t, "FFEEDDCCBBAA99887766554433221100")
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.AES, Material: zpk}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ paycrypto.AESKeyType
		bdk string
	}{
		{paycrypto.AES192, "FEDCBA9876543210F1F1F1F1F1F1F1F10123456789ABCDEF"},
		{paycrypto.AES256, "FEDCBA9876543210F1F1F1F1F1F1F1F10123456789ABCDEF0011223344556677"},
	} {
		bdk := unhex(t, tc.bdk)
		label := "bdk-" + strings.ToLower(tc.typ.String())
		if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: label, Usage: hsm.UsageBDK, Algorithm: hsm.AES, Material: bdk}); err != nil {
			t.Fatal(err)
		}
		for _, ksnHex := range []string{"123456789012345600000001", "1234567890123456000A5F03", "12345678901234560000FFFF"} {
			ksn := unhex(t, ksnHex)
			wk, err := paycrypto.AESWorkingKey(bdk, ksn, tc.typ, paycrypto.PINEncryption, paycrypto.AES128)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := paycrypto.EncryptISO4(wk, "271828", "4111111111111111", nil)
			out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: block, PAN: "4111111111111111",
				From: hsm.PINKey{Key: hsm.KeyRef{Label: label}, Format: hsm.ISO4, KSN: ksn},
				To:   hsm.PINKey{Key: hsm.KeyRef{Label: "zpk"}, Format: hsm.ISO4}})
			if err != nil {
				t.Errorf("%v KSN %s: %v", tc.typ, ksnHex, err)
				continue
			}
			if pin, err := paycrypto.DecryptISO4(zpk, out, "4111111111111111"); err != nil || pin != "271828" {
				t.Errorf("%v KSN %s: output does not hold the PIN (%v)", tc.typ, ksnHex, err)
			}
		}
	}
}

// TestTranslatePINUndecodableInputs: a PAN no block can be bound to, or a
// KSN no key derives from (DUKPT counters zero or with too many one bits),
// is hsm.ErrInvalidPINBlock, not a module error, on every path through
// paycrypto; and the session stays usable.
func TestTranslatePINUndecodableInputs(t *testing.T) {
	h := mustOpen(t, newToken(t, "kbpay-undecodable"))
	ctx := context.Background()
	keys := []hsm.ImportKeyRequest{
		{Label: "tpk", Usage: hsm.UsageTerminalPIN, Algorithm: hsm.TDES, Material: unhex(t, "0123456789ABCDEFFEDCBA9876543210")},
		{Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: unhex(t, "FEDCBA98765432100123456789ABCDEF")},
		{Label: "zpk-aes", Usage: hsm.UsageZonePIN, Algorithm: hsm.AES, Material: unhex(t, "FFEEDDCCBBAA99887766554433221100")},
		{Label: "bdk", Usage: hsm.UsageBDK, Algorithm: hsm.TDES, Material: unhex(t, "0123456789ABCDEFFEDCBA9876543210")},
		{Label: "bdk-aes", Usage: hsm.UsageBDK, Algorithm: hsm.AES, Material: unhex(t, "FEDCBA9876543210F1F1F1F1F1F1F1F1")},
	}
	for _, k := range keys {
		if _, err := h.ImportKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const pan = "4111111111111111"
	iso0, _ := paycrypto.EncryptISO0(keys[0].Material, "1234", pan)
	from := func(label string, f hsm.PINFormat, ksn string) hsm.PINKey {
		pk := hsm.PINKey{Key: hsm.KeyRef{Label: label}, Format: f}
		if ksn != "" {
			pk.KSN = unhex(t, ksn)
		}
		return pk
	}
	to0, to4 := from("zpk", hsm.ISO0, ""), from("zpk-aes", hsm.ISO4, "")
	for _, tc := range []struct {
		name  string
		block []byte
		pan   string
		from  hsm.PINKey
		to    hsm.PINKey
	}{
		{"static, 12-digit PAN", iso0, "411111111111", from("tpk", hsm.ISO0, ""), to0},
		{"static, non-digit PAN", iso0, "41111111111111a1", from("tpk", hsm.ISO0, ""), to0},
		{"static to ISO4, 20-digit PAN", iso0, "41111111111111111111", from("tpk", hsm.ISO0, ""), to4},
		{"TDES DUKPT, 12-digit PAN", iso0, "411111111111", from("bdk", hsm.ISO0, "FFFF9876543210E00001"), to0},
		{"TDES DUKPT, counter zero", iso0, pan, from("bdk", hsm.ISO0, "FFFF9876543210E00000"), to0},
		{"TDES DUKPT, 11 one bits", iso0, pan, from("bdk", hsm.ISO0, "FFFF9876543210E007FF"), to0},
		{"AES DUKPT, counter zero", make([]byte, 16), pan, from("bdk-aes", hsm.ISO4, "123456789012345600000000"), to4},
		{"AES DUKPT, 17 one bits", make([]byte, 16), pan, from("bdk-aes", hsm.ISO4, "12345678901234560001FFFF"), to4},
		{"AES DUKPT, 12-digit PAN", make([]byte, 16), "411111111111", from("bdk-aes", hsm.ISO4, "123456789012345600000001"), to4},
	} {
		out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: tc.block, PAN: tc.pan, From: tc.from, To: tc.to})
		var moduleErr p11.Error
		if !errors.Is(err, hsm.ErrInvalidPINBlock) || errors.As(err, &moduleErr) || out != nil {
			t.Errorf("%s: %X, %v; want hsm.ErrInvalidPINBlock", tc.name, out, err)
		}
	}
	out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: iso0, PAN: pan, From: from("tpk", hsm.ISO0, ""), To: to0})
	if pin, derr := paycrypto.DecryptISO0(keys[1].Material, out, pan); err != nil || derr != nil || pin != "1234" {
		t.Errorf("a good block after the bad ones: %v, %v", err, derr)
	}
}

// TestKeyObjects: every key object is a sensitive, non-extractable token
// object, and the token itself refuses mechanisms outside the usage.
func TestKeyObjects(t *testing.T) {
	h := mustOpen(t, newToken(t, "kbpay-objects"))
	ctx := context.Background()
	for _, req := range []hsm.ImportKeyRequest{
		{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES, Material: make([]byte, 32)},
		{Label: "mac", Usage: hsm.UsageMAC, Algorithm: hsm.TDES, Material: unhex(t, "0123456789ABCDEFFEDCBA9876543210")},
		{Label: "bdk", Usage: hsm.UsageBDK, Algorithm: hsm.TDES, Material: unhex(t, "0123456789ABCDEFFEDCBA9876543210")},
	} {
		if _, err := h.ImportKey(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	s, err := h.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer h.put(s, nil)
	objs, err := h.find(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY)})
	if err != nil {
		t.Fatal(err)
	}
	// data; mac and its K1|K1; bdk and its variant: 5 token objects and
	// their 5 session copies.
	if len(objs) != 10 {
		t.Errorf("%d key objects, want 10", len(objs))
	}
	tokenObjects := 0
	for _, o := range objs {
		attrs, err := h.ctx.GetAttributeValue(s, o, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_TOKEN, nil),
			p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil)})
		if err != nil {
			t.Fatal(err)
		}
		label := string(attrs[0].Value)
		tokenObjects += int(attrs[1].Value[0])
		if attrs[2].Value[0] != 1 || attrs[3].Value[0] != 0 {
			t.Errorf("%s: sensitive %v extractable %v", label, attrs[2].Value, attrs[3].Value)
		}
		if _, err := h.ctx.GetAttributeValue(s, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); !isCKR(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("%s: reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", label, err)
		}
	}
	if tokenObjects != 5 {
		t.Errorf("%d token objects, want 5", tokenObjects)
	}
	data := h.cached(hsm.KeyRef{Label: "data"})
	for _, o := range []p11.ObjectHandle{data.tokenObj, data.obj} {
		if _, err := h.crypt(s, false, p11.NewMechanism(p11.CKM_AES_ECB, nil), o, make([]byte, 16)); err == nil {
			t.Errorf("the token let the PAN data key (object %d) encrypt with CKM_AES_ECB", o)
		}
	}
}

func TestCloseAndContext(t *testing.T) {
	opts := newToken(t, "kbpay-close")
	opts.Sessions = 1
	h := mustOpen(t, opts)
	ctx := context.Background()
	ref := hsm.KeyRef{Label: "hash"}
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: ref.Label, Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC, Material: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	// With the only session taken, an operation waits until its context ends.
	s, err := h.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := h.HashPAN(short, ref, "4111111111111111"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("HashPAN with no free session: %v, want DeadlineExceeded", err)
	}
	h.put(s, nil)

	// Close while operations run: they finish or fail with ErrClosed.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				if _, err := h.HashPAN(ctx, ref, "4111111111111111"); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("HashPAN during Close: %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := h.Keys(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Keys after Close: %v", err)
	}
}

func TestParseObjectLabel(t *testing.T) {
	for _, tc := range []struct {
		in      string
		label   string
		version int
		part    string
		ok      bool
	}{
		{"pan-data/v1", "pan-data", 1, partKey, true},
		{"mac.tdes_2/v12#k1", "mac.tdes_2", 12, partK1, true},
		{"bdk/v3#variant", "bdk", 3, partVariant, true},
		{"bdk/v0", "", 0, "", false},
		{"bdk", "", 0, "", false},
		{"/v1", "", 0, "", false},
		{"bdk/vx", "", 0, "", false},
	} {
		label, version, part, ok := parseObjectLabel(tc.in)
		if label != tc.label || version != tc.version || part != tc.part || ok != tc.ok {
			t.Errorf("parseObjectLabel(%q) = %q, %d, %q, %v", tc.in, label, version, part, ok)
		}
	}
}
