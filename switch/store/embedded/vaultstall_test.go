package embedded

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/switch/store"
)

// TestVaultSyncLevel: a durable store commits the vault's writes (a
// one-time card number's use among them, and the use counts) with
// synchronous=FULL, as its journal's; otherwise NORMAL.
func TestVaultSyncLevel(t *testing.T) {
	for _, tc := range []struct {
		durable bool
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{true, 2}, {false, 1}} {
		s := open(t, tc.durable)
		for name, db := range map[string]*sql.DB{"writer": s.v.w, "reader": s.v.r, "use counts writer": s.v.countsDB.W} {
			var got int
			if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("durable %v: the vault's %s has synchronous %d, want %d", tc.durable, name, got, tc.want)
			}
		}
	}
}

// TestVaultReadsHonourTheContext: a read for a payment whose context has
// ended is not made.
func TestVaultReadsHonourTheContext(t *testing.T) {
	s := open(t, false)
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	if err := s.v.Insert(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Get": func() error { _, err := s.v.Get(ctx, dev.Token); return err },
		"Use": func() error { _, err := s.v.Use(ctx, dev.Token, now); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with its context cancelled: %v, want %v", name, err, context.Canceled)
		}
	}
}

// holdWriter takes SQLite's write lock on the file at path from another
// connection (another handle's or process's, in production) until the
// test ends.
func holdWriter(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.ExecContext(ctx, `ROLLBACK`)
		_ = conn.Close()
		_ = db.Close()
	})
}

// TestUseWhileTheWriterIsHeld: while a use count flush waits for the use
// counts file's writer (another handle's flush; SQLite's busy timeout is
// 10 s), payments still read and use device tokens, and a one-time
// token's use ends with its context.
func TestUseWhileTheWriterIsHeld(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, false)
	v := s.v
	now := time.Now()
	dev, one := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.OneTimeToken, now)
	if err := v.InsertMany(context.Background(), []store.TokenRecord{dev, one}); err != nil {
		t.Fatal(err)
	}
	holdWriter(t, filepath.Join(dir, "vault-uses.db"))
	if _, err := v.Use(context.Background(), dev.Token, now); err != nil {
		t.Fatal(err)
	}
	// The flush has taken the count and waits for the writer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v.counts.mu.Lock()
		n := len(v.counts.pending)
		v.counts.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the use count flush never started")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	tests := []struct {
		name string
		call func(ctx context.Context) (store.TokenRecord, error)
		uses int
		err  error
	}{
		{"device token use", func(ctx context.Context) (store.TokenRecord, error) { return v.Use(ctx, dev.Token, now) }, 2, nil},
		{"device token read", func(ctx context.Context) (store.TokenRecord, error) { return v.Get(ctx, dev.Token) }, 2, nil},
		{"one-time token use", func(ctx context.Context) (store.TokenRecord, error) { return v.Use(ctx, one.Token, now) }, 0, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			rec, err := tc.call(ctx)
			if err == nil && rec.UseCount != tc.uses {
				err = errors.New("wrong use count")
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s while the writer is held: %v, want %v", tc.name, err, tc.err)
			}
		case <-time.After(7*time.Second - time.Since(start)):
			t.Fatalf("%s waited for the use count flush", tc.name)
		}
	}
}

// TestSetStatusCountsAFlushInProgress: a status change made while a
// flush is writing the counts it took answers the use count with them.
func TestSetStatusCountsAFlushInProgress(t *testing.T) {
	s := open(t, false)
	v := s.v
	ctx := context.Background()
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	dev.UseCount = 3
	if err := v.Insert(ctx, dev); err != nil {
		t.Fatal(err)
	}
	// One use pending (set directly: no flush is armed), then taken by
	// a flush that has not written it yet.
	v.counts.mu.Lock()
	v.counts.pending[dev.Token] = pendingUses{n: 1, last: now.UnixMilli()}
	v.counts.mu.Unlock()
	taken := v.counts.take(false)
	defer v.counts.putBack(taken)
	if rec, err := v.SetStatus(ctx, dev.Token, store.TokenSuspended, now); err != nil || rec.UseCount != 4 {
		t.Fatalf("suspending during a flush: count %d, %v; want 4", rec.UseCount, err)
	}
}

