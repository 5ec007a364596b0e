// Package issuertest starts issuer emulators for tests.
package issuertest

import (
	"testing"

	"github.com/kbpay/switch/simulator/issuer"
)

// Start runs an issuer emulator with cfg (an empty Addr listens on
// 127.0.0.1:0), logging nowhere, and closes it when the test ends.
func Start(t testing.TB, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	is, err := issuer.New(cfg, nil)
	if err != nil {
		t.Fatalf("issuertest: %v", err)
	}
	if err := is.Start(); err != nil {
		t.Fatalf("issuertest: starting %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = is.Close() })
	return is
}
