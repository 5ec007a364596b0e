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
	OpProbe       = "probe"
	OpSequence    = "sequence"
	OpHeartbeat   = "heartbeat"
	OpTakeOver    = "take_over"
	OpTokenInsert = "token_insert"
	OpTokenStatus = "token_status"
	OpTokenUse    = "token_use"
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

type faulty struct {
	Store
	f Fault
}

func (s *faulty) check(op string) error {
	if err := s.f(op); err != nil {
		return fmt.Errorf("store: commit (%s, injected): %w: %w", op, ErrUnavailable, err)
	}
	return nil
}

func (s *faulty) Sales() Sales         { return faultySales{s.Store.Sales(), s} }
func (s *faulty) GiveBacks() GiveBacks { return faultyGiveBacks{s.Store.GiveBacks(), s} }
func (s *faulty) Queue() Queue         { return faultyQueue{s.Store.Queue(), s} }
func (s *faulty) Tokens() Tokens       { return faultyTokens{s.Store.Tokens(), s} }
func (s *faulty) Instances() Instances { return faultyInstances{s.Store.Instances(), s} }

type faultySales struct {
	Sales
	s *faulty
}

func (f faultySales) Begin(ctx context.Context, t Txn) (Txn, error) {
	if err := f.s.check(OpBegin); err != nil {
		return Txn{}, err
	}
	return f.Sales.Begin(ctx, t)
}

func (f faultySales) Set(ctx context.Context, id int64, u Update, event string) error {
	if err := f.s.check(OpSet); err != nil {
		return err
	}
	return f.Sales.Set(ctx, id, u, event)
}

func (f faultySales) Event(ctx context.Context, id int64, kind, detail string) error {
	if err := f.s.check(OpEvent); err != nil {
		return err
	}
	return f.Sales.Event(ctx, id, kind, detail)
}

func (f faultySales) Probe(ctx context.Context, why string) error {
	if err := f.s.check(OpProbe); err != nil {
		return err
	}
	return f.Sales.Probe(ctx, why)
}

type faultyGiveBacks struct {
	GiveBacks
	s *faulty
}

func (f faultyGiveBacks) ReserveCancel(ctx context.Context, c Txn) (Txn, error) {
	if err := f.s.check(OpCancel); err != nil {
		return Txn{}, err
	}
	return f.GiveBacks.ReserveCancel(ctx, c)
}

func (f faultyGiveBacks) ReleaseCancel(ctx context.Context, cancelID int64, st State, rc, why string) error {
	if err := f.s.check(OpRestore); err != nil {
		return err
	}
	return f.GiveBacks.ReleaseCancel(ctx, cancelID, st, rc, why)
}

type faultyQueue struct {
	Queue
	s *faulty
}

func (f faultyQueue) Enqueue(ctx context.Context, it SAFItem) (int64, error) {
	if err := f.s.check(OpEnqueue); err != nil {
		return 0, err
	}
	return f.Queue.Enqueue(ctx, it)
}

func (f faultyQueue) Claim(ctx context.Context, route string, now time.Time, lease time.Duration, limit int) ([]SAFItem, error) {
	if err := f.s.check(OpClaim); err != nil {
		return nil, err
	}
	return f.Queue.Claim(ctx, route, now, lease, limit)
}

func (f faultyQueue) AssignFirstAttempt(ctx context.Context, id int64, stan, txTime string) error {
	if err := f.s.check(OpSAFAssign); err != nil {
		return err
	}
	return f.Queue.AssignFirstAttempt(ctx, id, stan, txTime)
}

func (f faultyQueue) Result(ctx context.Context, it SAFItem, state string, next time.Time, lastErr string) error {
	if err := f.s.check(OpSAFResult); err != nil {
		return err
	}
	return f.Queue.Result(ctx, it, state, next, lastErr)
}

type faultyTokens struct {
	Tokens
	s *faulty
}

func (f faultyTokens) Insert(ctx context.Context, r TokenRecord) error {
	if err := f.s.check(OpTokenInsert); err != nil {
		return err
	}
	return f.Tokens.Insert(ctx, r)
}

func (f faultyTokens) InsertMany(ctx context.Context, rs []TokenRecord) error {
	if err := f.s.check(OpTokenInsert); err != nil {
		return err
	}
	return f.Tokens.InsertMany(ctx, rs)
}

func (f faultyTokens) SetStatus(ctx context.Context, token string, status TokenStatus, now time.Time) (TokenRecord, error) {
	if err := f.s.check(OpTokenStatus); err != nil {
		return TokenRecord{}, err
	}
	return f.Tokens.SetStatus(ctx, token, status, now)
}

func (f faultyTokens) Use(ctx context.Context, token string, now time.Time) (TokenRecord, error) {
	if err := f.s.check(OpTokenUse); err != nil {
		return TokenRecord{}, err
	}
	return f.Tokens.Use(ctx, token, now)
}

type faultyInstances struct {
	Instances
	s *faulty
}

func (f faultyInstances) Heartbeat(ctx context.Context, now time.Time) error {
	if err := f.s.check(OpHeartbeat); err != nil {
		return err
	}
	return f.Instances.Heartbeat(ctx, now)
}

func (f faultyInstances) TakeOver(ctx context.Context, name string, now time.Time) ([]Txn, error) {
	if err := f.s.check(OpTakeOver); err != nil {
		return nil, err
	}
	return f.Instances.TakeOver(ctx, name, now)
}

func (f faultyInstances) ReserveBlock(ctx context.Context, name string, n int64) (int64, error) {
	if err := f.s.check(OpSequence); err != nil {
		return 0, err
	}
	return f.Instances.ReserveBlock(ctx, name, n)
}
