package vaultbench

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/pkcs11"
	"github.com/kbpay/switch/hsm/software"
)

// Main is the vaultbench command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaultbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.IntVar(&o.Tokens, "tokens", 100000, "tokens to load (the source platform had about 2.8 million)")
	fs.IntVar(&o.Lookups, "lookups", 50000, "detokenizations to time")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "concurrent detokenizers")
	fs.IntVar(&o.Batch, "batch", 10000, "rows per insert transaction")
	fs.StringVar(&o.Dir, "dir", "", "folder for the vault and key store (default: a new temporary folder, removed after)")
	backend := fs.String("hsm", "software", "HSM backend: software or pkcs11")
	lib := fs.String("pkcs11-lib", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module")
	label := fs.String("token-label", "", "PKCS#11 token label")
	pinEnv := fs.String("pin-env", "SWITCH_HSM_PIN", "environment variable with the PKCS#11 user PIN")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Tokens < 1 || o.Lookups < 1 || o.Concurrency < 1 || o.Batch < 1 {
		fmt.Fprintln(stderr, "vaultbench: --tokens, --lookups, --concurrency and --batch must be positive")
		return 2
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "vaultbench")
		if err != nil {
			fmt.Fprintf(stderr, "vaultbench: %v\n", err)
			return 1
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	h, err := openBackend(ctx, *backend, o.Dir, *lib, *label, os.Getenv(*pinEnv))
	if err != nil {
		fmt.Fprintf(stderr, "vaultbench: %v\n", err)
		return 1
	}
	defer h.Close()
	res, err := Run(ctx, h, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vaultbench: %v\n", err)
		return 1
	}
	res.Print(stdout, *backend)
	return 0
}

type backend interface {
	hsm.HSM
	hsm.KeyManager
}

func openBackend(ctx context.Context, name, dir, lib, label, pin string) (backend, error) {
	var b backend
	switch name {
	case "software":
		mk := make([]byte, 32)
		if _, err := rand.Read(mk); err != nil {
			return nil, err
		}
		h, err := software.Open(software.Options{KeyStore: dir + "/keystore.json", MasterKey: mk}, zap.NewNop())
		if err != nil {
			return nil, err
		}
		b = h
	case "pkcs11":
		h, err := pkcs11.Open(pkcs11.Options{Library: lib, TokenLabel: label, PIN: pin}, zap.NewNop())
		if err != nil {
			return nil, err
		}
		b = h
	default:
		return nil, fmt.Errorf("unknown backend %q", name)
	}
	keys, err := b.Keys(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k.Label] = true
	}
	for _, req := range []hsm.GenerateKeyRequest{
		{Label: hsm.LabelPANData, Usage: hsm.UsagePANData, Algorithm: hsm.AES, Size: 32},
		{Label: hsm.LabelPANHash, Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC, Size: 32},
	} {
		if !have[req.Label] {
			if _, err := b.GenerateKey(ctx, req); err != nil {
				return nil, fmt.Errorf("generating %s: %w", req.Label, err)
			}
		}
	}
	return b, nil
}
