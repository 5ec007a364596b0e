package issuer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestResetRestoresOpeningBalances: POST /reset gives every account its
// opening balance again; POST /issuers/{name}/reset only that issuer's.
func TestResetRestoresOpeningBalances(t *testing.T) {
	cardA := card("9410")
	a := newIssuer(t, nil, func(*Config) {})
	c := dial(t, a)
	buy(t, c, cardA, 15_000)
	if b := a.Balance(cardA); b != DefaultOpenToBuy-15_000 {
		t.Fatalf("balance %d", b)
	}
	srv := httptest.NewServer(AdminHandler([]*Issuer{a}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/issuers/nobody/reset", "/issuers/card-a/reset", "/reset"} {
		resp, err := http.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		want := http.StatusOK
		if path == "/issuers/nobody/reset" {
			want = http.StatusNotFound
		}
		if resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
		if want == http.StatusOK && a.Balance(cardA) != DefaultOpenToBuy {
			t.Errorf("POST %s: balance %d, want the opening %d", path, a.Balance(cardA), DefaultOpenToBuy)
		}
		buy(t, c, cardA, 1_000)
	}
}
