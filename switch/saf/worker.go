// Package saf is the store-and-forward worker: per-route bounded senders of queued give-backs with back-off, the STANs they keep owned, and the operators' retry and resolve.
package saf

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/internal/cpurole"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
)

// Config is what the worker reads of the switch's configuration (none of
// it changes at a reload).
type Config struct {
	Interval        time.Duration // journal.saf_interval: how often a route looks for due items
	WorkersPerRoute int           // journal.saf_workers_per_route: attempts at once on one route
	RetryMax        time.Duration // journal.retry_max: the longest back-off
	ReviewExpiry    time.Duration // journal.reversal_expiry: a retried review item's new expiry
	Lease           time.Duration // store.lease
}

// ConfigOf is the worker's part of cfg.
func ConfigOf(cfg config.Config) Config {
	return Config{Interval: cfg.Journal.SAFInterval, WorkersPerRoute: cfg.Journal.SAFWorkersPerRoute,
		RetryMax: cfg.Journal.RetryMax, ReviewExpiry: cfg.Journal.ReversalExpiry, Lease: cfg.Store.Lease}
}

// Store is the part of the store the worker uses.
type Store interface {
	Queue() store.Queue
	SAFDesk() store.SAFDesk
	Lookup() store.Lookup
}

// STANs is a route link's STAN pool: a held STAN is never handed out to a
// new request until it is released (upstream.Link).
type STANs interface {
	Hold(stan string)
	Release(stan string)
}

// Routes are the issuer routes in force (a reload swaps what they answer).
type Routes interface {
	// Route is the route a give-back goes by (pipeline.Routes).
	Route(name string) (pipeline.IssuerRoute, bool)
	// STANs is the STAN pool of route's link.
	STANs(name string) (STANs, bool)
	// Timeout is route's issuer timeout (0 when unknown).
	Timeout(name string) time.Duration
}

// Sender sends one queued give-back down the queued stage list
// (pipeline.Dispatcher).
type Sender interface {
	Handle(ctx context.Context, t *pipeline.Txn) error
}

// PANs decrypts the card number a give-back carries (the data-role HSM).
type PANs interface {
	DecryptPAN(ctx context.Context, enc hsm.EncryptedPAN) (string, error)
}

// Deps are what the worker is built on.
type Deps struct {
	Config Config
	Log    *zap.Logger
	Store  Store
	Routes Routes
	Send   Sender
	PANs   PANs
}

// Worker runs one store-and-forward sender per route, so a silent issuer
// delays only its own give-backs. Items survive restarts in the store;
// the STANs they will repeat stay owned by their routes.
type Worker struct {
	cfg     Config
	log     *zap.Logger
	store   Store
	routes  Routes
	send    Sender
	pans    PANs
	metrics *metrics
	held    holds          // the STANs this instance holds for give-backs (stans.go)
	done    sync.WaitGroup // the running senders
}

// New builds the worker and registers its metrics on reg.
func New(d Deps, reg prometheus.Registerer) *Worker {
	return &Worker{cfg: d.Config, log: d.Log, store: d.Store, routes: d.Routes, send: d.Send, pans: d.PANs,
		metrics: newMetrics(reg, d.Store.Queue(), d.Store.SAFDesk())}
}

// Start runs a sender for each of routes, and the release of STANs held
// for give-backs another instance settled, until ctx ends (Wait).
func (w *Worker) Start(ctx context.Context, routes []string) {
	for _, name := range routes {
		w.AddRoute(ctx, name)
	}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		cpurole.Set(cpurole.SAF)
		w.runReleases(ctx)
	}()
}

// AddRoute runs the sender of route (a reload added it) until ctx ends.
func (w *Worker) AddRoute(ctx context.Context, route string) {
	w.metrics.series(route)
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		cpurole.Set(cpurole.SAF)
		w.runRoute(ctx, route)
	}()
}

// Wait returns once every sender stopped (after Start's ctx ended).
func (w *Worker) Wait() { w.done.Wait() }

// HoldPending keeps the STAN of every unsettled give-back (pending, or in
// manual review: an operator may send it again) owned by its route (at
// start, before any request is sent).
func (w *Worker) HoldPending(ctx context.Context) error {
	items, err := w.unsettled(ctx)
	if err != nil {
		return err
	}
	for _, it := range items {
		w.HoldSTAN(it)
	}
	return nil
}

// unsettled lists the give-backs whose STAN their route must keep: pending
// ones and those in manual review (an operator may send them again).
func (w *Worker) unsettled(ctx context.Context) ([]store.SAFItem, error) {
	var all []store.SAFItem
	for _, state := range []string{store.SAFPending, store.SAFReview} {
		items, err := w.store.Queue().List(ctx, state)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	return all, nil
}

// runRoute sends route's due give-backs, at most WorkersPerRoute at once:
// 0420 first, 0421 repeats (a refund by reference repeats as 0200) with
// doubling back-off counted from the end of each attempt, until the issuer
// answers with one of the route's settle codes, or manual review once the
// item expires. Items are claimed from the store a batch of
// WorkersPerRoute at a time, with a lease of store.lease plus the route's
// timeout (claimLease): this instance's own items, and those of an
// instance whose lease lapsed.
func (w *Worker) runRoute(ctx context.Context, route string) {
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	batch := w.cfg.WorkersPerRoute
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A full batch may leave more due: claim again without waiting.
		for ctx.Err() == nil {
			items, err := w.store.Queue().Claim(ctx, route, time.Now(), w.claimLease(route), batch)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("claiming SAF items", zap.String("route", route), zap.Error(err))
				}
				break
			}
			var wg sync.WaitGroup
			for _, it := range items {
				wg.Go(func() { w.attempt(ctx, it) })
			}
			wg.Wait()
			if len(items) < batch {
				break
			}
		}
	}
}

