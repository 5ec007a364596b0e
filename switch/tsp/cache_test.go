package tsp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// countingVault counts the vault reads and writes the payment path makes.
type countingVault struct {
	store.Tokens
	gets, uses atomic.Int32
}

func (v *countingVault) Get(ctx context.Context, token string) (store.TokenRecord, error) {
	v.gets.Add(1)
	return v.Tokens.Get(ctx, token)
}

func (v *countingVault) Use(ctx context.Context, token string, now time.Time) (store.TokenRecord, error) {
	v.uses.Add(1)
	return v.Tokens.Use(ctx, token, now)
}

// TestDetokenizeCachedDomainSkipsVaultRead: once a token's domain is
// known, a payment costs one vault write (Use) and no read.
func TestDetokenizeCachedDomainSkipsVaultRead(t *testing.T) {
	s, v := newService(t)
	cv := &countingVault{Tokens: v}
	s.vault = cv
	ctx := context.Background()
	rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.DeviceToken,
		Domain: store.Domain{Merchants: []string{"MERCHANT0000001"}}})
	if err != nil {
		t.Fatal(err)
	}
	use := Use{MerchantID: "MERCHANT0000001", EntryMode: "051"}
	for i := range 3 {
		got, err := s.Detokenize(ctx, rec.Token, use)
		if err != nil || got.PAN != card {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	if g, u := cv.gets.Load(), cv.uses.Load(); g != 1 || u != 3 {
		t.Fatalf("3 payments made %d vault reads and %d uses, want 1 read and 3 uses", g, u)
	}
	if got, _ := v.Get(ctx, rec.Token); got.UseCount != 3 {
		t.Fatalf("use count %d, want 3", got.UseCount)
	}
}

// TestCachedTokenRulesAcrossInstances: two token services over one vault
// (two switch instances), both with the token's domain cached; what one
// does (suspend, delete, use a one-time number) the other enforces at
// once, with the same answer as without a cache.
func TestCachedTokenRulesAcrossInstances(t *testing.T) {
	a, v := newService(t)
	b, err := New(a.cfg, v, a.hsm, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	chip := Use{MerchantID: "MERCHANT0000001", EntryMode: "051"}
	issue := func(kind store.TokenKind, d store.Domain) string {
		rec, err := a.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: kind, Domain: d})
		if err != nil {
			t.Fatal(err)
		}
		return rec.Token
	}
	dev := issue(store.DeviceToken, store.Domain{Merchants: []string{"MERCHANT0000001"}})
	one := issue(store.OneTimeToken, store.Domain{Merchants: []string{"MERCHANT0000001"}})
	other := Use{MerchantID: "OTHER", EntryMode: "051"}
	steps := []struct {
		name  string
		on    *Service
		token string
		use   Use
		at    time.Time
		do    func() // before the step, through instance a
		want  error
	}{
		{name: "a caches the device token", on: a, token: dev, use: chip, want: nil},
		{name: "b caches the device token", on: b, token: dev, use: chip, want: nil},
		{name: "b outside the domain", on: b, token: dev, use: other, want: ErrOutsideDomain},
		{name: "suspended through a, b refuses", on: b, token: dev, use: chip, want: ErrSuspended,
			do: func() { mustStatus(t, a, dev, store.TokenSuspended) }},
		{name: "suspended outside the domain: suspension first", on: b, token: dev, use: other, want: ErrSuspended},
		{name: "resumed through a, b accepts", on: b, token: dev, use: chip, want: nil,
			do: func() { mustStatus(t, a, dev, store.TokenActive) }},
		{name: "after the card's expiry", on: b, token: dev, use: chip, at: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), want: ErrTokenExpired},
		{name: "deleted through a, b refuses", on: b, token: dev, use: chip, want: ErrUnknownToken,
			do: func() { mustStatus(t, a, dev, store.TokenDeleted) }},
		{name: "deleted outside the domain", on: b, token: dev, use: other, want: ErrUnknownToken},
		{name: "b caches the one-time number's domain", on: b, token: one, use: other, want: ErrOutsideDomain},
		{name: "a uses the one-time number", on: a, token: one, use: chip, want: nil},
		{name: "b cannot use it again", on: b, token: one, use: chip, want: ErrTokenUsed},
		{name: "nor can a", on: a, token: one, use: chip, want: ErrTokenUsed},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		at := now
		if !st.at.IsZero() {
			at = st.at
		}
		st.on.now = func() time.Time { return at }
		got, err := st.on.Detokenize(ctx, st.token, st.use)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
		if err == nil && got.PAN != card {
			t.Fatalf("%s: detokenized to another card", st.name)
		}
		if _, cached := st.on.domains.get(st.token); !cached && st.token == dev {
			t.Fatalf("%s: the device token's domain is not cached", st.name)
		}
	}
}

func mustStatus(t *testing.T, s *Service, token string, status store.TokenStatus) {
	t.Helper()
	if _, err := s.SetStatus(context.Background(), token, status); err != nil {
		t.Fatal(err)
	}
}

func TestDomainCacheBounded(t *testing.T) {
	tests := []struct {
		size, puts, want int
	}{
		{size: 4, puts: 3, want: 3},
		{size: 4, puts: 100, want: 4},
		{size: 0, puts: 10, want: 10}, // the default bound
		{size: -1, puts: 10, want: 0}, // off
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("size %d puts %d", tc.size, tc.puts), func(t *testing.T) {
			c := newDomainCache(tc.size)
			for i := range tc.puts {
				c.put(fmt.Sprintf("tok%d", i), tokenRules{})
			}
			c.put(fmt.Sprintf("tok%d", tc.puts-1), tokenRules{}) // again: no eviction
			if got := c.len(); got != tc.want {
				t.Fatalf("%d entries, want %d", got, tc.want)
			}
			if _, ok := c.get(fmt.Sprintf("tok%d", tc.puts-1)); ok != (tc.want > 0) {
				t.Fatalf("last token cached %v", ok)
			}
		})
	}
}

// TestUseLimitless: a device token is limitless and a one-time number is
// not, whether its rules are cached already or read from the vault (and
// then cached); a token the vault does not know, or a deleted one, is not
// (its sale is looked for first, and Detokenize refuses it).
func TestUseLimitless(t *testing.T) {
	s, v := newService(t)
	ctx := context.Background()
	chip := Use{MerchantID: "MERCHANT0000001", EntryMode: "051"}
	for _, tc := range []struct {
		name         string
		kind         store.TokenKind
		used, delete bool
		want         bool
	}{
		{"device token, first met", store.DeviceToken, false, false, true},
		{"device token, used before", store.DeviceToken, true, false, true},
		{"one-time number, first met", store.OneTimeToken, false, false, false},
		{"one-time number, used before", store.OneTimeToken, true, false, false},
		{"deleted device token", store.DeviceToken, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: tc.kind})
			if err != nil {
				t.Fatal(err)
			}
			if tc.used {
				if _, err := s.Detokenize(ctx, rec.Token, chip); err != nil {
					t.Fatal(err)
				}
			}
			if tc.delete {
				if _, err := v.SetStatus(ctx, rec.Token, store.TokenDeleted, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			cached := s.domains.len()
			if got := s.UseLimitless(ctx, rec.Token); got != tc.want {
				t.Errorf("limitless %v, want %v", got, tc.want)
			}
			if _, ok := s.domains.get(rec.Token); ok == tc.delete {
				t.Errorf("rules cached %v after UseLimitless (cached before: %d tokens)", ok, cached)
			}
		})
	}
	if s.UseLimitless(ctx, "9999000000000000") {
		t.Error("a token the vault does not know is limitless")
	}
}
