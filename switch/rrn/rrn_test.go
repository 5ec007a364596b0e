package rrn

import (
	"context"
	"sync"
	"testing"

	"github.com/kbpay/switch/switch/store/embedded"
)

func openStore(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.OpenDir(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUniqueAcrossRestartsAndGoroutines: RRNs drawn concurrently, then
// after reopening the journal (a restart), never repeat, and all carry
// the instance number.
func TestUniqueAcrossRestartsAndGoroutines(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	var mu sync.Mutex
	for run := 0; run < 2; run++ {
		j := openStore(t, dir)
		seq, err := New(j.Instances(), 7)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < BlockSize/2+10; i++ {
					r, err := seq.Next()
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[r] {
						t.Errorf("RRN %s handed out twice", r)
					}
					seen[r] = true
					mu.Unlock()
					if len(r) != 12 || r[:2] != "07" {
						t.Errorf("RRN %q: want 12 digits starting with the instance 07", r)
					}
				}
			}()
		}
		wg.Wait()
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2*4*(BlockSize/2+10) {
		t.Fatalf("%d distinct RRNs", len(seen))
	}
}

type failing struct{}

func (failing) ReserveBlock(context.Context, string, int64) (int64, error) {
	return 0, context.DeadlineExceeded
}

func TestNoRRNWithoutADurableBlock(t *testing.T) {
	seq, _ := New(failing{}, 0)
	if r, err := seq.Next(); err == nil {
		t.Fatalf("got RRN %s although no block could be reserved", r)
	}
	if _, err := New(failing{}, 100); err == nil {
		t.Fatal("instance 100 accepted")
	}
}
