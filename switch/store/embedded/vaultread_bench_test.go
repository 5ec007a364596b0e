package embedded

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// BenchmarkColdTokenRead: a payment's read of a device token not read
// before (the switch-token-cold path) on a vault of 100,000 tokens, each
// counted once in the use counts file, through a fresh handle (nothing of
// the tokens cached in the process); cpu-µs/read is the process's CPU per
// read. commits=none: nothing is written meanwhile, the reads share a
// snapshot; commits=each: the write generation moves before every read
// (as when every payment is a one-time number's use), each read takes a
// snapshot of its own.
//
// go test -run '^$' -bench BenchmarkColdTokenRead -benchtime 90000x -count 3 ./switch/store/embedded/
func BenchmarkColdTokenRead(b *testing.B) {
	const vaultTokens = 100_000
	dir := b.TempDir()
	s, err := OpenDir(dir, Options{Durable: true, Instance: store.Instance{Name: "test"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	recs := make([]store.TokenRecord, vaultTokens)
	for i := range recs {
		recs[i] = vaultToken(i, store.DeviceToken, now)
		recs[i].PANCiphertext, recs[i].PANHash = make([]byte, 44), make([]byte, 32)
		_, _ = crand.Read(recs[i].PANCiphertext)
		_, _ = crand.Read(recs[i].PANHash)
	}
	issueUsedOnce(b, s.v, recs, now)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for _, commits := range []string{"none", "each"} {
		b.Run("commits="+commits, func(b *testing.B) {
			if b.N > vaultTokens {
				b.Fatalf("at most %d reads", vaultTokens)
			}
			v := openAt(b, dir, true).v
			order := rand.New(rand.NewPCG(3, 4)).Perm(vaultTokens)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				if commits == "each" {
					v.wrote()
				}
				if _, err := v.Get(ctx, recs[order[i]].Token); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/read")
		})
	}
}
