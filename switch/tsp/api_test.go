package tsp

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
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
	one, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.OneTimeToken})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.API("tok"))
	defer srv.Close()
	c := &tokenapi.Client{Admin: strings.TrimPrefix(srv.URL, "http://"), Bearer: "tok"}
	status := func(token string) store.TokenStatus {
		t.Helper()
		got, err := c.Get(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	if got := status(one.Token); got != store.TokenActive {
		t.Errorf("fresh one-time token: %s", got)
	}
	if _, err := s.Detokenize(ctx, one.Token, Use{}); err != nil {
		t.Fatal(err)
	}
	if got := status(one.Token); got != tokenapi.StatusUsed {
		t.Errorf("consumed one-time token: %s, want used", got)
	}
	now = now.Add(10 * 365 * 24 * time.Hour)
	if got := status(dev.Token); got != tokenapi.StatusExpired {
		t.Errorf("lapsed device token: %s, want expired", got)
	}
}

func TestCtlCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "used (a consumed one-time token)"},
		{[]string{"version"}, 0, "tokenctl version "},
		{[]string{"--version"}, 0, "tokenctl version "},
		{nil, 2, "tokenctl: no command given"},
		{[]string{"frob"}, 2, `tokenctl: unknown command "frob"`},
		{[]string{"show"}, 2, "want exactly one TOKEN argument"},
		{[]string{"issue", "--pan", "1"}, 2, "--pan and --expiry are required"},
		{[]string{"issue", "--pan", "1", "--expiry", "3012", "x"}, 2, `unexpected argument "x"`},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := tokenapi.CtlMain(context.Background(), tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tt.args, code, out.String(), tt.code, tt.want)
		}
		if tt.code != 0 && strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
			t.Errorf("%v: more than one line: %q", tt.args, out.String())
		}
	}
}
