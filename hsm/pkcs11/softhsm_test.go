//go:build cgo

package pkcs11

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm/hsmtest"
)

const (
	testSOPIN   = "so-1234"
	testUserPIN = "user-5678"
)

// softHSM returns the SoftHSM2 module path, or skips the test when it is
// not installed; under CI=true a missing module fails the test instead
// (CI installs softhsm2).
func softHSM(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(DefaultLibrary); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("SoftHSM2 is not installed (%s: %v) and CI=true: CI must install softhsm2", DefaultLibrary, err)
		}
		tb.Skipf("SoftHSM2 is not installed (%s missing); apt-get install softhsm2 to run the PKCS#11 tests", DefaultLibrary)
	}
	return DefaultLibrary
}

// newToken points SoftHSM2 at a fresh token directory in tb.TempDir(),
// initializes a token labelled label there (C_InitToken on the free slot,
// then C_InitPIN as the SO) and returns the Options to open it. No HSM may
// be open when it is called: SoftHSM2 reads SOFTHSM2_CONF at C_Initialize.
func newToken(tb testing.TB, label string) Options {
	tb.Helper()
	lib := softHSM(tb)
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	text := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)

	libraries.Lock()
	inUse := libraries.m[lib] != nil
	libraries.Unlock()
	if inUse {
		tb.Fatalf("newToken: %s is still in use by an open HSM; close it first", lib)
	}
	l, err := acquire(lib)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := release(l); err != nil {
			tb.Errorf("finalizing after token setup: %v", err)
		}
	}()
	initToken(tb, l.ctx, label)
	return Options{Library: lib, TokenLabel: label, PIN: testUserPIN, Sessions: 4}
}

// initToken initializes the first free token as label with the test PINs.
func initToken(tb testing.TB, ctx *p11.Ctx, label string) {
	tb.Helper()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		tb.Fatalf("listing slots: %v", err)
	}
	free, found := uint(0), false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			free, found = s, true
			break
		}
	}
	if !found {
		tb.Fatal("no free SoftHSM2 slot")
	}
	if err := ctx.InitToken(free, testSOPIN, label); err != nil {
		tb.Fatalf("C_InitToken: %v", err)
	}
	slot, err := findToken(ctx, "SoftHSM2", label) // SoftHSM2 may renumber the slot
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		tb.Fatalf("C_OpenSession: %v", err)
	}
	defer ctx.CloseSession(s)
	if err := ctx.Login(s, p11.CKU_SO, testSOPIN); err != nil {
		tb.Fatalf("C_Login as SO: %v", err)
	}
	if err := ctx.InitPIN(s, testUserPIN); err != nil {
		tb.Fatalf("C_InitPIN: %v", err)
	}
	if err := ctx.Logout(s); err != nil {
		tb.Fatalf("C_Logout: %v", err)
	}
}

// mustOpen opens opts and closes the HSM when tb ends (Close is
// idempotent, so tests may close it earlier).
func mustOpen(tb testing.TB, opts Options) *HSM {
	tb.Helper()
	h, err := Open(opts, zap.NewNop())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// TestConformance runs the suite every backend passes, on one SoftHSM2
// token shared by the subtests (each opens and closes its own HSM).
func TestConformance(t *testing.T) {
	opts := newToken(t, "kbpay-conformance")
	hsmtest.Run(t, func(t *testing.T) hsmtest.Backend {
		h, err := Open(opts, zap.NewNop())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return h
	})
}

func BenchmarkConformance(b *testing.B) {
	opts := newToken(b, "kbpay-bench")
	hsmtest.Benchmarks(b, func(b *testing.B) hsmtest.Backend {
		h, err := Open(opts, zap.NewNop())
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return h
	})
}
