package payshield_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/hsmtest"
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
