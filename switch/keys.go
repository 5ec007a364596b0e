package payswitch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/pkcs11"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
)

// openHSM opens the configured HSM backend. In development mode (see
// config.DevelopmentMode) a missing software master key is generated into
// its file and the public demo PIN and MAC keys are imported: the
// development path, announced loudly. Outside it neither happens, whatever
// labels the configuration names. generate_dev_master_key also creates the
// random PAN data and hash keys when they are missing.
func openHSM(ctx context.Context, cfg config.Config, log *zap.Logger) (hsm.HSM, error) {
	dev, reason := cfg.DevelopmentMode(os.Getenv)
	switch cfg.HSM.Backend {
	case "pkcs11":
		h, err := pkcs11.Open(pkcs11.Options{
			Library:    cfg.HSM.PKCS11.Library,
			TokenLabel: cfg.HSM.PKCS11.TokenLabel,
			PIN:        os.Getenv(cfg.HSM.PKCS11.PINEnv),
			Sessions:   cfg.HSM.PKCS11.Sessions,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("opening pkcs11 HSM: %w", err)
		}
		return h, nil
	case "software":
		if dev {
			created, err := ensureDevMasterKey(cfg.HSM.MasterKeyFile)
			if err != nil {
				return nil, err
			}
			if created {
				log.Warn("generated a DEVELOPMENT master key; production must supply its own (hsm.master_key_env or hsm.master_key_file) and set generate_dev_master_key: false",
					zap.String("file", cfg.HSM.MasterKeyFile), zap.String("development_mode", reason))
			}
		}
		file := cfg.HSM.MasterKeyFile
		if os.Getenv(cfg.HSM.MasterKeyEnv) != "" {
			file = "" // the variable wins over the file
		}
		mk, err := software.LoadMasterKey(file, cfg.HSM.MasterKeyEnv)
		if err != nil {
			return nil, fmt.Errorf("loading the HSM master key: %w", err)
		}
		h, err := software.Open(software.Options{KeyStore: cfg.HSM.KeyStore, MasterKey: mk}, log)
		clear(mk)
		if err != nil {
			return nil, fmt.Errorf("opening software HSM: %w", err)
		}
		if err := ensureDevKeys(ctx, h, *cfg.HSM.GenerateDevMasterKey, dev, log); err != nil {
			_ = h.Close()
			return nil, err
		}
		return h, nil
	}
	return nil, fmt.Errorf("unknown HSM backend %q", cfg.HSM.Backend)
}

// ensureDevKeys creates the missing random PAN keys when generate is set
// and, in development mode only, imports the public demo keys.
func ensureDevKeys(ctx context.Context, h *software.HSM, generate, dev bool, log *zap.Logger) error {
	if generate {
		// EnsureDevKeys logs what it creates; the demo imports are ours.
		if _, err := h.EnsureDevKeys(ctx); err != nil {
			return fmt.Errorf("creating development keys: %w", err)
		}
	}
	if !dev {
		return nil
	}
	demo, err := importDemoKeys(ctx, h)
	if err != nil {
		return err
	}
	for _, k := range demo {
		log.Warn("imported a public DEMO key (development mode only)", zap.String("label", k.Label), zap.String("usage", string(k.Usage)),
			zap.String("kcv", hex.EncodeToString(k.KCV)))
	}
	return nil
}

// importDemoKeys imports the publicly known demo PIN and MAC keys that the
// simulators share (package devkeys) when the HSM lacks them.
func importDemoKeys(ctx context.Context, km hsm.KeyManager) ([]hsm.KeyInfo, error) {
	have, err := km.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing HSM keys: %w", err)
	}
	present := map[string]bool{}
	for _, k := range have {
		present[k.Label] = true
	}
	var made []hsm.KeyInfo
	for _, req := range devkeys.Imports() {
		if present[req.Label] {
			continue
		}
		info, err := km.ImportKey(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("importing demo key %s: %w", req.Label, err)
		}
		made = append(made, info)
	}
	return made, nil
}

// ensureDevMasterKey writes a random master key to path unless it exists.
func ensureDevMasterKey(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("checking master key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("creating data folder: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return false, fmt.Errorf("generating master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("writing master key file: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return false, fmt.Errorf("writing master key file: %w", err)
	}
	return true, nil
}

// securityKeys builds the per-listener MAC and PIN keys and the per-route
// zone PIN keys from the configuration.
func (s *Switch) securityKeys() {
	s.macKeys = map[string]pipeline.MACKey{}
	s.pinSrc = map[string]pipeline.PINSource{}
	s.pinDst = map[string]pipeline.PINDest{}
	for _, l := range s.cfg.Listeners {
		if l.MAC != nil {
			s.macKeys[l.Name] = pipeline.MACKey{Key: l.MAC.Key, Algorithm: hsm.MACAlgorithm(l.MAC.Algorithm)}
		}
		if l.PIN != nil {
			s.pinSrc[l.Name] = pipeline.PINSource{Key: l.PIN.Key, Format: hsm.PINFormat(l.PIN.Format), DUKPT: l.PIN.DUKPT}
		}
	}
	for _, r := range s.cfg.Routes {
		if r.PIN != nil {
			s.pinDst[r.Name] = pipeline.PINDest{Key: r.PIN.Key, Format: hsm.PINFormat(r.PIN.Format)}
		}
	}
}

// checkKeys refuses to start when a configured key label is missing from
// an HSM that can list its keys, or is of the wrong usage or cipher (a
// zone key of the wrong kind would decline every PIN transaction).
func (s *Switch) checkKeys(ctx context.Context) error {
	km, ok := s.hsm.(hsm.KeyManager)
	if !ok {
		return nil
	}
	infos, err := km.Keys(ctx)
	if err != nil {
		return fmt.Errorf("listing HSM keys: %w", err)
	}
	return checkKeyInfos(s.cfg, infos)
}
