package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// addUsesToRows is how a flush added the counts before the use counts
// file: to the tokens rows, in the vault file (the benchmark's reference).
const addUsesToRows = `UPDATE tokens SET use_count = use_count + u.n, updated_at = max(updated_at, u.l)
	FROM (SELECT value->>'t' AS t, value->>'n' AS n, value->>'l' AS l FROM json_each(?1)) AS u
	WHERE tokens.token = u.t`

// BenchmarkUseCountFlush measures a use count flush over a durable vault
// of 100,000 device tokens, each use on a token drawn at random (as in a
// large vault: the switch-token-cold bench path; every token has been
// used once before), with `tokens` uses per
// flush (700: a 250 ms flush at ~3,000 TPS). file=counts is the flush
// (the use counts file); file=rows is the same counts added to the tokens
// rows, as before that file. It reports the process's CPU per use
// (cpu-µs/use).
func BenchmarkUseCountFlush(b *testing.B) {
	const vaultTokens = 100_000
	s := open(b, true)
	ctx := context.Background()
	now := time.Now()
	recs := make([]store.TokenRecord, vaultTokens)
	for i := range recs {
		recs[i] = vaultToken(i, store.DeviceToken, now)
	}
	// Every token used once before: the use counts file at its full size.
	issueUsedOnce(b, s.v, recs, now)
	rng := rand.New(rand.NewPCG(1, 2))
	toRows := func(arg string, _ map[string]pendingUses) error {
		tx, err := s.v.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, addUsesToRows, arg); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	for _, file := range []string{"counts", "rows"} {
		flush := s.v.commitCounts
		if file == "rows" {
			flush = toRows
		}
		for _, tokens := range []int{700, 4096} {
			b.Run(fmt.Sprintf("file=%s/tokens=%d", file, tokens), func(b *testing.B) {
				var cpu time.Duration
				taken := make(map[string]pendingUses, tokens)
				for range b.N {
					clear(taken)
					for len(taken) < tokens {
						taken[recs[rng.IntN(vaultTokens)].Token] = pendingUses{n: 1, last: now.UnixMilli()}
					}
					counts := make([]countedUses, 0, tokens)
					for tok, p := range taken {
						counts = append(counts, countedUses{Token: tok, N: p.n, Last: p.last})
					}
					slices.SortFunc(counts, func(a, b countedUses) int { return strings.Compare(a.Token, b.Token) })
					arg, err := json.Marshal(counts)
					if err != nil {
						b.Fatal(err)
					}
					cpu0 := cpuTime()
					if err := flush(string(arg), taken); err != nil {
						b.Fatal(err)
					}
					cpu += cpuTime() - cpu0
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*tokens), "cpu-µs/use")
			})
		}
	}
}

// issueUsedOnce issues recs into v, each counted once in the use counts
// file (at now): the file at its full size.
func issueUsedOnce(b *testing.B, v *vault, recs []store.TokenRecord, now time.Time) {
	b.Helper()
	if err := v.InsertMany(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	all := make([]countedUses, len(recs))
	for i, r := range recs {
		all[i] = countedUses{Token: r.Token, N: 1, Last: now.UnixMilli()}
	}
	arg, err := json.Marshal(all)
	if err != nil {
		b.Fatal(err)
	}
	if err := v.commitCounts(string(arg), nil); err != nil {
		b.Fatal(err)
	}
}
