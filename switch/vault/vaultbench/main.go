package vaultbench

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/pkcs11"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/internal/cli"
)

// Main is the vaultbench command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		if len(args) > 1 {
			return cli.Usagef(stderr, "vaultbench version", "unexpected argument %q", args[1])
		}
		return cli.Version(stdout, "vaultbench")
	}
	fs := flag.NewFlagSet("vaultbench", flag.ContinueOnError)
	var o Options
	fs.IntVar(&o.Tokens, "tokens", 100000, "tokens to load (the source platform had about 2.8 million)")
	fs.IntVar(&o.Lookups, "lookups", 50000, "detokenizations to time")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "concurrent detokenizers")
	fs.IntVar(&o.Batch, "batch", 10000, "rows per insert transaction")
	fs.IntVar(&o.Hot, "hot", 0, "draw the lookups from the first `n` tokens only (a hot set); 0: all")
	fs.StringVar(&o.Dir, "dir", "", "folder for the vault and key store (default: a new temporary folder, removed after)")
	backend := fs.String("hsm", "software", "HSM backend: software or pkcs11")
	lib := fs.String("pkcs11-lib", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module")
	label := fs.String("token-label", "", "PKCS#11 token label")
	pinEnv := fs.String("pin-env", "SWITCH_HSM_PIN", "environment variable with the PKCS#11 user PIN")
	version := fs.Bool("version", false, "print version, commit and Go version")
	if code, done := cli.Parse(fs, args, vaultbenchUsage(fs), stdout, stderr); done {
		return code
	}
	if *version {
		return cli.Version(stdout, "vaultbench")
	}
	if code, done := cli.NoArgs(fs, stderr); done {
		return code
	}
	if o.Tokens < 1 || o.Lookups < 1 || o.Concurrency < 1 || o.Batch < 1 || o.Hot < 0 {
		return cli.Usagef(stderr, "vaultbench", "--tokens, --lookups, --concurrency and --batch must be positive")
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

// vaultbenchUsage is --help: the command line and every flag's default.
func vaultbenchUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("vaultbench: load a token vault through an HSM backend and time detokenization.\n\n")
	b.WriteString("Usage: vaultbench [flags] | vaultbench version\n\nFlags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	b.WriteString("\nEnvironment: the variable named by --pin-env (default SWITCH_HSM_PIN) for pkcs11.\n")
	b.WriteString("Signals: none handled; SIGINT stops it at once.\n")
	return b.String()
}
