package software_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/hsmtest"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/software"
)

func randomKey(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustOpen(tb testing.TB, path string, master []byte, log *zap.Logger) *software.HSM {
	tb.Helper()
	h, err := software.Open(software.Options{KeyStore: path, MasterKey: master}, log)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return h
}

func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsmtest.Backend {
		return mustOpen(t, filepath.Join(t.TempDir(), "keys.json"), randomKey(t, 32), zaptest.NewLogger(t))
	})
}

func BenchmarkSoftware(b *testing.B) {
	hsmtest.Benchmarks(b, func(b *testing.B) hsmtest.Backend {
		return mustOpen(b, filepath.Join(b.TempDir(), "keys.json"), randomKey(b, 32), nil)
	})
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keys.json")
	master := randomKey(t, 32)
	const pan = "4111111111111111"

	h := mustOpen(t, path, master, nil)
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES, Material: randomKey(t, 32)}); err != nil {
		t.Fatal(err)
	}
	v1, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES}); err != nil {
		t.Fatal(err)
	}
	v2, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: randomKey(t, 16)}); err != nil {
		t.Fatal(err)
	}
	created, err := h.EnsureDevKeys(ctx)
	if err != nil || len(created) != 2 {
		t.Fatalf("EnsureDevKeys = %v, %v; want 2 keys", created, err)
	}
	hash, err := h.HashPAN(ctx, hsm.KeyRef{Label: hsm.LabelPANHash}, pan)
	if err != nil {
		t.Fatal(err)
	}
	before, err := h.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	h = mustOpen(t, path, master, nil)
	defer h.Close()
	after, err := h.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("keys after reopen:\n%v\nwant\n%v", after, before)
	}
	for _, enc := range []hsm.EncryptedPAN{v1, v2} {
		if got, err := h.DecryptPAN(ctx, enc); err != nil || got != pan {
			t.Errorf("DecryptPAN version %d after reopen: %v", enc.Key.Version, err)
		}
	}
	if enc, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan); err != nil || enc.Key.Version != 2 {
		t.Errorf("EncryptPAN after reopen = version %d, %v; want 2", enc.Key.Version, err)
	}
	if again, err := h.HashPAN(ctx, hsm.KeyRef{Label: hsm.LabelPANHash}, pan); err != nil || !bytes.Equal(again.Hash, hash.Hash) {
		t.Errorf("HashPAN after reopen differs (%v)", err)
	}
	if created, err := h.EnsureDevKeys(ctx); err != nil || len(created) != 0 {
		t.Errorf("EnsureDevKeys after reopen = %v, %v; want nothing created", created, err)
	}
	// Rotation continues from the stored version.
	if info, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "data", Usage: hsm.UsagePANData, Algorithm: hsm.AES}); err != nil || info.Version != 3 {
		t.Errorf("GenerateKey after reopen = version %d, %v; want 3", info.Version, err)
	}
}

func TestWrongMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	h := mustOpen(t, path, randomKey(t, 32), nil)
	if _, err := h.EnsureDevKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	h2, err := software.Open(software.Options{KeyStore: path, MasterKey: randomKey(t, 32)}, nil)
	if err == nil {
		h2.Close()
		t.Fatal("Open with another master key succeeded")
	}
	if !errors.Is(err, software.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), "KCV mismatch") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open with another master key: %v", err)
	}
}

func TestEnsureDevKeysUsageConflict(t *testing.T) {
	h := mustOpen(t, filepath.Join(t.TempDir(), "keys.json"), randomKey(t, 32), nil)
	defer h.Close()
	if _, err := h.ImportKey(t.Context(), hsm.ImportKeyRequest{Label: hsm.LabelPANData, Usage: hsm.UsageMAC, Algorithm: hsm.AES, Material: randomKey(t, 16)}); err != nil {
		t.Fatal(err)
	}
	_, err := h.EnsureDevKeys(t.Context())
	if !errors.Is(err, hsm.ErrWrongUsage) || !strings.Contains(err.Error(), hsm.LabelPANData) {
		t.Errorf("EnsureDevKeys over a MAC key labelled %s: %v", hsm.LabelPANData, err)
	}
}

// storeJSON is the key-store file as generic JSON, for tampering.
type storeJSON map[string]any

func (s storeJSON) key(i int) map[string]any { return s["keys"].([]any)[i].(map[string]any) }

