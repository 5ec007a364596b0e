package payshield_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/hsmtest"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield"
	hsmsim "github.com/kbpay/switch/simulator/hsm"
)

// kekLabel is the ZMK every test key store starts with.
const kekLabel = "zmk-test"

// fixture is an emulator and a key store holding a ZMK.
type fixture struct {
	sim      *hsmsim.Server
	store    string
	kekClear []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	sim, err := hsmsim.New(hsmsim.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	f := &fixture{sim: sim, store: filepath.Join(t.TempDir(), "payshield-keys.json"), kekClear: make([]byte, 32)}
	if _, err := rand.Read(f.kekClear); err != nil {
		t.Fatal(err)
	}
	if err := sim.ProvisionKeyStore(f.store, []hsm.ImportKeyRequest{
		{Label: kekLabel, Usage: hsm.UsageKEK, Algorithm: hsm.AES, Material: f.kekClear},
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) open(t testing.TB, opts payshield.Options) *payshield.HSM {
	t.Helper()
	opts.Addr = f.sim.Addr()
	opts.KeyStore = f.store
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	h, err := payshield.Open(context.Background(), opts, hsm.Deps{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f *fixture) options() []hsmtest.Option {
	return []hsmtest.Option{
		hsmtest.ImportUnderKEK(hsm.KeyRef{Label: kekLabel}, f.kekClear),
		hsmtest.PINMACOnly(),
		hsmtest.WithoutAESDUKPT(),
	}
}

// TestConformance runs the hsm conformance suite against the backend on
// the emulator: keys enter under a ZMK, PANs are not its role.
func TestConformance(t *testing.T) {
	f := newFixture(t)
	hsmtest.Run(t, func(t *testing.T) hsmtest.Backend { return f.open(t, payshield.Options{}) }, f.options()...)
}

func BenchmarkPayshield(b *testing.B) {
	f := newFixture(b)
	hsmtest.Benchmarks(b, func(b *testing.B) hsmtest.Backend {
		return f.open(b, payshield.Options{Connections: 4, Pipeline: 32})
	}, f.options()...)
}

func TestClearKeysRefused(t *testing.T) {
	f := newFixture(t)
	h := f.open(t, payshield.Options{})
	defer h.Close()
	_, err := h.ImportKey(context.Background(), hsm.ImportKeyRequest{Label: "zpk", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: make([]byte, 16)})
	if !errors.Is(err, hsm.ErrClearKeyRefused) || !errors.Is(err, hsm.ErrUnsupported) {
		t.Errorf("ImportKey of a clear key: %v, want ErrClearKeyRefused", err)
	}
}

// TestGenerateZPKForExport: A0 mode 1 returns the new ZPK under the ZMK
// for the issuer; unwrapped with the ZMK it is the key the switch's PIN
// blocks come out under, with the KCV the HSM reported.
func TestGenerateZPKForExport(t *testing.T) {
	f := newFixture(t)
	h := f.open(t, payshield.Options{})
	defer h.Close()
	ctx := context.Background()
	info, exported, err := h.GenerateKeyForExport(ctx, hsm.GenerateKeyRequest{Label: "zpk-issuer", Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Size: 16},
		hsm.KeyRef{Label: kekLabel})
	if err != nil {
		t.Fatal(err)
	}
	hdr, zpk, err := paycrypto.UnwrapKeyBlock(f.kekClear, exported)
	if err != nil {
		t.Fatalf("the exported block does not open under the ZMK: %v", err)
	}
	if kcv, _ := paycrypto.KCV("tdes", zpk); hdr.Usage != "P0" || !bytes.Equal(kcv, info.KCV) {
		t.Fatalf("exported key: usage %s, KCV %X; the HSM reported %X", hdr.Usage, kcv, info.KCV)
	}
	// A terminal key, imported under the ZMK, and a translation to the new ZPK.
	tpk := []byte("0123456789ABCDEF")
	h2, _ := hsm.KeyBlockHeader(hsm.UsageTerminalPIN, hsm.TDES)
	block, err := paycrypto.WrapKeyBlock(f.kekClear, h2, tpk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ImportWrappedKey(ctx, hsm.ImportWrappedKeyRequest{Label: "tpk", Usage: hsm.UsageTerminalPIN, Algorithm: hsm.TDES,
		KEK: hsm.KeyRef{Label: kekLabel}, Block: block}); err != nil {
		t.Fatal(err)
	}
	const pan = "4111111111111111"
	in, _ := paycrypto.EncryptISO0(tpk, "1234", pan)
	out, err := h.TranslatePIN(ctx, hsm.TranslatePINRequest{PINBlock: in, PAN: pan,
		From: hsm.PINKey{Key: hsm.KeyRef{Label: "tpk"}}, To: hsm.PINKey{Key: hsm.KeyRef{Label: "zpk-issuer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := paycrypto.DecryptISO0(zpk, out, pan); err != nil || pin != "1234" {
		t.Errorf("the issuer cannot read the PIN under the exported ZPK: %v", err)
	}
	// A BDK is not exportable.
	if _, _, err := h.GenerateKeyForExport(ctx, hsm.GenerateKeyRequest{Label: "bdk", Usage: hsm.UsageBDK, Algorithm: hsm.TDES},
		hsm.KeyRef{Label: kekLabel}); !errors.Is(err, hsm.ErrHSMFault) {
		t.Errorf("exporting a BDK: %v, want the HSM's refusal", err)
	}
}
