// Package vaultbench loads a token vault at production scale (millions of
// tokens) through a real HSM backend and measures load time, file size and
// detokenization latency and throughput.
package vaultbench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
	"github.com/kbpay/switch/switch/tsp"
)

// Options says how big and how hard.
type Options struct {
	Tokens      int // tokens to load
	Lookups     int // detokenizations to time
	Concurrency int // concurrent detokenizers
	Batch       int // rows per insert transaction
	// Hot, when > 0, draws the lookups from the first Hot tokens only (a
	// hot set, as payments have: its domains stay cached); 0: all tokens.
	Hot int
	Dir string
}

// Result is what was measured.
type Result struct {
	Tokens      int
	LoadTime    time.Duration
	FileBytes   int64
	Lookups     int
	LookupTime  time.Duration
	P50, P99    time.Duration
	P999, Max   time.Duration
	OpsPerSec   float64
	Concurrency int
	Hot         int // tokens the lookups drew from
	// CPUPerLookup is the process's CPU (user+system) over the lookups
	// divided by their number: the figure least moved by other load.
	CPUPerLookup time.Duration
}

// cardNumber and tokenNumber are deterministic, unique and Luhn-valid.
func cardNumber(i int) string {
	partial := fmt.Sprintf("9410%011d", i)
	return partial + string(pan.CheckDigit(partial))
}

func tokenNumber(i int) string {
	// A fixed odd multiplier modulo 10^11 is a bijection: unique, spread out.
	partial := fmt.Sprintf("9999%011d", (uint64(i)*48271+12345)%100000000000)
	return partial + string(pan.CheckDigit(partial))
}

// Run loads o.Tokens device tokens into a fresh vault in o.Dir with PANs
// encrypted and hashed by h, then times o.Lookups detokenizations of random
// tokens through the token service.
func Run(ctx context.Context, h hsm.HSM, o Options, progress io.Writer) (Result, error) {
	path := filepath.Join(o.Dir, "vault.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	st, err := embedded.OpenDir(o.Dir, embedded.Options{})
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	v := st.Tokens()
	res := Result{Tokens: o.Tokens, Lookups: o.Lookups, Concurrency: o.Concurrency, Hot: o.Tokens}
	if o.Hot > 0 && o.Hot < o.Tokens {
		res.Hot = o.Hot
	}

	start := time.Now()
	if err := load(ctx, h, v, o, progress); err != nil {
		return res, err
	}
	res.LoadTime = time.Since(start)
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(path + suffix); err == nil {
			res.FileBytes += st.Size()
		}
	}

	svc, err := tsp.New(tsp.Config{BIN: "9999", DataKey: hsm.LabelPANData, HashKey: hsm.LabelPANHash}, v, h, zap.NewNop())
	if err != nil {
		return res, err
	}
	lat := make([]time.Duration, o.Lookups)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start = time.Now()
	cpu0 := processCPU()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Lookups {
					return
				}
				n := r.IntN(res.Hot)
				t0 := time.Now()
				card, err := svc.Detokenize(ctx, tokenNumber(n), tsp.Use{MerchantID: "MERCHANT0000001", EntryMode: "051"})
				lat[i] = time.Since(t0)
				if err == nil && card.PAN != cardNumber(n) {
					err = fmt.Errorf("token %d detokenized to the wrong card", n)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}(uint64(w + 1))
	}
	wg.Wait()
	res.LookupTime = time.Since(start)
	res.CPUPerLookup = (processCPU() - cpu0) / time.Duration(o.Lookups)
	if firstErr != nil {
		return res, firstErr
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	res.P50, res.P99, res.P999, res.Max = q(0.50), q(0.99), q(0.999), lat[len(lat)-1]
	res.OpsPerSec = float64(o.Lookups) / res.LookupTime.Seconds()
	return res, nil
}

func load(ctx context.Context, h hsm.HSM, v store.Tokens, o Options, progress io.Writer) error {
	now := time.Now()
	expires := now.AddDate(5, 0, 0)
	type batch struct {
		from, to int
	}
	work := make(chan batch)
	done := make(chan []store.TokenRecord, 4)
	var wg sync.WaitGroup
	var encErr atomic.Pointer[error]
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				recs := make([]store.TokenRecord, 0, b.to-b.from)
				for i := b.from; i < b.to; i++ {
					p := cardNumber(i)
					enc, err := h.EncryptPAN(ctx, hsm.KeyRef{Label: hsm.LabelPANData}, p)
					if err != nil {
						encErr.Store(&err)
						return
					}
					hh, err := h.HashPAN(ctx, hsm.KeyRef{Label: hsm.LabelPANHash}, p)
					if err != nil {
						encErr.Store(&err)
						return
					}
					recs = append(recs, store.TokenRecord{Token: tokenNumber(i), PANKey: enc.Key.Label, PANKeyVersion: enc.Key.Version,
						PANCiphertext: enc.Ciphertext, PANHash: hh.Hash, HashVersion: hh.Key.Version, MaskedPAN: pan.Mask(p),
						CardExpiry: "3012", ExpiresAt: expires, Status: store.TokenActive, Kind: store.DeviceToken, CreatedAt: now, UpdatedAt: now})
				}
				// In key order: the B-tree takes a batch in one sweep.
				sort.Slice(recs, func(i, j int) bool { return recs[i].Token < recs[j].Token })
				done <- recs
			}
		}()
	}
	go func() {
		for from := 0; from < o.Tokens; from += o.Batch {
			work <- batch{from, min(o.Tokens, from+o.Batch)}
		}
		close(work)
		wg.Wait()
		close(done)
	}()
	loaded := 0
	for recs := range done {
		if err := v.InsertMany(ctx, recs); err != nil {
			return err
		}
		loaded += len(recs)
		if progress != nil && loaded%(o.Batch*50) < o.Batch {
			fmt.Fprintf(progress, "loaded %d tokens\n", loaded)
		}
	}
	if p := encErr.Load(); p != nil {
		return fmt.Errorf("encrypting PANs: %w", *p)
	}
	if loaded != o.Tokens {
		return fmt.Errorf("loaded %d of %d tokens", loaded, o.Tokens)
	}
	return nil
}

// Print writes the result as a small table.
func (r Result) Print(w io.Writer, backend string) {
	fmt.Fprintf(w, "backend            %s\n", backend)
	fmt.Fprintf(w, "tokens loaded      %d in %v (%.0f tokens/s)\n", r.Tokens, r.LoadTime.Round(time.Millisecond), float64(r.Tokens)/r.LoadTime.Seconds())
	fmt.Fprintf(w, "vault file         %.1f MiB (%.0f bytes/token)\n", float64(r.FileBytes)/(1<<20), float64(r.FileBytes)/float64(r.Tokens))
	fmt.Fprintf(w, "detokenizations    %d with %d workers in %v: %.0f ops/s\n", r.Lookups, r.Concurrency, r.LookupTime.Round(time.Millisecond), r.OpsPerSec)
	fmt.Fprintf(w, "drawn from         %d tokens\n", r.Hot)
	fmt.Fprintf(w, "CPU per lookup     %.1f µs (process user+system)\n", float64(r.CPUPerLookup.Nanoseconds())/1e3)
	fmt.Fprintf(w, "latency            p50 %v  p99 %v  p99.9 %v  max %v\n", r.P50, r.P99, r.P999, r.Max)
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
