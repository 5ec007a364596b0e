package vault

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openTest(t testing.TB) *SQLite {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func record(token string, kind Kind) Record {
	r := Record{
		Token: token, PANKey: "pan-data", PANKeyVersion: 1, PANCiphertext: []byte{1, 2, 3},
		PANHash: []byte("hash-" + token[:4]), HashVersion: 1, MaskedPAN: "941000******0005", CardExpiry: "3012",
		ExpiresAt: t0.Add(time.Hour), Status: Active, Kind: kind, CreatedAt: t0, UpdatedAt: t0,
		Domain: Domain{Merchants: []string{"MERCHANT0000001"}},
	}
	if kind == OneTime {
		r.MaxUses = 1
		r.ExpiresAt = t0.Add(3 * time.Minute)
	}
	return r
}

func TestInsertGetAndStatus(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := record("9999000000000001", Device)
	if err := s.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, r); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate insert: %v", err)
	}
	got, err := s.Get(ctx, r.Token)
	if err != nil || got.MaskedPAN != r.MaskedPAN || got.Domain.Merchants[0] != "MERCHANT0000001" || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, "9999000000000019"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing token: %v", err)
	}
	steps := []struct {
		to      Status
		wantErr error
	}{{Suspended, nil}, {Active, nil}, {Deleted, nil}, {Active, ErrFinal}, {Suspended, ErrFinal}}
	for _, st := range steps {
		got, err := s.SetStatus(ctx, r.Token, st.to, t0.Add(time.Minute))
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("SetStatus(%s) err = %v, want %v", st.to, err, st.wantErr)
		}
		if err == nil && got.Status != st.to {
			t.Fatalf("status %s, want %s", got.Status, st.to)
		}
	}
	if hits, err := s.FindByPANHash(ctx, r.PANHash); err != nil || len(hits) != 1 {
		t.Fatalf("FindByPANHash = %d, %v", len(hits), err)
	}
}

func TestUseRules(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	dev, one := record("9999000000000001", Device), record("9999000000000002", OneTime)
	for _, r := range []Record{dev, one} {
		if err := s.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if got, err := s.Use(ctx, dev.Token, t0); err != nil || got.UseCount != i+1 {
			t.Fatalf("device use %d: %+v %v", i, got.UseCount, err)
		}
	}
	if _, err := s.Use(ctx, one.Token, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Use(ctx, one.Token, t0); !errors.Is(err, ErrNotUsable) {
		t.Fatalf("second use of a one-time token: %v", err)
	}
	if _, err := s.Use(ctx, dev.Token, t0.Add(2*time.Hour)); !errors.Is(err, ErrNotUsable) {
		t.Fatalf("use after expiry: %v", err)
	}
	_, _ = s.SetStatus(ctx, dev.Token, Suspended, t0)
	if _, err := s.Use(ctx, dev.Token, t0); !errors.Is(err, ErrNotUsable) {
		t.Fatalf("use while suspended: %v", err)
	}
}

// TestOneTimeUseIsAtomic races 64 goroutines on two store handles (as two
// switch instances sharing one vault file) over one one-time token.
func TestOneTimeUseIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	a, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		tok := record("99990000000001"+string(rune('0'+round))+"0", OneTime)
		if err := a.Insert(ctx, tok); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(s Store) {
				defer wg.Done()
				<-start
				if _, err := s.Use(ctx, tok.Token, t0); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrNotUsable) {
					t.Error(err)
				}
			}([]Store{a, b}[i%2])
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d uses of a one-time token succeeded", round, wins.Load())
		}
	}
}

func TestMalformedRecordIsAnError(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := record("9999000000000001", Device)
	if err := s.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE tokens SET status = 'weird'`, `UPDATE tokens SET status = 'active', domain = '{bad'`} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, r.Token); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: Get err = %v, want a malformed-record error", q, err)
		}
	}
}
