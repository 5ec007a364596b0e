package payswitch

import (
	"fmt"
	"time"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
)

// OpenStore opens the store cfg configures (store.backend and its files or
// DSN) as instance cfg.InstanceName with lease store.lease: what switchd,
// switchd settle and tools reading a switch's journal use. cfg has its
// defaults applied (config.Default, config.Load).
func OpenStore(cfg config.Config) (store.Store, error) { return openStore(cfg, nil, nil) }

// openStore is OpenStore wrapped with fault when set (tests), telling
// onCommit (when set) of each journal commit (the commit-latency metric).
func openStore(cfg config.Config, fault store.Fault, onCommit func(time.Duration, int, error)) (store.Store, error) {
	inst := store.Instance{Name: cfg.InstanceName, Lease: cfg.Store.Lease}
	var st store.Store
	switch cfg.Store.Backend {
	case "embedded":
		es, err := embedded.Open(embedded.Options{JournalPath: cfg.Journal.Path, VaultPath: cfg.Vault.Path,
			Durable: cfg.Journal.Durable == nil || *cfg.Journal.Durable, Instance: inst, OnCommit: onCommit})
		if err != nil {
			return nil, err
		}
		st = es
	default:
		return nil, fmt.Errorf("store backend %q is not available in this build", cfg.Store.Backend)
	}
	return store.WithFault(st, fault), nil
}
