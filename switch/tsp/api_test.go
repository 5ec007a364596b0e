package tsp

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/vault"
)

func TestBearerMatcher(t *testing.T) {
	ok := BearerMatcher("s3cret")
	for header, want := range map[string]bool{
		"Bearer s3cret": true, "Bearer s3cre": false, "Bearer s3cretX": false, "bearer s3cret": false,
		"s3cret": false, "": false, "Bearer ": false,
	} {
		if got := ok(header); got != want {
			t.Errorf("Authorization %q: %v, want %v", header, got, want)
		}
	}
	if BearerMatcher("")("Bearer ") {
		t.Error("an empty bearer token matched")
	}
}

// TestShowReportsUsedAndExpired: the API (tokenctl show) says a consumed
// one-time token is used and a lapsed token is expired, not active.
func TestShowReportsUsedAndExpired(t *testing.T) {
	s, _ := newService(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	one, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: vault.OneTime})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: vault.Device})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.API("tok"))
	defer srv.Close()
	c := &Client{Admin: strings.TrimPrefix(srv.URL, "http://"), Bearer: "tok"}
	status := func(token string) vault.Status {
		t.Helper()
		got, err := c.Get(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	if got := status(one.Token); got != vault.Active {
		t.Errorf("fresh one-time token: %s", got)
	}
	if _, err := s.Detokenize(ctx, one.Token, Use{}); err != nil {
		t.Fatal(err)
	}
	if got := status(one.Token); got != StatusUsed {
		t.Errorf("consumed one-time token: %s, want used", got)
	}
	now = now.Add(10 * 365 * 24 * time.Hour)
	if got := status(dev.Token); got != StatusExpired {
		t.Errorf("lapsed device token: %s, want expired", got)
	}
}
