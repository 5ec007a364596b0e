package storage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
)

// observer counts what the store tells it.
type observer struct {
	commits, holds atomic.Int64
}

func (o *observer) ObserveCommit(time.Duration, int, error) { o.commits.Add(1) }
func (o *observer) ObserveHold(time.Duration, int)          { o.holds.Add(1) }

// TestOpenWithTellsTheObserver: the embedded store opened from the default
// configuration (journal.group_wait 500us; group_size 256) tells the observer of its
// commits and, once many writers keep writes arriving, of held groups:
// the journal metrics switchd exports.
func TestOpenWithTellsTheObserver(t *testing.T) {
	cfg := config.Default()
	cfg.Journal.GroupSize = 256 // a group under it may be held
	cfg.Journal.Path = filepath.Join(t.TempDir(), "journal.db")
	cfg.Vault.Path = filepath.Join(t.TempDir(), "vault.db")
	var obs observer
	opened, err := storage.OpenWith(cfg, nil, &obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := opened.Store
	defer st.Close()
	// Many writers: writes arrive during every commit, and a hold (of a
	// group under group_size) gains them.
	const writers = 24
	var (
		wg   sync.WaitGroup
		stan atomic.Int64
	)
	deadline := time.Now().Add(30 * time.Second)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obs.holds.Load() == 0 && time.Now().Before(deadline) {
				n := stan.Add(1)
				r := store.Txn{Key: store.Key{TerminalID: fmt.Sprintf("T%07d", w), STAN: fmt.Sprintf("%06d", n%999999+1),
					TxTime: fmt.Sprintf("%010d", n), MTI: "0200"}, ProcCode: "000000", Amount: 100, Currency: "410",
					Route: "card-a", State: store.Forwarded}
				if _, err := st.Sales().Begin(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if obs.commits.Load() == 0 || obs.holds.Load() == 0 {
		t.Fatalf("told of %d commits and %d holds after %d writes; want both", obs.commits.Load(), obs.holds.Load(), stan.Load())
	}
}
