package embedded

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// BenchmarkSale measures one sale's journal work as the switch does it:
// the request recorded before it leaves (Begin, optionally after the
// duplicate look-up FindByKey the Record stage used to make) and its
// outcome settled before the terminal hears it (Set), from 1 (per
// processor: small groups, as at a low steady rate), 16 and 64 concurrent
// transactions, with sync FULL (fsync per commit) and NORMAL.
// Besides ns/op and allocs it reports cpu-µs/sale: the process's user +
// system CPU over the run divided by the sales (the switch's target is
// ≤50 µs per transaction for all of switchd).
//
// The durable runs go again with the committer holding small groups for
// more writes (journal.group_wait's default: "held=500µs").
func BenchmarkSale(b *testing.B) {
	for _, lookup := range []bool{false, true} {
		for _, durable := range []bool{true, false} {
			for _, par := range []int{1, 16, 64} {
				name := fmt.Sprintf("sync=%s/inflight=%d", map[bool]string{true: "FULL", false: "NORMAL"}[durable], par)
				if lookup {
					name = "findbykey+" + name
				}
				b.Run(name, func(b *testing.B) { benchSale(b, durable, par, lookup, 0) })
				if durable && !lookup {
					b.Run(name+"/held=500µs", func(b *testing.B) { benchSale(b, durable, par, lookup, 500*time.Microsecond) })
				}
			}
		}
	}
}

func benchSale(b *testing.B, durable bool, par int, lookup bool, held time.Duration) {
	var commits atomic.Int64
	s, err := OpenDir(b.TempDir(), Options{Durable: durable, Instance: store.Instance{Name: "test"}, GroupWait: held,
		OnCommit: func(time.Duration, int, error) { commits.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	runSales(b, par, &commits, func(n int64, rem *int64) error {
		r := benchRequest(n)
		if lookup {
			if _, err := s.Sales().FindByKey(ctx, r.Key); err != store.ErrNotFound {
				return fmt.Errorf("FindByKey of a new key: %v", err)
			}
		}
		return journalSale(ctx, s, r, n, rem)
	})
}

// journalSale journals request r, the n-th sale, as the switch does: the
// request (Begin), then its approval (Set) with rem remaining.
func journalSale(ctx context.Context, s *Store, r store.Txn, n int64, rem *int64) error {
	row, err := s.Sales().Begin(ctx, r)
	if err != nil {
		return err
	}
	return s.Sales().Set(ctx, row.ID, store.Update{State: store.Approved, RC: "00", RRN: fmt.Sprintf("5123%08d", n),
		ApprovalCode: "A1B2C3", Remaining: rem}, "approved")
}

// runSales runs sale (the n-th; rem is the remaining amount its outcome
// records) with par sales in flight over b.N and reports the process's
// CPU µs per sale and, unless commits is nil, the writes (two a sale) per
// group commit it counts from the timer's start.
func runSales(b *testing.B, par int, commits *atomic.Int64, sale func(n int64, rem *int64) error) {
	var seq atomic.Int64
	procs := max(1, testingProcs())
	b.SetParallelism((par + procs - 1) / procs)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	if commits != nil {
		commits.Store(0)
	}
	b.RunParallel(func(pb *testing.PB) {
		rem := int64(10000)
		for pb.Next() {
			if err := sale(seq.Add(1), &rem); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/sale")
	if commits != nil {
		b.ReportMetric(float64(2*b.N)/float64(max(1, commits.Load())), "writes/commit")
	}
}

// benchTerminals is how many terminal IDs the sales spread over, as the
// end-to-end benchmark's load does: each sale's key then lands in its own
// terminal's part of the key index (a page of its own to write), as in
// the field, rather than all on one page.
const benchTerminals = 256

// benchRequest is the n-th sale as the Record stage journals a card
// payment: the key spread over benchTerminals terminals with a current
// DE 7, and the card data a row carries (masked PAN, ciphertext, key).
func benchRequest(n int64) store.Txn {
	r := sale(fmt.Sprintf("%06d", (n/benchTerminals)%999999+1))
	r.TerminalID = fmt.Sprintf("T%07d", n%benchTerminals)
	r.TxTime = time.Now().UTC().Format("0102150405")
	r.Listener, r.MerchantID = "pos", "MERCHANT000001"
	r.MaskedPAN, r.CardExpiry = "476173******0119", "2812"
	r.PANKey, r.PANKeyVersion = "journal-data-key", 1
	r.PANCiphertext = make([]byte, 44)
	r.ContentHash = fmt.Sprintf("%064x", n)
	r.IssuerSTAN, r.IssuerTxTime = fmt.Sprintf("%06d", n%999999+1), r.TxTime
	return r
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkDiskSync is the floor under every durable group commit on this
// machine: one 4 KiB page written over a file written in full before (as
// SQLite reuses its WAL) and made durable, either by fdatasync (the sync
// SQLite's Linux build makes) or by writing it through O_DIRECT|O_DSYNC
// (one system call, no page cache: the cheapest durable write a log of
// its own could make; skipped where the file system refuses O_DIRECT).
// cpu-µs/sync is the process's user + system CPU per durable write: on a
// virtual machine most of it is the kernel's, and it is paid once per
// commit however many writes the group carries.
func BenchmarkDiskSync(b *testing.B) {
	for _, direct := range []bool{false, true} {
		b.Run(map[bool]string{false: "fdatasync", true: "o_direct+o_dsync"}[direct], func(b *testing.B) {
			f, page := openLog(b, direct)
			if page == nil {
				page = make([]byte, pageSize)
			}
			page = page[:pageSize]
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.WriteAt(page, int64(i*pageSize)%logSize); err != nil {
					b.Fatal(err)
				}
				if direct {
					continue
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/sync")
		})
	}
}
