package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

func vaultToken(i int, kind store.TokenKind, now time.Time) store.TokenRecord {
	rec := store.TokenRecord{Token: fmt.Sprintf("9999%012d", i), PANKey: "pan-data", PANKeyVersion: 1,
		PANCiphertext: []byte("sealed"), PANHash: []byte("hash"), MaskedPAN: "941000******0005", CardExpiry: "3012",
		ExpiresAt: now.Add(time.Hour), Status: store.TokenActive, Kind: kind, CreatedAt: now, UpdatedAt: now}
	if kind == store.OneTimeToken {
		rec.MaxUses = 1
	}
	return rec
}

// TestUseBatch: uses recorded in one transaction get the answers they
// would get one by one, in order.
func TestUseBatch(t *testing.T) {
	s := open(t, true)
	v := s.v
	ctx := context.Background()
	now := time.Now()
	dev, one, suspended := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.OneTimeToken, now), vaultToken(3, store.DeviceToken, now)
	suspended.Status = store.TokenSuspended
	if err := v.InsertMany(ctx, []store.TokenRecord{dev, one, suspended}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		now   time.Time
		uses  int   // the use count after it
		err   error // nil or ErrNotUsable
	}{
		{dev.Token, now, 1, nil},
		{one.Token, now, 1, nil},
		{one.Token, now, 0, store.ErrNotUsable}, // used by the one before
		{dev.Token, now, 2, nil},
		{suspended.Token, now, 0, store.ErrNotUsable},
		{"9999000000000099", now, 0, store.ErrNotUsable},           // never issued
		{dev.Token, now.Add(2 * time.Hour), 0, store.ErrNotUsable}, // expired
		{dev.Token, now, 3, nil},
	}
	batch := make([]useRequest, len(tests))
	for i, tc := range tests {
		batch[i] = useRequest{token: tc.token, now: tc.now.UnixMilli(), answer: make(chan useAnswer, 1)}
	}
	v.recordBatch(batch)
	for i, tc := range tests {
		a := <-batch[i].answer
		if !errors.Is(a.err, tc.err) || (tc.err == nil && (a.rec.Token != tc.token || a.rec.UseCount != tc.uses)) {
			t.Errorf("use %d of %s: count %d, err %v; want count %d, err %v", i, tc.token[:6], a.rec.UseCount, a.err, tc.uses, tc.err)
		}
	}
	for tok, want := range map[string]int{dev.Token: 3, one.Token: 1, suspended.Token: 0} {
		if got, err := v.Get(ctx, tok); err != nil || got.UseCount != want {
			t.Errorf("%s: stored use count %d (%v), want %d", tok[:6], got.UseCount, err, want)
		}
	}
}

// TestConcurrentUses: many payments at once through one handle, each
// counted once, each told its own count; a one-time token used by all of
// them succeeds once.
func TestConcurrentUses(t *testing.T) {
	s := open(t, true)
	ctx := context.Background()
	now := time.Now()
	const workers, each = 32, 20
	recs := []store.TokenRecord{vaultToken(workers, store.OneTimeToken, now)}
	for w := range workers {
		recs = append(recs, vaultToken(w, store.DeviceToken, now))
	}
	if err := s.Tokens().InsertMany(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	oneTime := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec, err := s.Tokens().Use(ctx, recs[w+1].Token, now)
				if err != nil || rec.UseCount != i+1 {
					t.Errorf("worker %d use %d: count %d, %v", w, i, rec.UseCount, err)
					return
				}
			}
			_, err := s.Tokens().Use(ctx, recs[0].Token, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				oneTime++
			case !errors.Is(err, store.ErrNotUsable):
				t.Errorf("one-time use: %v", err)
			}
		}()
	}
	wg.Wait()
	if oneTime != 1 {
		t.Fatalf("the one-time token was used %d times", oneTime)
	}
	for _, rec := range recs[1:] {
		if got, _ := s.Tokens().Get(ctx, rec.Token); got.UseCount != each {
			t.Fatalf("%s: use count %d, want %d", rec.Token[:6], got.UseCount, each)
		}
	}
}

// TestUseAfterClose: a use after Close is refused, never left waiting.
func TestUseAfterClose(t *testing.T) {
	s, err := OpenDir(t.TempDir(), Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	v := s.Tokens()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Use(ctx, "9999000000000001", time.Now()); !errors.Is(err, errVaultClosed) {
		t.Fatalf("use after close: %v", err)
	}
}

// TestUnlimitedUseCounts: a device token's uses, counted in memory, are
// in every read at once and in the file after a flush and after Close; a
// suspension refuses the next use at once even with uses pending.
func TestUnlimitedUseCounts(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	v := s.Tokens()
	ctx := context.Background()
	now := time.Now()
	dev, other := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.DeviceToken, now)
	if err := v.InsertMany(ctx, []store.TokenRecord{dev, other}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if rec, err := v.Use(ctx, dev.Token, now.Add(time.Duration(i)*time.Millisecond)); err != nil || rec.UseCount != i+1 {
			t.Fatalf("use %d: count %d, %v", i, rec.UseCount, err)
		}
	}
	if got, err := v.Get(ctx, dev.Token); err != nil || got.UseCount != 3 || got.UpdatedAt.UnixMilli() != now.Add(2*time.Millisecond).UnixMilli() {
		t.Fatalf("read with uses pending: count %d, updated %v, %v", got.UseCount, got.UpdatedAt, err)
	}
	// Flushed within useCountFlush: the row itself holds them, and reads
	// do not add them twice.
	waitFlushed(t, s.v, dev.Token)
	if got, err := v.Get(ctx, dev.Token); err != nil || got.UseCount != 3 {
		t.Fatalf("read after the flush: count %d, %v", got.UseCount, err)
	}
	if _, err := v.Use(ctx, dev.Token, now); err != nil {
		t.Fatal(err)
	}
	if rec, err := v.SetStatus(ctx, dev.Token, store.TokenSuspended, now); err != nil || rec.UseCount != 4 {
		t.Fatalf("suspending: count %d, %v", rec.UseCount, err)
	}
	if _, err := v.Use(ctx, dev.Token, now); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("use right after a suspension: %v", err)
	}
	if _, err := v.Use(ctx, other.Token, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenDir(dir, Options{Instance: store.Instance{Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for tok, want := range map[string]int{dev.Token: 4, other.Token: 1} {
		if got, err := s.Tokens().Get(ctx, tok); err != nil || got.UseCount != want {
			t.Errorf("%s after Close: use count %d (%v), want %d", tok[:6], got.UseCount, err, want)
		}
	}
}

// TestStatusAcrossHandles: two handles on one vault (two instances); a
// device token whose record one has read and kept is refused by it at
// once when the other suspends or deletes it, and used again once resumed.
func TestStatusAcrossHandles(t *testing.T) {
	dir := t.TempDir()
	handle := func(name string) store.Tokens {
		s, err := OpenDir(dir, Options{Instance: store.Instance{Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s.Tokens()
	}
	a, b := handle("a"), handle("b")
	ctx := context.Background()
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	if err := a.Insert(ctx, dev); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		status store.TokenStatus // set through b first ("": none)
		want   error
	}{
		{"", nil},
		{store.TokenSuspended, store.ErrNotUsable},
		{store.TokenActive, nil},
		{store.TokenDeleted, store.ErrNotUsable},
	}
	for _, st := range steps {
		if st.status != "" {
			if _, err := b.SetStatus(ctx, dev.Token, st.status, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Use(ctx, dev.Token, now); !errors.Is(err, st.want) {
			t.Fatalf("use through a after %q through b: %v, want %v", st.status, err, st.want)
		}
	}
}
