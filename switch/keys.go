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
	"github.com/kbpay/switch/hsm/payshield"
	"github.com/kbpay/switch/hsm/pkcs11"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
)

// hsmBackends is the registry of the HSM backends switchd can open.
func hsmBackends() *hsm.Registry {
	r := hsm.NewRegistry()
	software.Register(r)
	pkcs11.Register(r)
	payshield.Register(r)
	return r
}

// hsmOptions builds each backend's typed options from the configuration,
// on demand: the software master key is read (and, in development mode,
// generated) only when that backend is opened.
func hsmOptions(cfg config.Config, dev bool, reason string, log *zap.Logger) map[string]func() (any, error) {
	return map[string]func() (any, error){
		software.Name: func() (any, error) {
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
			return software.Options{KeyStore: cfg.HSM.KeyStore, MasterKey: mk}, nil
		},
		pkcs11.Name: func() (any, error) {
			return pkcs11.Options{
				Library:    cfg.HSM.PKCS11.Library,
				TokenLabel: cfg.HSM.PKCS11.TokenLabel,
				PIN:        os.Getenv(cfg.HSM.PKCS11.PINEnv),
				Sessions:   cfg.HSM.PKCS11.Sessions,
			}, nil
		},
		payshield.Name: func() (any, error) {
			p := cfg.HSM.Payshield
			return payshield.Options{Addr: p.Addr, HeaderLength: p.HeaderLength, Connections: p.Connections,
				Pipeline: p.Pipeline, Timeout: p.Timeout, KeyStore: p.KeyStore}, nil
		},
	}
}

// openHSMs opens the backend of each role (one when the configuration
// names the same for both) and returns them instrumented with metrics in
// s.hsm (data) and s.pinmac (PIN/MAC); s.hsms holds the opened backends
// for key checks and Close. In development mode (see
// config.DevelopmentMode) a missing software master key is generated into
// its file and the public demo PIN and MAC keys are imported into the
// PIN/MAC backend: the development path, announced loudly. Outside it
// neither happens, whatever labels the configuration names.
// generate_dev_master_key also creates the random PAN data and hash keys
// when they are missing.
func (s *Switch) openHSMs(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	dev, reason := cfg.DevelopmentMode(os.Getenv)
	reg := hsmBackends()
	opts := hsmOptions(cfg, dev, reason, log)
	open := func(name string, role hsm.Role) (hsm.HSM, error) {
		if err := reg.Check(name, role); err != nil {
			return nil, err
		}
		o, err := opts[name]()
		if err != nil {
			return nil, err
		}
		if sw, ok := o.(software.Options); ok {
			defer clear(sw.MasterKey)
		}
		return reg.Open(ctx, name, role, o, hsm.Deps{Log: log.With(zap.String("hsm", name)), Metrics: s.reg})
	}
	dataName, pinName := cfg.HSM.Backend, cfg.HSM.PINMACBackend()
	var err error
	if dataName == pinName {
		if s.hsms.Data, err = open(dataName, hsm.RoleData|hsm.RolePINMAC); err != nil {
			return err
		}
		s.hsms.PINMAC = s.hsms.Data
	} else {
		if s.hsms.Data, err = open(dataName, hsm.RoleData); err != nil {
			return err
		}
		if s.hsms.PINMAC, err = open(pinName, hsm.RolePINMAC); err != nil {
			return err
		}
		log.Info("HSM roles split", zap.String("data", dataName), zap.String("pin_mac", pinName))
	}
	if err := ensureDevKeys(ctx, s.hsms, *cfg.HSM.GenerateDevMasterKey, dev, log); err != nil {
		return err
	}
	m := hsm.NewMetrics(s.reg)
	s.hsm = hsm.Instrument(s.hsms.Data, dataName, m)
	s.pinmac = s.hsm
	if pinName != dataName {
		s.pinmac = hsm.Instrument(s.hsms.PINMAC, pinName, m)
	}
	return nil
}

// devKeyMaker is a backend that can create the random PAN keys itself
// (the software backend).
type devKeyMaker interface {
	EnsureDevKeys(ctx context.Context) ([]hsm.KeyInfo, error)
}

// ensureDevKeys creates the missing random PAN keys on the data backend
// when generate is set and it can, and, in development mode only, imports
// the public demo keys into the PIN/MAC backend.
func ensureDevKeys(ctx context.Context, roles hsm.Roles, generate, dev bool, log *zap.Logger) error {
	if mk, ok := roles.Data.(devKeyMaker); ok && generate {
		// EnsureDevKeys logs what it creates; the demo imports are ours.
		if _, err := mk.EnsureDevKeys(ctx); err != nil {
			return fmt.Errorf("creating development keys: %w", err)
		}
	}
	km, ok := roles.PINMAC.(hsm.KeyManager)
	if !dev || !ok {
		return nil
	}
	demo, err := importDemoKeys(ctx, km)
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
		if errors.Is(err, hsm.ErrClearKeyRefused) {
			return nil, fmt.Errorf("the PIN/MAC HSM lacks demo key %s and refuses clear keys: provision its key store with `hsmsim -demo-keys <file>`: %w", req.Label, err)
		}
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

// securityKeys builds the per-route zone PIN keys from the configuration
// (a listener's keys are its policy: listenerPolicy).
func (s *Switch) securityKeys() {
	s.pinDst = map[string]pipeline.PINDest{}
	for _, r := range s.cfg.Routes {
		if r.PIN != nil {
			s.pinDst[r.Name] = pipeline.PINDest{Key: r.PIN.Key, Format: hsm.PINFormat(r.PIN.Format)}
		}
	}
}

// checkKeys refuses to start when a configured key label is missing from
// the backend of its role, when that backend can list its keys, or is of
// the wrong usage or cipher there (a zone key of the wrong kind would
// decline every PIN transaction).
func (s *Switch) checkKeys(ctx context.Context) error {
	needs := keyNeeds(s.cfg)
	return errors.Join(missingKeys(ctx, s.hsms.Data, roleNeeds(needs, true)), missingKeys(ctx, s.hsms.PINMAC, roleNeeds(needs, false)))
}

// missingKeys checks needs against the keys h holds; nil when h cannot
// list its keys.
func missingKeys(ctx context.Context, h hsm.HSM, needs []keyNeed) error {
	km, ok := h.(hsm.KeyManager)
	if !ok {
		return nil
	}
	infos, err := km.Keys(ctx)
	if err != nil {
		return fmt.Errorf("listing HSM keys: %w", err)
	}
	return checkKeyInfos(needs, infos)
}
