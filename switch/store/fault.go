package store

import (
	"context"
	"fmt"
	"time"
)

// Write operations, as a Fault sees them.
const (
	OpBegin       = "begin"
	OpSet         = "set"
	OpCancel      = "cancel"
	OpEvent       = "event"
	OpRestore     = "restore"
	OpEnqueue     = "enqueue"
	OpClaim       = "saf_claim"
	OpSAFAssign   = "saf_assign"
	OpSAFResult   = "saf_result"
	OpSAFAction   = "saf_action" // an operator's SAFDesk action
	OpProbe       = "probe"
	OpSequence    = "sequence"
	OpHeartbeat   = "heartbeat"
	OpTakeOver    = "take_over"
	OpTokenInsert = "token_insert"
	OpTokenStatus = "token_status"
	OpTokenUse    = "token_use"
	OpZoneKey     = "zone_key" // an issuer key change recorded (ZoneKeys)
)

// Fault is asked before each write with its operation (OpBegin, ...); a
// non-nil error fails that write as a failed commit would: nothing of it
// is applied and the caller gets the error wrapped (with ErrUnavailable).
// It must be safe for concurrent use and must not block. Reads are never
// faulted.
type Fault func(op string) error

// WithFault wraps any Store so that its writes fail on demand (a full
// disk, a lost volume, a database outage), for tests; a nil fault returns
// s as it is.
func WithFault(s Store, fault Fault) Store {
	if fault == nil {
		return s
	}
	return &faulty{Store: s, f: fault}
}

// WithLostAcks wraps any Store so that fault is asked after each write
// succeeded: a non-nil error is returned as if the write had failed
// although it is applied (the crash point between a commit and its caller
// hearing of it; the caller must treat the outcome as unknown).
func WithLostAcks(s Store, fault Fault) Store {
	if fault == nil {
		return s
	}
	return &faulty{Store: s, f: fault, after: true}
}

type faulty struct {
	Store
	f     Fault
	after bool // ask f after the write (WithLostAcks), not before
}

func (s *faulty) check(op string) error {
	if err := s.f(op); err != nil {
		if s.after {
			return fmt.Errorf("store: commit (%s, acknowledgement lost, injected): %w: %w", op, ErrUnavailable, err)
		}
		return fmt.Errorf("store: commit (%s, injected): %w: %w", op, ErrUnavailable, err)
	}
	return nil
}

// do runs write with the fault asked before it, or after it succeeded.
func (s *faulty) do(op string, write func() error) error {
	if !s.after {
		if err := s.check(op); err != nil {
			return err
		}
		return write()
	}
	if err := write(); err != nil {
		return err
	}
	return s.check(op)
}

func (s *faulty) Sales() Sales         { return faultySales{s.Store.Sales(), s} }
func (s *faulty) GiveBacks() GiveBacks { return faultyGiveBacks{s.Store.GiveBacks(), s} }
func (s *faulty) Queue() Queue         { return faultyQueue{s.Store.Queue(), s} }
func (s *faulty) SAFDesk() SAFDesk     { return faultyDesk{s.Store.SAFDesk(), s} }
func (s *faulty) Tokens() Tokens       { return faultyTokens{s.Store.Tokens(), s} }
func (s *faulty) Instances() Instances { return faultyInstances{s.Store.Instances(), s} }

type faultySales struct {
	Sales
	s *faulty
}

func (f faultySales) Begin(ctx context.Context, t Txn) (Txn, error) {
	var out Txn
	err := f.s.do(OpBegin, func() (err error) { out, err = f.Sales.Begin(ctx, t); return err })
	return out, err
}

func (f faultySales) Set(ctx context.Context, id int64, u Update, event string) error {
	return f.s.do(OpSet, func() error { return f.Sales.Set(ctx, id, u, event) })
}

func (f faultySales) Event(ctx context.Context, id int64, kind, detail string) error {
	return f.s.do(OpEvent, func() error { return f.Sales.Event(ctx, id, kind, detail) })
}

func (f faultySales) Probe(ctx context.Context, why string) error {
	return f.s.do(OpProbe, func() error { return f.Sales.Probe(ctx, why) })
}

type faultyGiveBacks struct {
	GiveBacks
	s *faulty
}

func (f faultyGiveBacks) ReserveCancel(ctx context.Context, c Txn) (Txn, error) {
	var out Txn
	err := f.s.do(OpCancel, func() (err error) { out, err = f.GiveBacks.ReserveCancel(ctx, c); return err })
	return out, err
}

