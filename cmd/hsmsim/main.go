// Command hsmsim runs the payShield-compatible HSM emulator
// (simulator/hsm) until SIGINT or SIGTERM: host commands on -addr
// (127.0.0.1:1500), the fault switches on -admin. With -demo-keys FILE it
// first writes the public demo PIN and MAC keys (hsm/devkeys) under its
// LMK into FILE, the key store of switchd's payshield backend, skipping
// labels the file already holds. Its LMK is a public test key.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/payshield"
	hsmsim "github.com/kbpay/switch/simulator/hsm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hsmsim:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", hsmsim.DefaultAddr, "host-command listen address")
	admin := flag.String("admin", "127.0.0.1:1501", "admin API address (faults, stats); empty: none")
	header := flag.Int("header", 4, "message header length")
	lmkEnv := flag.String("lmk-env", "", "environment variable with the AES-256 LMK (64 hex digits); default the public test LMK")
	demoKeys := flag.String("demo-keys", "", "write the demo PIN and MAC keys under the LMK into this payshield key-store file")
	flag.Parse()

	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	opts := hsmsim.Options{Addr: *addr, HeaderLength: *header, Log: log}
	if *lmkEnv != "" {
		if opts.LMK, err = hex.DecodeString(os.Getenv(*lmkEnv)); err != nil {
			return fmt.Errorf("LMK in %s: %w", *lmkEnv, err)
		}
	} else {
		log.Warn("using the PUBLIC test LMK: never load a real key into this emulator")
	}
	sim, err := hsmsim.New(opts)
	if err != nil {
		return err
	}
	defer sim.Close()
	if *demoKeys != "" {
		if err := provisionDemoKeys(sim, *demoKeys, log); err != nil {
			return err
		}
	}
	if *admin != "" {
		srv := &http.Server{Addr: *admin, Handler: hsmsim.AdminHandler(sim), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin API", zap.Error(err))
			}
		}()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	log.Info("hsmsim listening", zap.String("addr", sim.Addr()), zap.String("admin", *admin), zap.Int("header_length", *header))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("hsmsim stopping")
	return nil
}

// provisionDemoKeys writes the demo keys the file lacks.
func provisionDemoKeys(sim *hsmsim.Server, path string, log *zap.Logger) error {
	have, err := payshield.ReadKeyStore(path)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, k := range have {
		present[k.Label] = true
	}
	var missing []hsm.ImportKeyRequest
	for _, req := range devkeys.Imports() {
		if !present[req.Label] {
			missing = append(missing, req)
		}
	}
	if err := sim.ProvisionKeyStore(path, missing); err != nil {
		return err
	}
	log.Warn("wrote the public DEMO keys under the test LMK", zap.String("key_store", path), zap.Int("keys", len(missing)))
	return nil
}
