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
// connections drive it. trips/sale counts the messages flushed to the
// server per sale (a group commit's one round trip is shared by its
// writes). Run without -race:
//
//	go test -run '^$' -bench Sale -benchmem ./switch/store/postgres/
func BenchmarkSale(b *testing.B) {
	srv := pgtest.Start(b)
	for _, goroutines := range []int{16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			var trips atomic.Int64
			dsn := srv.CreateDatabase(b, fmt.Sprintf("bench_%d", dbSeq.Add(1)))
			if _, err := Migrate(context.Background(), dsn); err != nil {
				b.Fatal(err)
			}
			s, err := Open(context.Background(), Options{DSN: dsn, Instance: store.Instance{Name: "a"}, trips: &trips})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var seq atomic.Int64
			ctx := context.Background()
			b.SetParallelism(max(1, goroutines/runtimeProcs()))
			b.ReportAllocs()
			b.ResetTimer()
			trips.Store(0)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					t := sale(fmt.Sprintf("%06d", n%1000000))
					t.TerminalID = fmt.Sprintf("T%07d", n/1000000)
					row, err := s.Sales().Begin(ctx, t)
					if err != nil {
						b.Error(err)
						return
					}
					if err := s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00", RRN: "512345000001",
						ApprovalCode: "A1B2C3"}, "approved"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(trips.Load())/float64(b.N), "trips/sale")
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