func TestTamperedStore(t *testing.T) {
	dir := t.TempDir()
	master := randomKey(t, 32)
	path := filepath.Join(dir, "keys.json")
	h := mustOpen(t, path, master, nil)
	ctx := t.Context()
	for _, req := range []hsm.ImportKeyRequest{
		{Label: "alpha", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: randomKey(t, 16)},
		{Label: "beta", Usage: hsm.UsagePANData, Algorithm: hsm.AES, Material: randomKey(t, 32)},
		{Label: "beta", Usage: hsm.UsagePANData, Algorithm: hsm.AES, Material: randomKey(t, 32)},
	} {
		if _, err := h.ImportKey(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	edit := func(f func(s storeJSON)) []byte {
		var s storeJSON
		if err := json.Unmarshal(orig, &s); err != nil {
			t.Fatal(err)
		}
		f(s)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		want []string // substrings of the error
	}{
		{"usage changed", edit(func(s storeJSON) { s.key(0)["usage"] = "tpk" }), []string{`"alpha"`, "failed to unwrap"}},
		{"label changed", edit(func(s storeJSON) { s.key(0)["label"] = "gamma" }), []string{`"gamma"`, "failed to unwrap"}},
		{"version changed", edit(func(s storeJSON) { s.key(2)["version"] = 7 }), []string{`"beta" version 7`, "failed to unwrap"}},
		{"algorithm changed", edit(func(s storeJSON) { s.key(1)["algorithm"] = "tdes" }), []string{`"beta"`, "failed to unwrap"}},
		{"wrapped flipped", edit(func(s storeJSON) {
			w, _ := base64.StdEncoding.DecodeString(s.key(1)["wrapped"].(string))
			w[len(w)/2] ^= 1
			s.key(1)["wrapped"] = base64.StdEncoding.EncodeToString(w)
		}), []string{`"beta" version 1`, "failed to unwrap"}},
		{"wrapped swapped", edit(func(s storeJSON) { s.key(1)["wrapped"], s.key(2)["wrapped"] = s.key(2)["wrapped"], s.key(1)["wrapped"] }), []string{`"beta" version 1`, "failed to unwrap"}},
		{"kcv changed", edit(func(s storeJSON) { s.key(0)["kcv"] = "000000" }), []string{`"alpha"`, "KCV mismatch"}},
		{"newest version removed", edit(func(s storeJSON) { s["keys"] = s["keys"].([]any)[:2] }), []string{"seal mismatch"}},
		{"key removed", edit(func(s storeJSON) { s["keys"] = s["keys"].([]any)[1:] }), []string{"seal mismatch"}},
		{"seal removed", edit(func(s storeJSON) { delete(s, "seal") }), []string{"seal mismatch"}},
		{"version gap", edit(func(s storeJSON) { s["keys"] = append(s["keys"].([]any)[:1], s.key(2)) }), []string{`"beta" has version 2 where version 1 was expected`}},
		{"unknown format", edit(func(s storeJSON) { s["format"] = 2 }), []string{"format 2"}},
		{"unknown field", edit(func(s storeJSON) { s["extra"] = true }), []string{"malformed", "extra"}},
		{"truncated", orig[:len(orig)/2], []string{"malformed"}},
		{"trailing data", append(append([]byte{}, orig...), "{}"...), []string{"malformed", "after the JSON"}},
		{"empty", nil, []string{"malformed"}},
		{"not JSON", []byte("PK\x03\x04"), []string{"malformed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			h, err := software.Open(software.Options{KeyStore: p, MasterKey: master}, nil)
			if err == nil {
				h.Close()
				t.Fatal("Open of a tampered store succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The untouched file still opens.
	h = mustOpen(t, path, master, nil)
	h.Close()
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opts software.Options
		want string
	}{
		{"no path", software.Options{MasterKey: make([]byte, 32)}, "no key store path"},
		{"short master key", software.Options{KeyStore: filepath.Join(dir, "a.json"), MasterKey: make([]byte, 16)}, "must be 32 bytes"},
		{"no master key", software.Options{KeyStore: filepath.Join(dir, "b.json")}, "must be 32 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := software.Open(tc.opts, nil)
			if err == nil {
				h.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "hsm")
	path := filepath.Join(dir, "keys.json")
	h := mustOpen(t, path, randomKey(t, 32), nil)
	defer h.Close()
	check := func(when string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: key store mode %o, want 600", when, m)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m := di.Mode().Perm(); m != 0o700 {
			t.Errorf("%s: key store directory mode %o, want 700", when, m)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Errorf("%s: directory holds %d entries, want only the key store (no temporary files)", when, len(entries))
		}
	}
	check("created")
	if _, err := h.EnsureDevKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after writes")
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	h := mustOpen(t, filepath.Join(t.TempDir(), "keys.json"), randomKey(t, 32), nil)
	if _, err := h.EnsureDevKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: hsm.LabelPANData}, "4111111111111111"); err == nil {
		t.Error("EncryptPAN after Close succeeded")
	}
	if _, err := h.Keys(ctx); err == nil {
		t.Error("Keys after Close succeeded")
	}
	if _, err := h.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: "x", Usage: hsm.UsageMAC, Algorithm: hsm.AES}); err == nil {
		t.Error("GenerateKey after Close succeeded")
	}
}

func TestLoadMasterKey(t *testing.T) {
	const keyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	want, _ := hex.DecodeString(keyHex)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const env = "KBPAY_TEST_HSM_MASTER_KEY"
	badHex := strings.Repeat("zz", 32)
	cases := []struct {
		name    string
		file    string
		envVal  *string
		wantErr string // "" for success
	}{
		{"file", write("ok", keyHex), nil, ""},
		{"file with whitespace", write("ws", "  \n"+strings.ToUpper(keyHex)+"\r\n\n"), nil, ""},
		{"file wins over env", write("ok2", keyHex), ptr("garbage"), ""},
		{"env", "", ptr(keyHex + "\n"), ""},
		{"missing file", filepath.Join(dir, "nope"), nil, "reading master key file"},
		{"empty file", write("empty", "\n"), nil, "is empty"},
		{"short file", write("short", keyHex[:62]), nil, "must be 64 hex characters"},
		{"long file", write("long", keyHex+"00"), nil, "got 66 characters"},
		{"non-hex file", write("nonhex", badHex), nil, "is not hexadecimal"},
		{"env unset", "", nil, "is not set"},
		{"env short", "", ptr("abcd"), "must be 64 hex characters"},
		{"env non-hex", "", ptr(badHex), "is not hexadecimal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			envVar := env
			if tc.envVal != nil {
				t.Setenv(env, *tc.envVal)
			} else {
				envVar = env + "_UNSET"
			}
			got, err := software.LoadMasterKey(tc.file, envVar)
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("LoadMasterKey = %x, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadMasterKey succeeded, want an error with %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("LoadMasterKey: %v, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "zz") || strings.Contains(strings.ToLower(err.Error()), keyHex[:20]) {
				t.Errorf("error reveals key text: %v", err)
			}
		})
	}
	if _, err := software.LoadMasterKey("", ""); err == nil || !strings.Contains(err.Error(), "no master key") {
		t.Errorf("LoadMasterKey with no source: %v", err)
	}
}

func ptr(s string) *string { return &s }

// TestNoSecretsInLogs drives every operation, successes and failures, and
// checks that no log line holds key material (hex or base64), the master
// key or a PAN.
func TestNoSecretsInLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	master := randomKey(t, 32)
	h := mustOpen(t, path, master, log)

	secrets := [][]byte{master}
	imp := func(label string, u hsm.Usage, alg hsm.Algorithm, m []byte) {
		secrets = append(secrets, m)
		if _, err := h.ImportKey(ctx, hsm.ImportKeyRequest{Label: label, Usage: u, Algorithm: alg, Material: m}); err != nil {
			t.Fatal(err)
		}
	}
	tpk, zpk := randomKey(t, 16), randomKey(t, 16)
	imp("data", hsm.UsagePANData, hsm.AES, randomKey(t, 32))
	imp("hash", hsm.UsagePANHash, hsm.HMAC, randomKey(t, 32))
	imp("tpk", hsm.UsageTerminalPIN, hsm.TDES, tpk)
	imp("zpk", hsm.UsageZonePIN, hsm.TDES, zpk)
	imp("mac", hsm.UsageMAC, hsm.TDES, randomKey(t, 16))
	imp("data", hsm.UsagePANData, hsm.AES, randomKey(t, 32))
	if _, err := h.EnsureDevKeys(ctx); err != nil {
		t.Fatal(err)
	}

	pans := []string{"4111111111111111", "5413330089010434"}
	for _, pan := range pans {
		enc, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: "data"}, pan)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = h.DecryptPAN(ctx, enc)
		enc.Ciphertext[0] ^= 1
		_, _ = h.DecryptPAN(ctx, enc)
		_, _ = h.HashPAN(ctx, hsm.KeyRef{Label: "hash"}, pan)
		_, _ = h.EncryptPAN(ctx, hsm.KeyRef{Label: "tpk"}, pan)
		block, err := paycrypto.EncryptISO0(tpk, "1234", pan)
		if err != nil {
			t.Fatal(err)
		}
		req := hsm.TranslatePINRequest{PINBlock: block, PAN: pan,
			From: hsm.PINKey{Key: hsm.KeyRef{Label: "tpk"}}, To: hsm.PINKey{Key: hsm.KeyRef{Label: "zpk"}}}
		if _, err := h.TranslatePIN(ctx, req); err != nil {
			t.Fatal(err)
		}
		req.PAN = "4999999999999999"
		_, _ = h.TranslatePIN(ctx, req)
		_, _ = h.GenerateMAC(ctx, hsm.MACRequest{Key: hsm.KeyRef{Label: "mac"}, Algorithm: hsm.RetailMAC, Data: []byte(pan)})
	}
	h.Close()
	// Failed opens log too (or not): a wrong master key and a reopen.
	if h2, err := software.Open(software.Options{KeyStore: path, MasterKey: randomKey(t, 32)}, log); err == nil {
		h2.Close()
	}
	mustOpen(t, path, master, log).Close()

	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test checks nothing")
	}
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		lower := strings.ToLower(line)
		for _, s := range secrets {
			for _, enc := range []string{hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
				if strings.Contains(lower, strings.ToLower(enc)) || strings.Contains(line, enc) {
					t.Errorf("log line holds key material: %s", line)
				}
			}
		}
		for _, pan := range append(pans, "4999999999999999") {
			if strings.Contains(line, pan) || strings.Contains(line, pan[6:]) {
				t.Errorf("log line holds a PAN: %s", line)
			}
		}
	}
}
