// Package recovery keeps the journal true across crashes and instances: recovery at start of rows left forwarded, the in-flight sweep, take-over of lapsed instances, and the journal keeper that heartbeats, probes and sweeps.
package recovery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
)

// Store is the part of the store recovery uses.
type Store interface {
	Sales() store.Sales
	Lookup() store.Lookup
	Instances() store.Instances
	Instance() store.Instance
}

// Ledger settles what recovery finds (pipeline.Ledger).
type Ledger interface {
	// RecoverCancel settles a cancel or refund left in flight.
	RecoverCancel(ctx context.Context, c store.Txn) (queued bool, err error)
	// SettleHeld journals an outcome (a sale timed out and its reversal
	// queued, or one the journal refused earlier).
	SettleHeld(ctx context.Context, h *pipeline.Held) error
}

// Gate is the journal gate (journalgate.Guard): closed while the journal
// refuses writes, holding the outcomes it refused, and knowing which rows
// this process still works on.
type Gate interface {
	Failed(err error)
	Hold(h *pipeline.Held, err error)
	Busy(id int64) bool
	Status() (healthy bool, reason string)
	Held() ([]*pipeline.Held, uint64)
	Settled(id int64)
	Recovered(failures uint64) bool
}

// Deps are what recovery is built on.
type Deps struct {
	Log    *zap.Logger
	Store  Store
	Ledger Ledger
	Gate   Gate
	// Routes are the routes in force and those a reload removed (their
	// timeouts bound how long a row may stay forwarded).
	Routes func() []config.IssuerRoute
	// AdoptKeys imports the issuer key changes other instances recorded
	// in the store (upstream.AdoptRecordedKeys); run at start and at each
	// heartbeat. Nil: none.
	AdoptKeys func(ctx context.Context) error
}

// Keeper recovers what was left in flight, at start and while running.
type Keeper struct {
	log    *zap.Logger
	store  Store
	ledger Ledger
	gate   Gate
	routes func() []config.IssuerRoute
	adopt  func(ctx context.Context) error
	done   sync.WaitGroup
}

// New builds a keeper; nothing runs until AtStart and Start.
func New(d Deps) *Keeper {
	return &Keeper{log: d.Log, store: d.Store, ledger: d.Ledger, gate: d.Gate, routes: d.Routes, adopt: d.AdoptKeys}
}

// AtStart runs at start, before any request is taken: it heartbeats,
// takes over (and recovers) the work of instances whose heartbeat lapsed,
// then recovers every transaction this instance's previous run left
// "forwarded" when it died between sending it and journaling the answer
// (recoverRow). A live peer's rows are not touched. Last, it imports the
// issuer key changes other instances recorded (adoptKeys).
func (k *Keeper) AtStart(ctx context.Context) error {
	now := time.Now()
	if err := k.heartbeat(ctx, now); err != nil {
		return err
	}
	if err := k.takeOverLapsed(ctx, now); err != nil {
		return err
	}
	left, err := k.ownInFlight(ctx)
	if err != nil {
		return err
	}
	for _, t := range left {
		if err := k.recoverRow(ctx, t); err != nil {
			return err
		}
	}
	k.adoptKeys(ctx)
	return nil
}

// recoverRow recovers one transaction left "forwarded" with nobody to
// journal its answer (after a restart, or found by the in-flight sweep):
// the issuer may have approved a sale while the terminal never heard, so
// it is timed out and a reversal queued; a cancel or refund still stands
// and its repeat is queued.
func (k *Keeper) recoverRow(ctx context.Context, t store.Txn) error {
	if t.OriginalID > 0 {
		// A merchant cancel or refund: it stands if it may have left (its
		// repeat queued), else its amount goes back to the sale.
		queued, err := k.ledger.RecoverCancel(ctx, t)
		if err != nil {
			return err
		}
		k.log.Warn("cancel left in flight recovered", zap.Int64("txn", t.ID), zap.String("route", t.Route), zap.Bool("repeat_queued", queued))
		return nil
	}
	h := &pipeline.Held{Row: t, Reverse: true, Event: "found left in flight: reversal queued"}
	if err := k.ledger.SettleHeld(ctx, h); err != nil {
		if h.ReversalQueued {
			// Keep it so it is settled once the journal takes writes,
			// without queueing its reversal twice.
			k.gate.Hold(h, err)
		}
		return err
	}
	k.log.Warn("transaction left in flight recovered: reversal queued", zap.Int64("txn", t.ID), zap.String("route", t.Route))
	return nil
}

// LateAnswer journals an issuer answer that came after its timeout (a
// link's late-response handler). The sale's reversal was queued when it
// timed out, so a late approval is reversed by the SAF without anything
// more to do here.
func (k *Keeper) LateAnswer(route string, msg *iso8583.Message) {
	stan, _ := msg.GetString(specs.STAN)
	rc, _ := msg.GetString(specs.ResponseCode)
	t, err := k.store.Lookup().FindByIssuerSTAN(context.Background(), route, stan)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		k.log.Warn("late answer: journal look-up", zap.Error(err))
		return
	}
	detail := "late issuer answer " + rc
	if codes.Code(rc).IsApproved() && t.State == store.TimedOut {
		detail += ": late approval, reversal already queued"
	}
	_ = k.store.Sales().Event(context.Background(), t.ID, "late_answer", strings.TrimSpace(detail))
}
