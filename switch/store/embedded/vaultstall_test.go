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
// one-time card number's use among them) with synchronous=FULL, as its
// journal's; otherwise NORMAL.
func TestVaultSyncLevel(t *testing.T) {
	for _, tc := range []struct {
		durable bool
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{true, 2}, {false, 1}} {
		s := open(t, tc.durable)
		for name, db := range map[string]*sql.DB{"writer": s.v.w, "reader": s.v.r} {
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

// holdVaultWriter takes SQLite's write lock on the vault file in dir from
// another connection (another process, in production) until the test
// ends.
func holdVaultWriter(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vault.db"))
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

// TestUseWhileTheWriterIsHeld: while a use count fold waits for the
// vault's writer (SQLite's busy timeout is 10 s), payments still read and
// use device tokens, and a one-time token's use ends with its context.
func TestUseWhileTheWriterIsHeld(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, false)
	v := s.v
	now := time.Now()
	dev, one := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.OneTimeToken, now)
	if err := v.InsertMany(context.Background(), []store.TokenRecord{dev, one}); err != nil {
		t.Fatal(err)
	}
	holdVaultWriter(t, dir)
	if _, err := v.Use(context.Background(), dev.Token, now); err != nil {
		t.Fatal(err)
	}
	// The count is appended, and its fold waits for the writer.
	waitFor(t, "the use count's fold", func() bool { return v.folding.Load() })
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
			t.Fatalf("%s waited for the use count fold", tc.name)
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

// TestFailedFlushIsLoggedAndKept: a use count append to the log, or a
// fold into the tokens rows, that fails is logged (once, not per
// attempt), its counts stay in every read, and they are written once the
// file takes them again.
func TestFailedFlushIsLoggedAndKept(t *testing.T) {
	for _, tc := range []struct {
		step, file, table string // the step failing: its file's table goes away
	}{
		{"append", "vault-uses.db", "use_log"},
		{"fold", "vault.db", "tokens"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := t.TempDir()
			core, logs := observer.New(zapcore.InfoLevel)
			s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}, Logger: zap.New(core), foldEvery: testFold})
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
			other := sqlFile(t, filepath.Join(dir, tc.file))
			// The table goes, then a use is counted in memory: its step fails.
			if _, err := other.Exec(`ALTER TABLE ` + tc.table + ` RENAME TO away`); err != nil {
				t.Fatal(err)
			}
			if _, err := v.counts.add(dev.Token, now.UnixMilli()); err != nil {
				t.Fatal(err)
			}
			failed := func() *observer.ObservedLogs {
				return logs.FilterMessageSnippet("not written").FilterField(zap.String("step", tc.step))
			}
			waitFor(t, "the failed "+tc.step+"'s log line", func() bool { return failed().Len() > 0 })
			if got := v.counts.withPending(store.TokenRecord{Token: dev.Token}); got.UseCount != 1 {
				t.Fatalf("after a failed %s: %d uses pending, want 1", tc.step, got.UseCount)
			}
			time.Sleep(300 * time.Millisecond) // several attempts, backing off
			if n := failed().Len(); n != 1 {
				t.Errorf("the failing %s was logged %d times, want once", tc.step, n)
			}
			if _, err := other.Exec(`ALTER TABLE away RENAME TO ` + tc.table); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the "+tc.step+" after the failures", func() bool { return logs.FilterMessageSnippet("written again").Len() > 0 })
			waitFor(t, "the fold", func() bool { return v.counts.withPending(store.TokenRecord{Token: dev.Token}).UseCount == 0 })
			if got, err := v.Get(ctx, dev.Token); err != nil || got.UseCount != 1 {
				t.Fatalf("after the fold: use count %d, %v; want 1", got.UseCount, err)
			}
		})
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