func (f faultyGiveBacks) ReleaseCancel(ctx context.Context, cancelID int64, st State, rc, why string) error {
	return f.s.do(OpRestore, func() error { return f.GiveBacks.ReleaseCancel(ctx, cancelID, st, rc, why) })
}

type faultyQueue struct {
	Queue
	s *faulty
}

func (f faultyQueue) Enqueue(ctx context.Context, it SAFItem) (int64, error) {
	var out int64
	err := f.s.do(OpEnqueue, func() (err error) { out, err = f.Queue.Enqueue(ctx, it); return err })
	return out, err
}

func (f faultyQueue) Claim(ctx context.Context, route string, now time.Time, lease time.Duration, limit int) ([]SAFItem, error) {
	var out []SAFItem
	err := f.s.do(OpClaim, func() (err error) { out, err = f.Queue.Claim(ctx, route, now, lease, limit); return err })
	return out, err
}

func (f faultyQueue) AssignFirstAttempt(ctx context.Context, id int64, stan, txTime string) error {
	return f.s.do(OpSAFAssign, func() error { return f.Queue.AssignFirstAttempt(ctx, id, stan, txTime) })
}

func (f faultyQueue) Result(ctx context.Context, it SAFItem, state string, next time.Time, lastErr string) error {
	return f.s.do(OpSAFResult, func() error { return f.Queue.Result(ctx, it, state, next, lastErr) })
}

type faultyDesk struct {
	SAFDesk
	s *faulty
}

func (f faultyDesk) RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (SAFItem, error) {
	var out SAFItem
	err := f.s.do(OpSAFAction, func() (err error) { out, err = f.SAFDesk.RetryNow(ctx, id, who, expiry); return err })
	return out, err
}

func (f faultyDesk) Resolve(ctx context.Context, id int64, who, reason string) (SAFItem, error) {
	var out SAFItem
	err := f.s.do(OpSAFAction, func() (err error) { out, err = f.SAFDesk.Resolve(ctx, id, who, reason); return err })
	return out, err
}

type faultyTokens struct {
	Tokens
	s *faulty
}

func (f faultyTokens) Insert(ctx context.Context, r TokenRecord) error {
	return f.s.do(OpTokenInsert, func() error { return f.Tokens.Insert(ctx, r) })
}

func (f faultyTokens) InsertMany(ctx context.Context, rs []TokenRecord) error {
	return f.s.do(OpTokenInsert, func() error { return f.Tokens.InsertMany(ctx, rs) })
}

func (f faultyTokens) SetStatus(ctx context.Context, token string, status TokenStatus, now time.Time) (TokenRecord, error) {
	var out TokenRecord
	err := f.s.do(OpTokenStatus, func() (err error) { out, err = f.Tokens.SetStatus(ctx, token, status, now); return err })
	return out, err
}

func (f faultyTokens) Use(ctx context.Context, token string, now time.Time) (TokenRecord, error) {
	var out TokenRecord
	err := f.s.do(OpTokenUse, func() (err error) { out, err = f.Tokens.Use(ctx, token, now); return err })
	return out, err
}

type faultyInstances struct {
	Instances
	s *faulty
}

func (f faultyInstances) Heartbeat(ctx context.Context, now time.Time) error {
	return f.s.do(OpHeartbeat, func() error { return f.Instances.Heartbeat(ctx, now) })
}

func (f faultyInstances) TakeOver(ctx context.Context, name string, now time.Time) ([]Txn, error) {
	var out []Txn
	err := f.s.do(OpTakeOver, func() (err error) { out, err = f.Instances.TakeOver(ctx, name, now); return err })
	return out, err
}

func (f faultyInstances) ReserveBlock(ctx context.Context, name string, n int64) (int64, error) {
	var out int64
	err := f.s.do(OpSequence, func() (err error) { out, err = f.Instances.ReserveBlock(ctx, name, n); return err })
	return out, err
}

func (s *faulty) ZoneKeys() ZoneKeys { return faultyZoneKeys{s.Store.ZoneKeys(), s} }

type faultyZoneKeys struct {
	ZoneKeys
	s *faulty
}

func (f faultyZoneKeys) Record(ctx context.Context, k ZoneKey) error {
	return f.s.do(OpZoneKey, func() error { return f.ZoneKeys.Record(ctx, k) })
}
