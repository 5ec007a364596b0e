package postgres

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/switch/store"
)

// BenchmarkSale is the journal's hot path per sale on PostgreSQL: Begin
// (the duplicate check is the unique key) and Set (the outcome with its
// event), from 16 and 64 goroutines at once, as the switch's terminal
// connections drive it. trips/op counts the messages flushed to the
// server per sale (a group commit's one round trip is shared by its
// writes). Run without -race:
//
//	go test -run '^$' -bench . -benchmem ./switch/store/postgres/
func BenchmarkSale(b *testing.B) {
	benchParallel(b, func(s *Store, n int64) error {
		_, err := approve(s, n)
		return err
	})
}

// BenchmarkGiveBack is a sale and its cancel given back: Begin, Set,
// ReserveCancel and ReleaseCancel per op.
func BenchmarkGiveBack(b *testing.B) {
	ctx := context.Background()
	benchParallel(b, func(s *Store, n int64) error {
		sale, err := approve(s, n)
		if err != nil {
			return err
		}
		c := cancelOf(sale, fmt.Sprintf("%06d", n%1000000))
		if c, err = s.GiveBacks().ReserveCancel(ctx, c); err != nil {
			return err
		}
		return s.GiveBacks().ReleaseCancel(ctx, c.ID, store.Declined, "05", "declined")
	})
}

// approve records sale n and its approval.
func approve(s *Store, n int64) (store.Txn, error) {
	ctx := context.Background()
	t := sale(fmt.Sprintf("%06d", n%1000000))
	t.TerminalID = fmt.Sprintf("T%07d", n/1000000)
	row, err := s.Sales().Begin(ctx, t)
	if err != nil {
		return row, err
	}
	row.Remaining = row.Amount
	return row, s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00", RRN: "512345000001",
		ApprovalCode: "A1B2C3", Remaining: &row.Remaining}, "approved")
}

// benchParallel runs op from 16 and 64 goroutines with 1 and 4 group
// commits in flight (Options.Committers), on a fresh database each,
// reporting trips/op.
func benchParallel(b *testing.B, op func(s *Store, n int64) error) {
	srv := pgtest.Start(b)
	for _, c := range []struct{ goroutines, committers int }{{16, 1}, {16, 4}, {64, 1}, {64, 4}} {
		b.Run(fmt.Sprintf("goroutines=%d/committers=%d", c.goroutines, c.committers), func(b *testing.B) {
			var trips atomic.Int64
			dsn := srv.CreateDatabase(b, fmt.Sprintf("bench_%d", dbSeq.Add(1)))
			if _, err := Migrate(context.Background(), dsn); err != nil {
				b.Fatal(err)
			}
			s, err := Open(context.Background(), Options{DSN: dsn, Instance: store.Instance{Name: "a"},
				Committers: c.committers, trips: &trips})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var seq atomic.Int64
			b.SetParallelism(max(1, c.goroutines/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			trips.Store(0)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(s, seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(trips.Load())/float64(b.N), "trips/op")
		})
	}
}
