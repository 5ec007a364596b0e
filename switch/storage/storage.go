// Package storage opens the store the configuration names: embedded files or PostgreSQL.
package storage

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
	"github.com/kbpay/switch/switch/store/postgres"
)

// Open opens the store cfg configures (store.backend and its files or
// DSN) as instance cfg.InstanceName with lease store.lease: what switchd,
// switchd settle and tools reading a switch's journal use. cfg has its
// defaults applied (config.Default, config.Load).
func Open(cfg config.Config) (store.Store, error) {
	o, err := OpenWith(cfg, nil, nil, nil)
	return o.Store, err
}

// CommitObserver is told of the journal's group commits and of the
// groups the embedded journal held for more writes (journal.group_wait):
// the switch's journal metrics (opsmetrics.Ops). Both are called from the
// stores' committers: safe for concurrent use, never blocking.
type CommitObserver interface {
	ObserveCommit(d time.Duration, writes int, err error)
	ObserveHold(d time.Duration, gained int)
}

// Opened is the store OpenWith opened, with what the switch needs of it
// besides the store.Store.
type Opened struct {
	Store store.Store
	// Number is the instance number: cfg.InstanceID, or the one the
	// shared store keeps for cfg.InstanceName when the configuration
	// leaves it out (config.InstanceIDAuto).
	Number int
	// HoldGroups applies journal.group_wait and journal.group_size while
	// the store runs (a configuration reload); nil for PostgreSQL, which
	// ignores both (its committers group their own way).
	HoldGroups func(wait time.Duration, size int)
}

// OpenWith is Open wrapped with fault when set (tests), telling obs (when
// set) of each journal commit and held group, and log (when set) of
// failures the store works around.
func OpenWith(cfg config.Config, fault store.Fault, obs CommitObserver, log *zap.Logger) (Opened, error) {
	var onCommit func(time.Duration, int, error)
	var onHold func(time.Duration, int)
	if obs != nil {
		onCommit, onHold = obs.ObserveCommit, obs.ObserveHold
	}
	inst := store.Instance{Name: cfg.InstanceName, Lease: cfg.Store.Lease}
	o := Opened{Number: cfg.InstanceID}
	var st store.Store
	switch cfg.Store.Backend {
	case "embedded":
		es, err := embedded.Open(embedded.Options{JournalPath: cfg.Journal.Path, VaultPath: cfg.Vault.Path,
			Durable: cfg.Journal.Durable == nil || *cfg.Journal.Durable, Instance: inst, OnCommit: onCommit, OnHold: onHold, Logger: log,
			GroupWait: cfg.Journal.HeldGroupWait(), GroupSize: cfg.Journal.GroupSize})
		if err != nil {
			return Opened{}, err
		}
		st, o.HoldGroups = es, es.HoldGroups
	case "postgres":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ps, err := postgres.Open(ctx, postgres.Options{DSN: cfg.Store.ResolvedDSN(os.Getenv), Instance: inst,
			MaxConns: int32(cfg.Store.MaxConns), StatementTimeout: cfg.Store.StatementTimeout, MigrateAtStart: cfg.Store.MigrateAtStart,
			OnCommit: onCommit})
		if err != nil {
			return Opened{}, err
		}
		if cfg.InstanceIDFromStore() {
			if o.Number, err = ps.InstanceNumber(ctx, cfg.InstanceName, time.Now()); err != nil {
				_ = ps.Close()
				return Opened{}, err
			}
		}
		st = ps
	default:
		return Opened{}, fmt.Errorf("store backend %q is not available in this build", cfg.Store.Backend)
	}
	o.Store = store.WithFault(st, fault)
	return o, nil
}

// LogFields describe the store for the start-up log line; the DSN's
// password is masked.
func LogFields(cfg config.Config, number int) []zap.Field {
	fs := []zap.Field{zap.String("backend", cfg.Store.Backend), zap.String("instance", cfg.InstanceName),
		zap.Int("instance_number", number), zap.Duration("lease", cfg.Store.Lease)}
	if cfg.Store.Backend == "postgres" {
		fs = append(fs, zap.String("dsn", postgres.MaskDSN(cfg.Store.ResolvedDSN(os.Getenv))))
	}
	return fs
}
