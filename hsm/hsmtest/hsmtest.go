// Package hsmtest is the conformance suite and benchmark set every hsm backend must pass.
package hsmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// Backend is what the suite exercises: the operations and key management.
type Backend interface {
	hsm.HSM
	hsm.KeyManager
}

// Option adapts the suite to what a backend cannot do by design; the
// default (no options) runs every test.
type Option func(*config)

type config struct {
	// kek, when set, is how keys enter: wrapped under a KEK, never clear.
	kek      *hsm.KeyRef
	kekClear []byte
	pinMAC   bool // the backend serves the PIN/MAC role only
	noAESDK  bool // the backend has no AES DUKPT translation
}

// ImportUnderKEK is for backends that refuse clear keys
// (hsm.ErrClearKeyRefused): the suite wraps every test key as an X9.143
// version D key block under the KEK kek (whose clear value the test
// supplies; the backend holds it already) and imports it with
// hsm.WrappedKeyImporter. Imports the backend must refuse are wrapped
// just the same, so the backend, not the suite, refuses them.
func ImportUnderKEK(kek hsm.KeyRef, clearKEK []byte) Option {
	return func(c *config) { c.kek, c.kekClear = &kek, clearKEK }
}

// PINMACOnly is for backends that serve only the PIN/MAC role: the PAN
// round trips, hashes and their rotation are skipped (every error case
// on PAN keys still runs).
func PINMACOnly() Option { return func(c *config) { c.pinMAC = true } }

// WithoutAESDUKPT is for backends with no AES DUKPT translation (they
// must answer hsm.ErrUnsupported); those translations are skipped.
func WithoutAESDUKPT() Option { return func(c *config) { c.noAESDK = true } }

// Run runs the conformance suite. open is called once per subtest and
// returns a ready backend; Run closes it (Close must return nil) when the
// subtest ends. Backends may be shared between calls (a PKCS#11 token):
// every subtest imports its own keys under labels unique to the run.
func Run(t *testing.T, open func(t *testing.T) Backend, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	skip := map[string]bool{}
	if cfg.pinMAC {
		for _, n := range []string{"PAN/RoundTrip", "PAN/Tamper", "PAN/Hash", "Rotation/PANData", "Rotation/PANHash"} {
			skip[n] = true
		}
	}
	if cfg.noAESDK {
		skip["TranslatePIN/AESDUKPT"] = true
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"PAN/RoundTrip", testPANRoundTrip},
		{"PAN/Tamper", testPANTamper},
		{"PAN/Hash", testPANHash},
		{"Rotation/PANData", testRotationPANData},
		{"Rotation/PANHash", testRotationPANHash},
		{"WrongUsage", testWrongUsage},
		{"KeyNotFound", testKeyNotFound},
		{"KeyInfo", testKeyInfo},
		{"TranslatePIN/Static", testTranslateStatic},
		{"TranslatePIN/TDESDUKPT", testTranslateTDESDUKPT},
		{"TranslatePIN/AESDUKPT", testTranslateAESDUKPT},
		{"TranslatePIN/Invalid", testTranslateInvalid},
		{"MAC/Retail", testRetailMAC},
		{"MAC/CMAC", testCMAC},
		{"MAC/Mismatch", testMACMismatch},
		{"KeyExchange", testKeyExchange},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if skip[tc.name] {
				t.Skip("the backend does not serve this by design (hsmtest option)")
			}
			tc.fn(t, newEnv(t, open(t), cfg))
		})
	}
}

// runID makes labels unique across runs against a persistent backend.
var runID = func() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}()

var labelSeq atomic.Int64

var nonLabel = regexp.MustCompile(`[^a-z0-9]+`)

// env is one subtest's backend and its keys.
type env struct {
	tb     testing.TB
	ctx    context.Context
	b      Backend
	prefix string
	cfg    config
}

func newEnv(tb testing.TB, b Backend, cfg config) *env {
	tb.Helper()
	if b == nil {
		tb.Fatal("hsmtest: open returned a nil backend")
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	name := tb.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = nonLabel.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 24 {
		name = name[:24]
	}
	return &env{
		tb:     tb,
		ctx:    tb.Context(),
		b:      b,
		prefix: fmt.Sprintf("t%s-%d-%s", runID, labelSeq.Add(1), strings.Trim(name, "-")),
		cfg:    cfg,
	}
}

// label returns a label unique to this subtest and run.
func (e *env) label(name string) string { return e.prefix + "-" + name }

// imp imports material under e.label(name) and returns its current ref.
func (e *env) imp(name string, u hsm.Usage, alg hsm.Algorithm, material []byte) hsm.KeyRef {
	e.tb.Helper()
	info := e.mustImport(name, u, alg, material)
	return hsm.KeyRef{Label: info.Label}
}

func (e *env) mustImport(name string, u hsm.Usage, alg hsm.Algorithm, material []byte) hsm.KeyInfo {
	e.tb.Helper()
	req := hsm.ImportKeyRequest{Label: e.label(name), Usage: u, Algorithm: alg, Material: material}
	info, err := e.importKey(req)
	if err != nil {
		e.tb.Fatalf("ImportKey %s (%s, %s): %v", req.Label, u, alg, err)
	}
	if info.Label != req.Label || info.Usage != u || info.Algorithm != alg {
		e.tb.Fatalf("ImportKey %s: got info %+v", req.Label, info)
	}
	return info
}

// random returns n random bytes.
func random(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// wantErr fails unless errors.Is(err, target).
func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// pinUnder decrypts an output PIN block with the clear key, as the issuer
// would, and returns the PIN.
func pinUnder(f hsm.PINFormat, key, block []byte, pan string) (string, error) {
	if f == hsm.ISO4 {
		return paycrypto.DecryptISO4(key, block, pan)
	}
	return paycrypto.DecryptISO0(key, block, pan)
}

// importKey imports a key the way the backend takes keys: in clear, or
// wrapped under the KEK (ImportUnderKEK).
func (e *env) importKey(req hsm.ImportKeyRequest) (hsm.KeyInfo, error) {
	if e.cfg.kek == nil {
		return e.b.ImportKey(e.ctx, req)
	}
	w, ok := e.b.(hsm.WrappedKeyImporter)
	if !ok {
		e.tb.Fatalf("ImportUnderKEK: the backend is no hsm.WrappedKeyImporter")
	}
	h, err := hsm.KeyBlockHeader(req.Usage, req.Algorithm)
	if err != nil {
		// A usage and algorithm no block header expresses: send a data
		// key header, for the backend to refuse against the request.
		h = paycrypto.KeyBlockHeader{Usage: "D0", Algorithm: 'T', ModeOfUse: 'B', Version: "00", Exportability: 'E'}
	}
	block, err := paycrypto.WrapKeyBlock(e.cfg.kekClear, h, req.Material, rand.Reader)
	if err != nil {
		e.tb.Fatalf("wrapping %s under the KEK: %v", req.Label, err)
	}
	return w.ImportWrappedKey(e.ctx, hsm.ImportWrappedKeyRequest{
		Label: req.Label, Usage: req.Usage, Algorithm: req.Algorithm, KEK: *e.cfg.kek, Block: block})
}
