// Package payswitch wires the switch daemon: it builds, starts and drains
// the terminal/VAN listeners, the transaction pipeline, the issuer routes
// and links and the admin endpoint, each a package of its own.
package payswitch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/admin"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/datadir"
	"github.com/kbpay/switch/switch/drain"
	"github.com/kbpay/switch/switch/journalgate"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/lifecycle"
	"github.com/kbpay/switch/switch/opsmetrics"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/reconfig"
	"github.com/kbpay/switch/switch/recovery"
	"github.com/kbpay/switch/switch/rrn"
	"github.com/kbpay/switch/switch/saf"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/trafficmetrics"
	"github.com/kbpay/switch/switch/tsp"
	"github.com/kbpay/switch/switch/upstream"
)

// Switch is one running switchd instance.
type Switch struct {
	cfg      config.Config
	log      *zap.Logger
	traffic  *trafficmetrics.Series // requests, connections, refusals by listener
	ops      *opsmetrics.Ops        // build, journal commits, reloads
	ctx      context.Context
	cancel   context.CancelFunc
	dispatch *pipeline.Dispatcher // the stage lists (dispatch.go)

	running     *reconfig.Running // routes, links, BIN table, zone keys in force; reloads (reload.go)
	linkMetrics *upstream.Metrics
	instance    int // this instance's number: the STAN partition of every link (store.stan_partitions)

	hsm    hsm.HSM   // data role (PANs at rest), instrumented
	pinmac hsm.HSM   // PIN/MAC role, instrumented; == hsm when one backend serves both
	hsms   hsm.Roles // the opened backends, for key checks and Close
	tokens *tsp.Service

	store store.Store
	// holdGroups applies journal.group_wait and group_size on a reload
	// (nil: the store ignores them).
	holdGroups func(wait time.Duration, size int)
	rrns       *rrn.Sequence
	ledger     pipeline.Ledger
	guard      *journalgate.Guard
	saf        *saf.Worker      // the store-and-forward senders and operator actions
	recovery   *recovery.Keeper // recovery at start, in-flight sweep, take-over, journal keeper

	listeners terminalserver.Set // the listeners in force (listeners.go)
	admin     *admin.Server
	txns      drain.Tracker
	dataLock  *datadir.Lock // held from New until Shutdown

	accepting    atomic.Bool // every listener bound (Start) and not yet draining: /readyz
	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds a switch from a validated configuration. log and reg are the
// process's logger and metrics registry (tests pass their own). It first
// locks the data folder (and the journal's and vault's folders): a folder
// in use by another switchd fails with datadir.ErrInUse before any store is
// opened. New builds the components through one cleanup list
// (lifecycle.Cleanup): whatever it opened before failing is closed again,
// newest first, and the metrics it registered on reg are unregistered.
func New(cfg config.Config, log *zap.Logger, reg *prometheus.Registry, opts ...Option) (_ *Switch, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.CheckProduction(os.Getenv); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := lifecycle.New(reg, o.startFault)
	treg := start.Registerer() // what New registers, Undo unregisters
	s := &Switch{
		cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		traffic: trafficmetrics.New(treg, cfg), ops: opsmetrics.New(treg),
	}
	defer func() {
		if err != nil {
			cancel()
			if uerr := start.Undo(); uerr != nil {
				log.Warn("closing what a failed start opened", zap.Error(uerr))
			}
		}
	}()
	if err = start.Step("lock the data folder"); err != nil {
		return nil, err
	}
	if s.dataLock, err = datadir.Acquire(cfg.DataDir, filepath.Dir(cfg.Journal.Path), filepath.Dir(cfg.Vault.Path)); err != nil {
		return nil, err
	}
	start.Opened("data folder lock", s.dataLock.Release)
	if err = start.Step("build the issuer links"); err != nil {
		return nil, err
	}
	s.linkMetrics = upstream.NewMetrics(treg)
	treg.MustRegister(s.listeners.SignedOnCollector())
	links := map[string]*upstream.Link{}
	for _, rc := range cfg.Routes {
		l, err := s.newLink(rc)
		if err != nil {
			return nil, err
		}
		start.Opened("route "+rc.Name, func() error { return l.Close(context.Background()) })
		links[rc.Name] = l
	}
	if s.running, err = reconfig.New(reconfig.Deps{Ctx: ctx, Config: cfg, File: o.configFile, Log: log,
		Listeners: &s.listeners, Switch: reloadHooks{s}, Series: s.traffic, Ops: s.ops}, links); err != nil {
		return nil, err
	}
	if err = start.Step("open the store"); err != nil {
		return nil, err
	}
	opened, err := storage.OpenWith(cfg, o.storeFault, s.ops, s.log)
	if err != nil {
		return nil, err
	}
	s.store, s.holdGroups = opened.Store, opened.HoldGroups
	instanceNumber := opened.Number
	start.Opened("store", s.store.Close)
	if err = start.Step("open the HSMs and the token service"); err != nil {
		return nil, err
	}
	if err := s.openTokenService(ctx, start); err != nil {
		return nil, err
	}
	if err = start.Step("number RRNs"); err != nil {
		return nil, err
	}
	if s.rrns, err = rrn.New(s.store.Instances(), instanceNumber); err != nil {
		return nil, err
	}
	s.instance = instanceNumber // links a reload adds are partitioned alike (newLink)
	for _, l := range s.running.Links() {
		l.PartitionSTANs(instanceNumber, cfg.Store.STANPartitions)
	}
	s.log.Info("store open", storage.LogFields(cfg, instanceNumber)...)
	if err = start.Step("check the HSM keys"); err != nil {
		return nil, err
	}
	if err := keyring.Check(ctx, cfg, s.hsms); err != nil {
		return nil, err
	}
	s.ledger = pipeline.LedgerOn(s.store)
	s.ledger.Cipher, s.ledger.DataKey = s.hsm, cfg.Tokens.DataKey
	s.ledger.ReversalExpiry = cfg.Journal.ReversalExpiry
	s.ledger.Routes = s.running
	s.guard = journalgate.New(log, treg)
	s.ledger.Guard = s.guard
	s.ledger.HoldQueued = func(it store.SAFItem) { s.saf.HoldSTAN(it) } // s.saf is built on the stage lists
	if s.dispatch, err = s.newDispatcher(treg); err != nil {
		return nil, fmt.Errorf("building the stage lists: %w", err)
	}
	s.saf = saf.New(saf.Deps{Config: saf.ConfigOf(cfg), Log: log, Store: s.store, Routes: s.running, Send: s.dispatch, PANs: s.hsm}, treg)
	s.recovery = recovery.New(recovery.Deps{Log: log, Store: s.store, Ledger: s.ledger, Gate: s.guard, Routes: s.running.RouteList,
		AdoptKeys: func(ctx context.Context) error { return upstream.AdoptRecordedKeys(ctx, s.running.Links()) }})
	if err = start.Step("build the listeners"); err != nil {
		return nil, err
	}
	var listeners []*terminalserver.Listener
	for _, lc := range cfg.Listeners {
		l, err := s.newListener(lc)
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
	}
	s.listeners.Replace(listeners)
	if err = start.Step("build the admin endpoint"); err != nil {
		return nil, err
	}
	if s.admin, err = admin.New(adminView{s}, admin.Deps{Config: cfg, Log: log, Metrics: reg, Store: s.store, Tokens: s.tokens}); err != nil {
		return nil, err
	}
	admin.LogMode(cfg, log)
	return s, nil
}

// openTokenService opens the HSM and the token service over the store's
// vault; any failure stops the switch from starting half-configured (New
// closes what was opened when it fails).
func (s *Switch) openTokenService(ctx context.Context, start *lifecycle.Cleanup) (err error) {
	h, err := keyring.Open(ctx, s.cfg, s.log, start.Registerer())
	if err != nil {
		return err
	}
	start.Opened("HSMs", h.Roles.Close)
	s.hsms, s.hsm, s.pinmac = h.Roles, h.Data, h.PINMAC
	s.tokens, err = tsp.New(tsp.Config{BIN: s.cfg.Tokens.BIN, OneTimeTTL: s.cfg.Tokens.OneTimeTTL,
		DataKey: s.cfg.Tokens.DataKey, HashKey: s.cfg.Tokens.HashKey}, s.store.Tokens(), s.hsm, s.log)
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	return nil
}

// Start connects the issuer links (an issuer that is down keeps being
// retried in the background), then opens the admin endpoint and listeners.
func (s *Switch) Start(ctx context.Context) error {
	// Before any link sends (even a sign-on): the STANs pending give-backs
	// will repeat are not to be handed out.
	if err := s.saf.HoldPending(ctx); err != nil {
		return fmt.Errorf("reading the store-and-forward queue: %w", err)
	}
	for _, l := range s.running.Links() {
		if err := l.Start(ctx); err != nil {
			return fmt.Errorf("starting route %s: %w", l.Name(), err)
		}
	}
	if err := s.recovery.AtStart(ctx); err != nil {
		return fmt.Errorf("recovering in-flight transactions: %w", err)
	}
	s.saf.Start(s.ctx, slices.Collect(maps.Keys(s.running.Links())))
	s.recovery.Start(s.ctx)
	if err := s.admin.Listen(); err != nil {
		return err
	}
	for _, l := range s.listeners.List() {
		if err := l.Listen(); err != nil {
			s.stopListeners()
			return err
		}
	}
	s.accepting.Store(true)
	s.log.Info("switch started", zap.Int("listeners", len(s.listeners.List())), zap.Int("routes", len(s.running.Links())))
	return nil
}

// AdminAddr returns the bound admin address.
func (s *Switch) AdminAddr() string { return s.admin.Addr() }

// Shutdown drains: it stops accepting, waits (up to ctx) for in-flight
// transactions to be answered, then signs off the signed-on VAN links
// (0800 DE 70 002), closes terminal connections, stops the
// SAF worker, signs off the issuer links and closes the stores. Calling it
// again returns the first result.
func (s *Switch) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Switch) shutdown(ctx context.Context) error {
	s.accepting.Store(false)
	s.txns.Drain()
	s.stopListeners()
	drained := s.txns.Wait(ctx)
	for _, l := range s.listeners.All() { // removed ones still winding down included
		l.SignOffLinks(ctx)
		l.CloseAll(ctx)
	}
	s.listeners.WaitRetired(ctx)
	s.cancel()
	s.saf.Wait()
	s.recovery.Wait()
	errs := s.running.CloseLinks(ctx)
	errs = append(errs, s.admin.Close(ctx), s.store.Close(), s.hsms.Close())
	errs = append(errs, s.dataLock.Release()) // after the stores are closed
	if !drained {
		errs = append(errs, errors.New("drain timed out with transactions in flight"))
	}
	s.log.Info("switch stopped", zap.Bool("drained", drained))
	return errors.Join(errs...)
}
