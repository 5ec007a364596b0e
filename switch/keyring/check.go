package keyring

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/pkcs11"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/switch/config"
)

// Need is one HSM key the configuration names and what it must be.
type Need struct {
	Where string // "route card-a pin.key"
	Label string
	Usage hsm.Usage
	fits  func(hsm.KeyInfo) error // algorithm check; nil: any
}

// data says whether the key lives on the data role's backend (the PAN
// keys) rather than the PIN/MAC role's.
func (n Need) data() bool { return n.Usage == hsm.UsagePANData || n.Usage == hsm.UsagePANHash }

// ForRole are the needs of one HSM role: data (PAN keys) or PIN/MAC.
func ForRole(needs []Need, data bool) []Need {
	var out []Need
	for _, n := range needs {
		if n.data() == data {
			out = append(out, n)
		}
	}
	return out
}

// Needs lists every key label the configuration names.
func Needs(cfg config.Config) []Need {
	needs := []Need{
		{Where: "tokens.data_key", Label: cfg.Tokens.DataKey, Usage: hsm.UsagePANData},
		{Where: "tokens.hash_key", Label: cfg.Tokens.HashKey, Usage: hsm.UsagePANHash},
	}
	pinFits := func(p config.PINKey) func(hsm.KeyInfo) error {
		pk := hsm.PINKey{Format: hsm.PINFormat(p.Format)}
		if p.DUKPT {
			pk.KSN = []byte{0}
		}
		return func(info hsm.KeyInfo) error { return hsm.CheckPINKey(info, pk) }
	}
	for _, l := range cfg.Listeners {
		if l.PIN != nil {
			usage := hsm.UsageTerminalPIN
			if l.PIN.DUKPT {
				usage = hsm.UsageBDK
			}
			needs = append(needs, Need{"listener " + l.Name + " pin.key", l.PIN.Key, usage, pinFits(*l.PIN)})
		}
		if l.MAC != nil {
			alg := hsm.MACAlgorithm(l.MAC.Algorithm)
			needs = append(needs, Need{"listener " + l.Name + " mac.key", l.MAC.Key, hsm.UsageMAC,
				func(info hsm.KeyInfo) error { return hsm.CheckMACKey(info, alg) }})
		}
	}
	for _, r := range cfg.Routes {
		if r.PIN != nil {
			needs = append(needs, Need{"route " + r.Name + " pin.key", r.PIN.Key, hsm.UsageZonePIN, pinFits(*r.PIN)})
			if r.PIN.ZMK != "" {
				needs = append(needs, Need{"route " + r.Name + " pin.zmk", r.PIN.ZMK, hsm.UsageKEK, nil})
			}
		}
	}
	return needs
}

// checkKeyInfos reports each key of needs the HSM lacks or holds with the
// wrong usage or cipher (the current version counts).
func checkKeyInfos(needs []Need, infos []hsm.KeyInfo) error {
	current := map[string]hsm.KeyInfo{}
	for _, k := range infos {
		if k.Version >= current[k.Label].Version {
			current[k.Label] = k
		}
	}
	var errs []error
	for _, n := range needs {
		info, ok := current[n.Label]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: HSM has no key %q", n.Where, n.Label))
		case info.Usage != n.Usage:
			errs = append(errs, fmt.Errorf("%s: HSM key %q is a %s key, want %s", n.Where, n.Label, info.Usage, n.Usage))
		case n.fits != nil:
			if err := n.fits(info); err != nil {
				errs = append(errs, fmt.Errorf("%s: HSM key %q: %w", n.Where, n.Label, err))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckConfigured is switchd -t's look into the HSM: it opens the configured
// backend without changing it (no key store or master key is created, no
// key imported) and checks every configured label with checkKeyInfos. The
// keys switchd would create at start (the demo keys in development mode,
// the PAN keys with generate_dev_master_key) count as present; a missing
// key store is an empty one.
func CheckConfigured(ctx context.Context, cfg config.Config, getenv func(string) string) error {
	dev, _ := cfg.DevelopmentMode(getenv)
	var infos []hsm.KeyInfo
	switch cfg.HSM.Backend {
	case "software":
		if _, serr := os.Stat(cfg.HSM.KeyStore); errors.Is(serr, os.ErrNotExist) {
			break // switchd starts an empty store: only the keys it creates exist
		} else if serr != nil {
			return fmt.Errorf("hsm.key_store: %w", serr)
		}
		file := cfg.HSM.MasterKeyFile
		if getenv(cfg.HSM.MasterKeyEnv) != "" {
			file = ""
		}
		mk, merr := software.LoadMasterKey(file, cfg.HSM.MasterKeyEnv)
		if merr != nil {
			return fmt.Errorf("loading the HSM master key: %w", merr)
		}
		h, oerr := software.Open(software.Options{KeyStore: cfg.HSM.KeyStore, MasterKey: mk}, zap.NewNop())
		clear(mk)
		if oerr != nil {
			return fmt.Errorf("opening software HSM: %w", oerr)
		}
		defer h.Close()
		var err error
		if infos, err = h.Keys(ctx); err != nil {
			return fmt.Errorf("listing HSM keys: %w", err)
		}
	case "pkcs11":
		h, oerr := pkcs11.Open(pkcs11.Options{Library: cfg.HSM.PKCS11.Library, TokenLabel: cfg.HSM.PKCS11.TokenLabel,
			PIN: getenv(cfg.HSM.PKCS11.PINEnv), Sessions: 1}, zap.NewNop())
		if oerr != nil {
			return fmt.Errorf("opening pkcs11 HSM: %w", oerr)
		}
		defer h.Close()
		var err error
		if infos, err = h.Keys(ctx); err != nil {
			return fmt.Errorf("listing HSM keys: %w", err)
		}
	default:
		return fmt.Errorf("unknown HSM backend %q", cfg.HSM.Backend)
	}
	infos = append(infos, keysCreatedAtStart(cfg, dev, infos)...)
	needs := Needs(cfg)
	if cfg.HSM.PINMACBackend() != cfg.HSM.Backend {
		needs = ForRole(needs, true)
	}
	return checkKeyInfos(needs, infos)
}

// keysCreatedAtStart are the keys Open would add: the demo keys in
// development mode and the PAN keys with generate_dev_master_key.
func keysCreatedAtStart(cfg config.Config, dev bool, have []hsm.KeyInfo) []hsm.KeyInfo {
	present := map[string]bool{}
	for _, k := range have {
		present[k.Label] = true
	}
	var add []hsm.KeyInfo
	if dev {
		for _, req := range devkeys.Imports() {
			if !present[req.Label] {
				add = append(add, hsm.KeyInfo{Label: req.Label, Version: 1, Usage: req.Usage, Algorithm: req.Algorithm})
			}
		}
	}
	if cfg.HSM.Backend == "software" && *cfg.HSM.GenerateDevMasterKey {
		for _, k := range []hsm.KeyInfo{{Label: hsm.LabelPANData, Usage: hsm.UsagePANData, Algorithm: hsm.AES},
			{Label: hsm.LabelPANHash, Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC}} {
			if !present[k.Label] {
				k.Version = 1
				add = append(add, k)
			}
		}
	}
	return add
}
