package payswitch_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

func (h *harness) tokenAPI() *tokenapi.Client {
	return &tokenapi.Client{Admin: h.sw.AdminAddr(), Bearer: config.DemoAdminToken}
}

func (h *harness) pay(t *testing.T, term *terminal.Client, number string, amount int64) terminal.Result {
	t.Helper()
	res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: number, Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestTokenLifecycleOnThePaymentPath(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	api := h.tokenAPI()
	ctx := context.Background()
	term := h.terminal()

	tok, err := api.Issue(ctx, cardA, "3012", tokenapi.IssueOptions{Kind: store.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Token, "9999") || len(tok.Token) != 16 || tok.MaskedPAN != "941000******0005" {
		t.Fatalf("issued %+v", tok)
	}

	res := h.pay(t, term, tok.Token, 1200)
	if res.ResponseCode != "00" {
		t.Fatalf("token payment: %s", res.ResponseCode)
	}
	if de2, _ := res.Message.GetString(specs.PAN); de2 != tok.Token {
		t.Fatalf("terminal got DE 2 %s…, want the token back", de2[:6])
	}
	last := h.issuers["card-a"].Received()
	got := last[len(last)-1]
	if got.Fields[specs.PAN] != cardA || got.Fields[specs.PrivateData] != "TK16"+tok.Token || got.Fields[specs.Expiry] != "3012" {
		t.Fatalf("issuer saw DE 2 %q… DE 48 %q DE 14 %q", got.Fields[specs.PAN][:6], got.Fields[specs.PrivateData], got.Fields[specs.Expiry])
	}

	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"suspended", func() error { _, err := api.Suspend(ctx, tok.Token); return err }, "62"},
		{"resumed", func() error { _, err := api.Resume(ctx, tok.Token); return err }, "00"},
		{"deleted", func() error { _, err := api.Delete(ctx, tok.Token); return err }, "14"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res := h.pay(t, term, tok.Token, 100); res.ResponseCode != st.want {
			t.Fatalf("%s: DE 39 %s, want %s", st.name, res.ResponseCode, st.want)
		}
	}
	var apiErr *tokenapi.APIError
	if _, err := api.Resume(ctx, tok.Token); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("resume after delete: %v", err)
	}

	// Domain: a token bound to another merchant is refused with 57.
	bound, err := api.Issue(ctx, cardA, "3012", tokenapi.IssueOptions{Kind: store.DeviceToken, Domain: store.Domain{Merchants: []string{"OTHERMERCHANT01"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res := h.pay(t, term, bound.Token, 100); res.ResponseCode != "57" {
		t.Fatalf("outside domain: %s", res.ResponseCode)
	}
	// A number in the token range that was never issued: 14.
	if res := h.pay(t, term, "9999000000000009", 100); res.ResponseCode != "14" {
		t.Fatalf("unknown token: %s", res.ResponseCode)
	}
}

func TestOneTimeTokenIsUsedOnce(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-b link", func() bool { return h.linksUp("card-b") })
	ctx := context.Background()
	tok, err := h.tokenAPI().Issue(ctx, cardB, "3012", tokenapi.IssueOptions{Kind: store.OneTimeToken})
	if err != nil {
		t.Fatal(err)
	}
	if ttl := time.Until(tok.ExpiresAt); ttl > 3*time.Minute+time.Second || ttl < 2*time.Minute {
		t.Fatalf("one-time token lives %v", ttl)
	}
	before := len(h.issuers["card-b"].Received())
	const n = 24
	codes := make(chan string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		term := h.terminal() // separate connections, like separate terminals
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := term.Purchase(ctx, terminal.Purchase{PAN: tok.Token, Amount: 700})
			if err != nil {
				codes <- "error " + err.Error()
				return
			}
			codes <- res.ResponseCode
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	tally := map[string]int{}
	for c := range codes {
		tally[c]++
	}
	if tally["00"] != 1 || tally["33"] != n-1 {
		t.Fatalf("one-time token used concurrently %d times: %v", n, tally)
	}
	sales := 0
	for _, r := range h.issuers["card-b"].Received()[before:] {
		if r.MTI == "0200" {
			sales++
		}
	}
	if sales != 1 {
		t.Fatalf("issuer saw %d sales for one one-time token", sales)
	}
}

func TestProvisioningAPIGuards(t *testing.T) {
	h := newHarness(t, "")
	base := "http://" + h.sw.AdminAddr() + "/v1/tokens"
	do := func(auth, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := `{"pan":"` + cardA + `","expiry":"3012","kind":"device"}`
	tests := []struct {
		name, auth, body string
		status           int
	}{
		{"no bearer", "", good, 401},
		{"wrong bearer", "Bearer nope", good, 401},
		{"not JSON", "Bearer " + config.DemoAdminToken, `{"pan":"` + cardA + `",`, 400},
		{"unknown field", "Bearer " + config.DemoAdminToken, `{"pan":"` + cardA + `","cvv":"123","expiry":"3012"}`, 400},
		{"luhn failure", "Bearer " + config.DemoAdminToken, `{"pan":"9410000000000006","expiry":"3012"}`, 400},
		{"expired card", "Bearer " + config.DemoAdminToken, `{"pan":"` + cardA + `","expiry":"2001"}`, 400},
		{"pan in token range", "Bearer " + config.DemoAdminToken, `{"pan":"9999000000000009","expiry":"3012"}`, 400},
		{"bad kind", "Bearer " + config.DemoAdminToken, `{"pan":"` + cardA + `","expiry":"3012","kind":"forever"}`, 400},
		{"ok", "Bearer " + config.DemoAdminToken, good, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(tt.auth, tt.body)
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			if strings.Contains(body, cardA) {
				t.Fatalf("answer contains the full PAN: %s", body)
			}
		})
	}
}
