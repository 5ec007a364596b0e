package tsp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzProvisioningAPI posts arbitrary bodies: the answer is 201 or 400,
// never a 5xx or a panic, and never quotes a PAN back.
func FuzzProvisioningAPI(f *testing.F) {
	f.Add(`{"pan":"9410000000000005","expiry":"3012","kind":"device"}`)
	f.Add(`{"pan":"9410000000000005","expiry":"3012","kind":"one-time","domain":{"merchants":["M1"],"entry_modes":["05"]}}`)
	f.Add(`{"pan":12,"expiry":null}`)
	s, _ := newService(f)
	api := s.API("t")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "9410000000000005") {
			t.Fatal("answer quotes the PAN")
		}
	})
}
