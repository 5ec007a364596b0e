package journal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t testing.TB, durable bool) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"), Options{Durable: durable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func sale(stan string) Txn {
	return Txn{Key: Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"}, ProcCode: "000000",
		Amount: 10000, Currency: "410", Route: "card-a", State: Forwarded}
}

func TestBeginDuplicateAndOutcome(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	a, err := j.Begin(ctx, sale("000001"))
	if err != nil || a.ID == 0 {
		t.Fatal(a, err)
	}
	if _, err := j.Begin(ctx, sale("000001")); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	rem := int64(10000)
	if err := j.Set(ctx, a.ID, Update{State: Approved, RC: "00", ApprovalCode: "000042", Remaining: &rem}, "approved"); err != nil {
		t.Fatal(err)
	}
	got, err := j.FindByKey(ctx, a.Key)
	if err != nil || got.State != Approved || got.ApprovalCode != "000042" || got.Remaining != 10000 || got.Route != "card-a" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := j.Set(ctx, 999, Update{State: Approved}, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing row: %v", err)
	}
	ev, _ := j.Events(ctx, a.ID)
	if len(ev) != 1 {
		t.Fatalf("events %v", ev)
	}
}

// TestConcurrentCancelsNeverExceed: 20 concurrent cancels of 3000 against a
// 10000 sale: exactly three succeed.
func TestConcurrentCancelsNeverExceed(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	s, _ := j.Begin(ctx, sale("000001"))
	rem := int64(10000)
	_ = j.Set(ctx, s.ID, Update{State: Approved, RC: "00", Remaining: &rem}, "")
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := j.ReserveCancel(ctx, Txn{Key: Key{TerminalID: "TERM0001", STAN: fmt.Sprintf("%06d", 100+i), TxTime: "1125101600", MTI: "0400"},
				OriginalID: s.ID, Amount: 3000})
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, ErrExceeds) {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	got, _ := j.Get(ctx, s.ID)
	if ok.Load() != 3 || got.Remaining != 1000 {
		t.Fatalf("%d cancels succeeded, %d remains", ok.Load(), got.Remaining)
	}
	var rows int
	_ = j.db.R.QueryRow(`SELECT count(*) FROM txns WHERE mti = '0400'`).Scan(&rows)
	if rows != 3 {
		t.Fatalf("%d cancel rows journaled, want only the 3 that reserved", rows)
	}
}

func TestSAFQueue(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	s, _ := j.Begin(ctx, sale("000001"))
	now := time.Now()
	id, err := j.Enqueue(ctx, SAFItem{TxnID: s.ID, Route: "card-a", Kind: KindReversal, Amount: 10000, NextAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	due, _ := j.Due(ctx, now.Add(time.Millisecond), 10)
	if len(due) != 1 || due[0].ID != id {
		t.Fatalf("due %+v", due)
	}
	if err := j.SAFAssign(ctx, id, "000777", "1125101700"); err != nil {
		t.Fatal(err)
	}
	if err := j.SAFResult(ctx, due[0], SAFPending, now.Add(time.Minute), "no answer"); err != nil {
		t.Fatal(err)
	}
	if due, _ := j.Due(ctx, now.Add(time.Second), 10); len(due) != 0 {
		t.Fatal("retry not pushed back")
	}
	later, _ := j.Due(ctx, now.Add(2*time.Minute), 10)
	if len(later) != 1 || later[0].Attempts != 1 || later[0].STAN != "000777" {
		t.Fatalf("later %+v", later)
	}
	_ = j.SAFResult(ctx, later[0], SAFDone, now, "")
	if n, _ := j.SAFDepth(ctx); n != 0 {
		t.Fatalf("depth %d", n)
	}
}

// TestGroupCommit: many concurrent writers all become durable, in far
// fewer commits than writes.
func TestGroupCommit(t *testing.T) {
	j := open(t, true)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := j.Begin(ctx, sale(fmt.Sprintf("%06d", i+1))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	var n int
	_ = j.db.R.QueryRow(`SELECT count(*) FROM txns`).Scan(&n)
	if n != 200 {
		t.Fatalf("%d rows", n)
	}
}

// BenchmarkJournal measures one sale's two journal writes (request before
// it leaves, outcome before the terminal hears it) from 64 concurrent
// transactions, with fsync at each grouped commit (durable) and without.
func BenchmarkJournal(b *testing.B) {
	for _, durable := range []bool{true, false} {
		name := "nofsync"
		if durable {
			name = "durable"
		}
		b.Run(name, func(b *testing.B) {
			j := open(b, durable)
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					s := sale(fmt.Sprintf("%06d", n%999999+1))
					s.TerminalID = fmt.Sprintf("T%07d", n/999999)
					row, err := j.Begin(ctx, s)
					if err != nil {
						b.Error(err)
						return
					}
					rem := int64(10000)
					if err := j.Set(ctx, row.ID, Update{State: Approved, RC: "00", Remaining: &rem}, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestFaultFailsWritesOnDemand: the fault hook fails the writes it names,
// nothing of them is applied, reads still work, and writes succeed again
// once it stops failing.
func TestFaultFailsWritesOnDemand(t *testing.T) {
	errFull := errors.New("disk full")
	var failing atomic.Value // string: the op to fail, "" for none
	failing.Store("")
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"), Options{Durable: true, Fault: func(op string) error {
		if f := failing.Load().(string); f == "*" || f == op {
			return errFull
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	ctx := context.Background()
	a, err := j.Begin(ctx, sale("000001"))
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(OpSet)
	if err := j.Set(ctx, a.ID, Update{State: Approved, RC: "00"}, "approved"); !errors.Is(err, errFull) {
		t.Fatalf("faulted set: %v", err)
	}
	if got, err := j.Get(ctx, a.ID); err != nil || got.State != Forwarded {
		t.Fatalf("a failed write was applied, or reads fail: %+v %v", got, err)
	}
	if _, err := j.Begin(ctx, sale("000002")); err != nil {
		t.Fatalf("an op the fault does not name failed: %v", err)
	}
	failing.Store("*")
	if err := j.Probe(ctx, "test"); !errors.Is(err, errFull) {
		t.Fatalf("probe while failing: %v", err)
	}
	failing.Store("")
	if err := j.Probe(ctx, "test"); err != nil {
		t.Fatalf("probe after healing: %v", err)
	}
	if err := j.Set(ctx, a.ID, Update{State: Approved, RC: "00"}, "approved"); err != nil {
		t.Fatalf("set after healing: %v", err)
	}
}
