package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// OnCommit checks a backend's commit hook (the journal commit-latency
// metric): open returns a fresh store that tells onCommit of each group
// commit; three sales must be reported, with no failed commit.
func OnCommit(t *testing.T, open func(onCommit func(d time.Duration, writes int, err error)) store.Store) {
	t.Helper()
	var commits, writes atomic.Int64
	s := open(func(d time.Duration, n int, err error) {
		if d < 0 || err != nil {
			t.Errorf("commit of %d writes: %v after %v", n, err, d)
		}
		commits.Add(1)
		writes.Add(int64(n))
	})
	for i := 0; i < 3; i++ {
		if _, err := s.Sales().Begin(context.Background(), sale(fmt.Sprintf("%06d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	// The hook runs after the writers are released: wait for it.
	for deadline := time.Now().Add(10 * time.Second); writes.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if commits.Load() < 1 || writes.Load() != 3 {
		t.Fatalf("OnCommit saw %d commits of %d writes, want the 3 writes", commits.Load(), writes.Load())
	}
}
