package embedded

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// TestGroupWaitOnlyWhileWritesArrive: a group is held only when, by the
// writes that arrived during the last commits, one is expected within the
// hold, and for as long as a commit takes, at most max.
func TestGroupWaitOnlyWhileWritesArrive(t *testing.T) {
	const commit = 500 * time.Microsecond
	tests := []struct {
		name   string
		max    time.Duration
		queued []int // writes waiting after each commit, in order
		want   time.Duration
	}{
		{"nothing observed yet", 200 * time.Microsecond, nil, 0},
		{"a lone writer: nothing arrives during its commits", 200 * time.Microsecond, []int{0, 0, 0, 0, 0, 0}, 0},
		{"busy: several writes arrive during each commit", 200 * time.Microsecond, []int{6, 6, 6, 6, 6, 6}, 200 * time.Microsecond},
		{"busy, then quiet", 200 * time.Microsecond, []int{6, 6, 6, 6, 6, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0},
		{"held no longer than a commit takes", 5 * time.Millisecond, []int{6, 6, 6, 6}, commit},
		{"a write every tenth commit: not expected within a short hold", 20 * time.Microsecond,
			[]int{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0},
		{"off", 0, []int{6, 6, 6, 6, 6, 6}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroupWait(tt.max, 16)
			for _, n := range tt.queued {
				g.observe(n, commit)
			}
			if got := g.wait(); got != tt.want {
				t.Errorf("wait %v, want %v (rate %.0f writes/s)", got, tt.want, g.rate)
			}
		})
	}
}

// TestFruitlessHoldsBackOff: once holds gain under minGain writes on
// average, the next holds are skipped, twice as many each time up to
// maxSkip; holds that gain go on at every commit.
func TestFruitlessHoldsBackOff(t *testing.T) {
	g := newGroupWait(time.Millisecond, 16)
	for range 8 {
		g.observe(6, time.Millisecond) // busy
	}
	holds := func(commits int, gained int) (n int) {
		for range commits {
			if g.wait() > 0 {
				n++
				g.held(gained)
			}
		}
		return n
	}
	// Holds gain 1 on average to start with: three fruitless ones bring
	// it under 0.5 (0.75, 0.56, 0.42); then skips of 1, 3, 7, ..., 63,
	// 64, 64 after each further one.
	if n := holds(3+2+4+8+16+32+64+65+65, 0); n != 11 {
		t.Errorf("%d fruitless holds in 259 commits, want 11", n)
	}
	if n := holds(65, 0); n != 1 {
		t.Errorf("%d fruitless holds in 65 commits at the most backed off, want 1", n)
	}
	if n := holds(64, 2); n != 0 {
		t.Errorf("%d holds in the 64 commits still skipped, want 0", n)
	}
	if n := holds(20, 2); n < 17 {
		t.Errorf("holds gaining 2 writes each: %d holds in 20 commits, want nearly all", n)
	}
}

// TestGatherEndsAtSizeTimeOrStop: a held group is committed once it has
// its size, once the wait is over, or when the journal closes.
func TestGatherEndsAtSizeTimeOrStop(t *testing.T) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	ch := make(chan int, 8)
	ch <- 2
	ch <- 3
	ch <- 4
	if got := gather(ch, []int{1}, 3, time.Hour, timer, nil); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("held until size 3: %v", got)
	}
	if got := gather(ch, []int{9}, 3, time.Millisecond, timer, nil); !slices.Equal(got, []int{9, 4}) {
		t.Errorf("held until the wait was over: %v", got)
	}
	stop := make(chan struct{})
	close(stop)
	if got := gather(ch, []int{7}, 3, time.Hour, timer, stop); !slices.Equal(got, []int{7}) {
		t.Errorf("held past the journal's close: %v", got)
	}
}

// TestHeldGroupCommitsTogether: once writes arrived during a commit, the
// next group is held for the write that follows (for as long as that
// commit took), and the three commit together; not held, they commit as
// they come. OnHold is told of the hold and the write it gained. The
// hold's settings apply as opened or as changed while the journal runs
// (HoldGroups during the first commit, as a configuration reload does).
func TestHeldGroupCommitsTogether(t *testing.T) {
	tests := []struct {
		name              string
		open, live        time.Duration // GroupWait at open; HoldGroups(live) during the first commit unless < 0
		wantGroups, holds []int
	}{
		{"held as opened", time.Minute, -1, []int{1, 3}, []int{1}},
		{"held once turned on", 0, time.Minute, []int{1, 3}, []int{1}},
		{"not held once turned off", time.Minute, 0, []int{1, 2, 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			groups, holds := heldGroups(t, tc.open, tc.live)
			if !slices.Equal(groups, tc.wantGroups) || !slices.Equal(holds, tc.holds) {
				t.Fatalf("groups %v and holds gaining %v, want %v and %v", groups, holds, tc.wantGroups, tc.holds)
			}
		})
	}
}

// heldGroups commits a write while two more arrive, then a fourth, and
// returns the groups committed and what each hold gained.
func heldGroups(t *testing.T, open, live time.Duration) (groups, holds []int) {
	var mu sync.Mutex
	ctx := context.Background()
	s, err := OpenDir(t.TempDir(), Options{Instance: store.Instance{Name: "test"}, GroupWait: open, GroupSize: 3,
		OnCommit: func(_ time.Duration, n int, _ error) {
			mu.Lock()
			groups = append(groups, n)
			mu.Unlock()
		},
		OnHold: func(d time.Duration, gained int) {
			mu.Lock()
			holds = append(holds, gained)
			mu.Unlock()
			if d <= 0 {
				t.Errorf("a hold of %v", d)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j := s.j
	begin := func(n int64) error {
		_, err := s.Sales().Begin(ctx, benchRequest(n))
		return err
	}
	// The first write's commit runs while two more arrive, and takes a
	// second more (a group is held as long as a commit takes).
	var second sync.WaitGroup
	err = j.exec1(ctx, "test", func(*sql.Tx) error {
		for n := range int64(2) {
			second.Add(1)
			go func() {
				defer second.Done()
				if err := begin(2 + n); err != nil {
					t.Error(err)
				}
			}()
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(j.writes) < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		if live >= 0 {
			s.HoldGroups(live, 3)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Once the committer has taken the two, a group not held commits
	// them at once; give it the time to (a held one never does).
	waitFor(t, "the committer to take the two writes", func() bool { return len(j.writes) == 0 })
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		committed := len(groups) > 1
		mu.Unlock()
		if committed {
			break
		}
	}
	if err := begin(4); err != nil { // the third of the held group
		t.Fatal(err)
	}
	second.Wait()
	// OnCommit is told after the writers are.
	waitFor(t, "the last commit's OnCommit", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, g := range groups {
			n += g
		}
		return n >= 4
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(groups), slices.Clone(holds)
}

// TestLoneWriterIsNeverHeld: one writer's writes, one after another, are
// never held, however long the hold may be: nothing arrives during its
// commits.
func TestLoneWriterIsNeverHeld(t *testing.T) {
	var holds atomic.Int64
	s, err := OpenDir(t.TempDir(), Options{Instance: store.Instance{Name: "test"}, GroupWait: time.Minute, GroupSize: 16,
		OnHold: func(time.Duration, int) { holds.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for n := range int64(20) {
		if _, err := s.Sales().Begin(context.Background(), benchRequest(n)); err != nil {
			t.Fatal(err)
		}
	}
	if n := holds.Load(); n != 0 {
		t.Fatalf("a lone writer's groups were held %d times", n)
	}
}
