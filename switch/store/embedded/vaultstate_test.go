package embedded

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// TestDeviceTokenStateKept: a device token's uses are answered from the
// state last read, at most maxStateAge (a change made to the file from
// outside the process, which nothing tells this handle of, is seen that
// late at most); a status change through the store is seen at once, and
// the use counts run on across flushes, which add to the kept state.
func TestDeviceTokenStateKept(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, false)
	v := s.v
	ctx := context.Background()
	now := time.Now()
	dev, other := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.DeviceToken, now)
	if err := v.InsertMany(ctx, []store.TokenRecord{dev, other}); err != nil {
		t.Fatal(err)
	}
	use := func(token string, at time.Time, wantCount int, wantErr error) {
		t.Helper()
		rec, err := v.Use(ctx, token, at)
		if !errors.Is(err, wantErr) || (err == nil && rec.UseCount != wantCount) {
			t.Fatalf("use of %s at +%v: count %d, %v; want count %d, %v", token[:6], at.Sub(now), rec.UseCount, err, wantCount, wantErr)
		}
	}
	use(dev.Token, now, 1, nil)
	use(other.Token, now, 1, nil)

	// The flush adds the counts it wrote to the kept state: the next use
	// counts on from there, not from the state read before.
	waitFlushed(t, v, dev.Token)
	use(dev.Token, now, 2, nil)

	// Suspended behind the store's back: the kept state answers until it
	// is maxStateAge old, then the file does.
	outside, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	if _, err := outside.ExecContext(ctx, `UPDATE tokens SET status = 'suspended' WHERE token = ?`, dev.Token); err != nil {
		t.Fatal(err)
	}
	use(dev.Token, now.Add(maxStateAge-time.Millisecond), 3, nil)
	use(dev.Token, now.Add(maxStateAge), 0, store.ErrNotUsable)

	// Through the store, a suspension is seen by the very next use, kept
	// state or not.
	use(other.Token, now, 2, nil)
	if _, err := v.SetStatus(ctx, other.Token, store.TokenSuspended, now); err != nil {
		t.Fatal(err)
	}
	use(other.Token, now, 0, store.ErrNotUsable)
	if _, err := v.SetStatus(ctx, other.Token, store.TokenActive, now); err != nil {
		t.Fatal(err)
	}
	use(other.Token, now, 3, nil)
}

// TestGetKeepsTheState: a payment reads a device token (Get: its rules)
// and then uses it; the use is answered from the state that read kept,
// without reading the file again, even when the payment's time was taken
// just before the read.
func TestGetKeepsTheState(t *testing.T) {
	dir, v, dev := deviceTokenVault(t)
	ctx := context.Background()
	now := time.Now() // the payment's time, then its read
	if _, err := v.Get(ctx, dev.Token); err != nil {
		t.Fatal(err)
	}
	// Suspended behind the store's back: only a use that reads the file
	// sees it.
	if _, err := sqlFile(t, filepath.Join(dir, "vault.db")).ExecContext(ctx,
		`UPDATE tokens SET status = 'suspended' WHERE token = ?`, dev.Token); err != nil {
		t.Fatal(err)
	}
	if rec, err := v.Use(ctx, dev.Token, now); err != nil || rec.UseCount != 1 {
		t.Fatalf("use after the read: count %d, %v; want 1 from the kept state", rec.UseCount, err)
	}
	if _, err := v.Use(ctx, dev.Token, now.Add(2*maxStateAge)); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("use once the kept state is old: %v, want %v", err, store.ErrNotUsable)
	}
}

// TestStatusGenerationPerFile: handles on one file share its generation,
// whatever the path they opened it by; another file has its own.
func TestStatusGenerationPerFile(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	a, b, c := openAt(t, dir, false), openAt(t, filepath.Join(dir, ".", "."), false), openAt(t, elsewhere, false)
	if a.v.states.gen != b.v.states.gen {
		t.Error("two handles on one vault file have generations of their own")
	}
	if a.v.states.gen == c.v.states.gen {
		t.Error("two vault files share a generation")
	}
}
