package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

func token(tok string, kind store.TokenKind) store.TokenRecord {
	r := store.TokenRecord{
		Token: tok, PANKey: "pan-data", PANKeyVersion: 1, PANCiphertext: []byte{1, 2, 3},
		PANHash: []byte("hash-" + tok[:4]), HashVersion: 1, MaskedPAN: "941000******0005", CardExpiry: "3012",
		ExpiresAt: t0.Add(time.Hour), Status: store.TokenActive, Kind: kind, CreatedAt: t0, UpdatedAt: t0,
		Domain: store.Domain{Merchants: []string{"MERCHANT0000001"}},
	}
	if kind == store.OneTimeToken {
		r.MaxUses = 1
		r.ExpiresAt = t0.Add(3 * time.Minute)
	}
	return r
}

// testTokensInsertGetAndStatus: a token is stored once (ErrDuplicate),
// read back whole, moved through its statuses until deleted (ErrFinal),
// found by its PAN hash, counted; bulk inserts are one step.
func testTokensInsertGetAndStatus(t *testing.T, open Open) {
	s := as(open, instA).Tokens()
	r := token(tokens.Device, store.DeviceToken)
	if err := s.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := as(open, instB).Tokens().Insert(ctx, r); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate insert: %v", err)
	}
	got, err := s.Get(ctx, r.Token)
	if err != nil || got.MaskedPAN != r.MaskedPAN || got.Domain.Merchants[0] != "MERCHANT0000001" || !got.ExpiresAt.Equal(r.ExpiresAt) ||
		got.Kind != store.DeviceToken || string(got.PANCiphertext) != "\x01\x02\x03" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, tokens.Unknown); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing token: %v", err)
	}
	steps := []struct {
		to      store.TokenStatus
		wantErr error
	}{{store.TokenSuspended, nil}, {store.TokenActive, nil}, {store.TokenDeleted, nil}, {store.TokenActive, store.ErrFinal}, {store.TokenSuspended, store.ErrFinal}}
	for _, st := range steps {
		got, err := s.SetStatus(ctx, r.Token, st.to, t0.Add(time.Minute))
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("SetStatus(%s) err = %v, want %v", st.to, err, st.wantErr)
		}
		if err == nil && got.Status != st.to {
			t.Fatalf("status %s, want %s", got.Status, st.to)
		}
	}
	if _, err := s.SetStatus(ctx, tokens.Unknown, store.TokenSuspended, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status of a missing token: %v", err)
	}
	if hits, err := s.FindByPANHash(ctx, r.PANHash); err != nil || len(hits) != 1 {
		t.Fatalf("FindByPANHash = %d, %v", len(hits), err)
	}
	batch := []store.TokenRecord{token(tokens.BatchA, store.DeviceToken), token(tokens.BatchB, store.OneTimeToken)}
	if err := s.InsertMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	bad := []store.TokenRecord{token(tokens.BatchBad, store.DeviceToken), token(tokens.BatchA, store.DeviceToken)}
	if err := s.InsertMany(ctx, bad); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("batch with a duplicate: %v", err)
	}
	if _, err := s.Get(ctx, tokens.BatchBad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed batch was applied in part: %v", err)
	}
	if n, err := s.Count(ctx); err != nil || n != 3 {
		t.Fatalf("count %d %v", n, err)
	}
}

// testTokenUseRules: a device token is used any number of times while
// active and unexpired; a one-time token once; a suspended or expired one
// never (ErrNotUsable).
func testTokenUseRules(t *testing.T, open Open) {
	s := as(open, instA).Tokens()
	dev, one := token(tokens.Device, store.DeviceToken), token(tokens.OneTime, store.OneTimeToken)
	for _, r := range []store.TokenRecord{dev, one} {
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
	if _, err := s.Use(ctx, one.Token, t0); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("second use of a one-time token: %v", err)
	}
	if _, err := s.Use(ctx, dev.Token, t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("use after expiry: %v", err)
	}
	_, _ = s.SetStatus(ctx, dev.Token, store.TokenSuspended, t0)
	if _, err := s.Use(ctx, dev.Token, t0); !errors.Is(err, store.ErrNotUsable) {
		t.Fatalf("use while suspended: %v", err)
	}
	if _, err := s.Use(ctx, tokens.Unknown, t0); !errors.Is(err, store.ErrNotUsable) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use of a missing token: %v", err)
	}
}

// testOneTimeTokenUsedOnce races 64 goroutines on two handles (two switch
// instances sharing one vault) over one one-time token: one use succeeds.
func testOneTimeTokenUsedOnce(t *testing.T, open Open) {
	a, b := as(open, instA).Tokens(), as(open, instB).Tokens()
	for round := 0; round < 5; round++ {
		// One fresh token per round: the one-time fixture token with its
		// last two digits replaced by the round.
		tok := token(fmt.Sprintf("%s%02d", tokens.OneTime[:len(tokens.OneTime)-2], 10+round), store.OneTimeToken)
		if err := a.Insert(ctx, tok); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(s store.Tokens) {
				defer wg.Done()
				<-start
				if _, err := s.Use(ctx, tok.Token, t0); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, store.ErrNotUsable) {
					t.Error(err)
				}
			}([]store.Tokens{a, b}[i%2])
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d uses of a one-time token succeeded", round, wins.Load())
		}
	}
}
