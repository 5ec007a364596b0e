package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// CloseAnswersEveryWrite closes s while 64 writers keep recording sales:
// every write racing Close must come back (ErrUnavailable once the store
// is closing), none may wait for ever. s is closed by it.
func CloseAnswersEveryWrite(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	var seq atomic.Int64
	var running sync.WaitGroup
	writers := make(chan struct{})
	for range 64 {
		running.Add(1)
		go func() {
			defer running.Done()
			for {
				stan := fmt.Sprintf("%06d", seq.Add(1))
				sale := store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"},
					ProcCode: "000000", Amount: 10000, Currency: "410", Route: "card-a", State: store.Forwarded}
				if _, err := s.Sales().Begin(ctx, sale); err != nil {
					if !errors.Is(err, store.ErrUnavailable) {
						t.Errorf("write racing Close: %v, want ErrUnavailable", err)
					}
					return
				}
			}
		}()
	}
	go func() { running.Wait(); close(writers) }()
	for deadline := time.Now().Add(time.Minute); seq.Load() < 200 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.Close()
	select {
	case <-writers:
	case <-time.After(time.Minute):
		t.Fatal("writers still waiting a minute after Close")
	}
}