// TestFailedFlushIsLoggedAndKept: a use count flush that fails is logged
// (once, not per attempt), its counts stay in every read, and they are
// written once the file takes them again.
func TestFailedFlushIsLoggedAndKept(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	v := s.v
	ctx := context.Background()
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	if err := v.Insert(ctx, dev); err != nil {
		t.Fatal(err)
	}
	other := sqlFile(t, filepath.Join(dir, "vault-uses.db"))
	// The table goes, then a use is counted in memory: its flush fails.
	if _, err := other.Exec(`ALTER TABLE use_counts RENAME TO use_counts_away`); err != nil {
		t.Fatal(err)
	}
	if _, err := v.counts.add(dev.Token, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed flush's log line", func() bool { return logs.FilterMessageSnippet("not written").Len() > 0 })
	if got := v.counts.withPending(store.TokenRecord{Token: dev.Token}); got.UseCount != 1 {
		t.Fatalf("after a failed flush: %d uses pending, want 1", got.UseCount)
	}
	time.Sleep(300 * time.Millisecond) // several attempts, backing off
	if n := logs.FilterMessageSnippet("not written").Len(); n != 1 {
		t.Errorf("the failing flush was logged %d times, want once", n)
	}
	if _, err := other.Exec(`ALTER TABLE use_counts_away RENAME TO use_counts`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush after the failures", func() bool { return logs.FilterMessageSnippet("written again").Len() > 0 })
	if got := v.counts.withPending(store.TokenRecord{Token: dev.Token}); got.UseCount != 0 {
		t.Fatalf("after the flush: %d uses pending, want 0", got.UseCount)
	}
	if got, err := v.Get(ctx, dev.Token); err != nil || got.UseCount != 1 {
		t.Fatalf("after the flush: use count %d, %v; want 1", got.UseCount, err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFlushed waits until v has no use of token pending (flushed).
func waitFlushed(t *testing.T, v *vault, token string) {
	t.Helper()
	waitFor(t, "the use counts' flush", func() bool {
		return v.counts.withPending(store.TokenRecord{Token: token}).UseCount == 0
	})
}

// deviceTokenVault opens a vault in a directory of its own and issues one
// device token into it.
func deviceTokenVault(t *testing.T) (dir string, v *vault, dev store.TokenRecord) {
	t.Helper()
	dir = t.TempDir()
	v = openAt(t, dir, false).v
	dev = vaultToken(1, store.DeviceToken, time.Now())
	if err := v.Insert(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	return dir, v, dev
}

// TestFlushRetryBacksOff: failed flushes wait longer each time, up to
// maxFlushRetry, are logged once per flushFailureLogEvery, and a success
// ends it.
func TestFlushRetryBacksOff(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := flushLog{log: zap.New(core)}
	start := time.Now()
	fail := errors.New("disk I/O error")
	// The k-th failure in a row waits 2^k flush intervals, up to the cap.
	backoff := func(k uint) time.Duration { return min(useCountFlush<<k, maxFlushRetry) }
	steps := []struct {
		err   error
		at    time.Duration
		retry time.Duration
		lines int // logged so far
	}{
		{fail, 0, backoff(1), 1},
		{fail, time.Second, backoff(2), 1},
		{fail, 2 * time.Second, backoff(3), 1},
		{fail, 3 * time.Second, backoff(4), 1},
		{fail, 4 * time.Second, backoff(5), 1},
		{fail, 5 * time.Second, backoff(6), 1},
		{fail, 6 * time.Second, backoff(7), 1},
		{fail, 7 * time.Second, maxFlushRetry, 1},
		{fail, 8 * time.Second, maxFlushRetry, 1},
		{fail, flushFailureLogEvery, maxFlushRetry, 2},
		{nil, flushFailureLogEvery + time.Second, 0, 3},
		{fail, flushFailureLogEvery + 2*time.Second, backoff(1), 4},
	}
	for i, st := range steps {
		if got := l.flushed(st.err, start.Add(st.at)); got != st.retry || logs.Len() != st.lines {
			t.Errorf("step %d: retry in %v, %d lines; want %v, %d", i, got, logs.Len(), st.retry, st.lines)
		}
	}
}
