package payshield_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield"
	"github.com/kbpay/switch/internal/testnet"
	hsmsim "github.com/kbpay/switch/simulator/hsm"
)

// retailKey is a public test MAC key (the X9.19 example).
var retailKey = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}

// withMACKey provisions the retail MAC key "mac" into the fixture's store.
func (f *fixture) withMACKey(t testing.TB) *fixture {
	t.Helper()
	if err := f.sim.ProvisionKeyStore(f.store, []hsm.ImportKeyRequest{{Label: "mac", Usage: hsm.UsageMAC, Algorithm: hsm.TDES, Material: retailKey}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func macOf(t testing.TB, h *payshield.HSM, data []byte) ([]byte, error) {
	t.Helper()
	return h.GenerateMAC(context.Background(), hsm.MACRequest{Key: hsm.KeyRef{Label: "mac"}, Algorithm: hsm.RetailMAC, Data: data})
}

// TestPipelinedAnswersMatchedByHeader sends many commands at once over
// one connection while the emulator answers each after a random delay,
// so answers come back out of order: each must get its own MAC.
func TestPipelinedAnswersMatchedByHeader(t *testing.T) {
	f := newFixture(t).withMACKey(t)
	if err := f.sim.SetFaults(hsmsim.Faults{Latency: "uniform,min=0s,max=5ms"}); err != nil {
		t.Fatal(err)
	}
	h := f.open(t, payshield.Options{Connections: 1, Pipeline: 32})
	defer h.Close()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 8 {
				data := []byte(fmt.Sprintf("message %d/%d", g, i))
				want, _ := paycrypto.RetailMAC(retailKey, data)
				got, err := macOf(t, h, data)
				if err != nil || !bytes.Equal(got, want[:8]) {
					t.Errorf("MAC of %q = %X, %v; want %X", data, got, err, want[:8])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTypedErrors: each way the HSM fails gives the error the switch maps
// to 91 (unavailable, timeout) or 96 (an HSM error code), never a MAC
// mismatch or an invalid PIN block.
func TestTypedErrors(t *testing.T) {
	cases := []struct {
		name   string
		faults hsmsim.Faults
		want   error
		code   string
	}{
		{"error code", hsmsim.Faults{ErrorPercent: 100, ErrorCode: "13"}, hsm.ErrHSMFault, "13"},
		{"disconnect", hsmsim.Faults{DisconnectPercent: 100}, hsm.ErrHSMUnavailable, ""},
		{"stall", hsmsim.Faults{Stall: true}, hsm.ErrHSMTimeout, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t).withMACKey(t)
			h := f.open(t, payshield.Options{Timeout: time.Second})
			defer h.Close()
			if err := f.sim.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			_, err := macOf(t, h, []byte("0200"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("GenerateMAC: %v, want %v", err, tc.want)
			}
			verr := h.VerifyMAC(context.Background(), hsm.VerifyMACRequest{
				MACRequest: hsm.MACRequest{Key: hsm.KeyRef{Label: "mac"}, Algorithm: hsm.RetailMAC, Data: []byte("0200")}, MAC: make([]byte, 8)})
			if !errors.Is(verr, tc.want) || errors.Is(verr, hsm.ErrMACMismatch) {
				t.Errorf("VerifyMAC: %v, want %v and no mismatch verdict", verr, tc.want)
			}
			var de *hsm.DeviceError
			if tc.code != "" && (!errors.As(err, &de) || de.Code != tc.code || de.Command != "M6") {
				t.Errorf("error %v is not the HSM's code %s for M6", err, tc.code)
			}
			// The HSM recovers: so does the backend (reconnecting as needed).
			_ = f.sim.SetFaults(hsmsim.Faults{})
			testnet.EventuallyOK(t, 20*time.Second, "the backend to recover", func() error { _, err := macOf(t, h, []byte("0200")); return err })
		})
	}
}

// TestReconnectAfterHSMRestart: the HSM goes away (every command fails
// unavailable) and comes back on the same address; the pool reconnects.
func TestReconnectAfterHSMRestart(t *testing.T) {
	f := newFixture(t).withMACKey(t)
	h := f.open(t, payshield.Options{Connections: 2, Timeout: 2 * time.Second})
	defer h.Close()
	if _, err := macOf(t, h, []byte("before")); err != nil {
		t.Fatal(err)
	}
	addr := f.sim.Addr()
	if err := f.sim.Close(); err != nil {
		t.Fatal(err)
	}
	testnet.EventuallyOK(t, 20*time.Second, "the HSM to be seen down", func() error {
		if _, err := macOf(t, h, []byte("down")); !errors.Is(err, hsm.ErrHSMUnavailable) {
			return fmt.Errorf("with the HSM down: %v, want ErrHSMUnavailable", err)
		}
		return nil
	})
	sim, err := hsmsim.New(hsmsim.Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	testnet.EventuallyOK(t, 20*time.Second, "a reconnect to the restarted HSM", func() error { _, err := macOf(t, h, []byte("after")); return err })
}

func TestPoolMetrics(t *testing.T) {
	f := newFixture(t).withMACKey(t)
	reg := prometheus.NewRegistry()
	h, err := payshield.Open(context.Background(), payshield.Options{Addr: f.sim.Addr(), KeyStore: f.store, Connections: 3, Pipeline: 5},
		hsm.Deps{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := macOf(t, h, []byte("x")); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if got["hsm_pool_capacity"] != 15 || got["hsm_pool_connections"] < 1 || got["hsm_pool_in_flight"] != 0 {
		t.Errorf("pool gauges %v, want capacity 15, a connection, nothing in flight", got)
	}
}