// claimLease is how long a claimed SAF item stays this instance's:
// store.lease plus route's timeout, so one attempt ends inside its claim.
func (w *Worker) claimLease(route string) time.Duration {
	return w.cfg.Lease + w.routes.Timeout(route)
}

// attempt sends one give-back and records the result: done (its STAN let
// go), a repeat after back-off, or manual review once it expired.
func (w *Worker) attempt(ctx context.Context, it store.SAFItem) {
	log := w.log.With(zap.Int64("txn", it.TxnID), zap.String("route", it.Route), zap.String("kind", it.Kind), zap.Int("attempt", it.Attempts+1))
	if now := time.Now(); now.After(it.ExpiresAt) {
		w.metrics.review.Inc()
		w.metrics.attempts.WithLabelValues(it.Route, "review").Inc()
		log.Error("reversal expired unacknowledged: MANUAL REVIEW", zap.Int64("amount", it.Amount))
		// Its STAN stays owned: an operator may retry it (the same DE 11,
		// DE 7 and DE 37); it is let go when the item is resolved.
		_ = w.store.Queue().Result(ctx, it, store.SAFReview, now, "expired unacknowledged")
		return
	}
	err := w.sendReversal(ctx, &it)
	end := time.Now()
	if err == nil {
		w.metrics.attempts.WithLabelValues(it.Route, "acknowledged").Inc()
		log.Info("reversal acknowledged", zap.Int64("amount", it.Amount))
		if rerr := w.store.Queue().Result(ctx, it, store.SAFDone, end, ""); rerr != nil {
			log.Error("recording acknowledged reversal", zap.Error(rerr))
			return
		}
		w.releaseSTAN(it.ID)
		return
	}
	backoff := min(time.Second<<min(it.Attempts, 16), w.cfg.RetryMax)
	w.metrics.attempts.WithLabelValues(it.Route, "retry").Inc()
	if ctx.Err() != nil {
		// The switch is stopping, not the issuer failing: no warning. The
		// attempt may have left, so it is recorded all the same (the next
		// one, after the restart, is a repeat), on a context of its own.
		log.Info("reversal attempt cut short by shutdown, will repeat", zap.String("error", pan.Scrub(err.Error())))
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = w.store.Queue().Result(rctx, it, store.SAFPending, end.Add(backoff), "cut short by shutdown")
		return
	}
	log.Warn("reversal not acknowledged, will repeat", zap.Duration("in", backoff), zap.String("error", pan.Scrub(err.Error())))
	_ = w.store.Queue().Result(ctx, it, store.SAFPending, end.Add(backoff), pan.Scrub(err.Error()))
}

// RetryNow is an operator's "retry now" (admin API, console): the item
// keeps the STAN it held through manual review.
func (w *Worker) RetryNow(ctx context.Context, id int64, who string) (store.SAFItem, error) {
	return w.store.SAFDesk().RetryNow(ctx, id, who, w.cfg.ReviewExpiry)
}

// Resolve is an operator closing an item in review (settled outside the
// switch): its STAN is free again.
func (w *Worker) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	it, err := w.store.SAFDesk().Resolve(ctx, id, who, reason)
	if err == nil {
		w.releaseSTAN(it.ID)
	}
	return it, err
}

// sendReversal sends one attempt and returns nil when the issuer settled
// it: the response MTI of the request with DE 11 (and DE 7 / DE 37 where
// present) of this give-back, and a DE 39 among the route's settle codes.
// It goes down the queued give-back stage list, the issuer leg every
// request to an issuer takes: the first attempt's DE 11 and DE 7 are
// journaled before it leaves and fixed for every repeat.
func (w *Worker) sendReversal(ctx context.Context, it *store.SAFItem) error {
	txn, err := w.store.Lookup().Get(ctx, it.TxnID)
	if err != nil {
		return fmt.Errorf("reading transaction: %w", err)
	}
	orig := txn
	if txn.OriginalID > 0 {
		// A queued merchant cancel: the sale it gives back carries the PAN.
		if orig, err = w.store.Lookup().Get(ctx, txn.OriginalID); err != nil {
			return fmt.Errorf("reading original: %w", err)
		}
	}
	rt, ok := w.routes.Route(it.Route)
	if !ok {
		return fmt.Errorf("route %s is not configured", it.Route)
	}
	realPAN, err := w.pans.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: orig.PANKey, Version: orig.PANKeyVersion}, Ciphertext: orig.PANCiphertext})
	if err != nil {
		return fmt.Errorf("decrypting PAN: %w", err)
	}
	mti := specs.MTIReversalAdvice
	if it.Attempts > 0 {
		mti = specs.MTIReversalRepeat
	}
	req, err := pipeline.ReversalMessage(rt.Link, orig, realPAN, it.Kind, mti, it.Amount, time.Now())
	if err != nil {
		return err
	}
	t := &pipeline.Txn{QueuedID: it.ID, Route: it.Route, Issuer: rt, IssuerRequest: req}
	t.MTI, _ = req.GetMTI()
	if it.STAN != "" {
		t.Repeat = &pipeline.IssuerIDs{STAN: it.STAN, TxTime: it.TxTime}
	}
	err = w.send.Handle(ctx, t)
	if it.STAN == "" && t.RequestRecorded {
		// The first attempt's DE 11 is fixed, and held on the route's
		// link (pipeline.RecordQueued) until the item is settled.
		it.STAN, _ = req.GetString(specs.STAN)
		it.TxTime, _ = req.GetString(specs.TransmissionDateTime)
		w.held.add(*it)
	}
	return err
}
