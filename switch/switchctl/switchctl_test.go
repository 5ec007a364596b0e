package switchctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAPI records each request and answers {"ok": true}, or 409 for
// /v1/saf/9/resolve.
type fakeAPI struct {
	mu   sync.Mutex
	reqs []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(body)))
	f.mu.Unlock()
	if r.URL.Path == "/v1/saf/9/resolve" {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "item 9 is done, want review"})
		return
	}
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func TestCommands(t *testing.T) {
	api := &fakeAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := map[string]string{EnvAdmin: srv.URL, EnvBearer: "tok", EnvOperator: "alice"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		args    []string
		code    int
		request string // the request the fake saw; "" none
		out     string // substring of stdout+stderr
	}{
		{[]string{"txn", "search", "--rrn", "000000000042", "--state", "approved"}, 0, "GET /v1/transactions?rrn=000000000042&state=approved Bearer tok", `"ok": true`},
		{[]string{"txn", "show", "17"}, 0, "GET /v1/transactions/17 Bearer tok", ""},
		{[]string{"saf", "list", "--state", "review", "--route", "card-a"}, 0, "GET /v1/saf?route=card-a&state=review Bearer tok", ""},
		{[]string{"saf", "retry", "5"}, 0, `POST /v1/saf/5/retry Bearer tok {"operator":"alice","reason":""}`, ""},
		{[]string{"saf", "resolve", "--reason", "issuer confirmed", "6", "--operator", "bob"}, 0, `POST /v1/saf/6/resolve Bearer tok {"operator":"bob","reason":"issuer confirmed"}`, ""},
		{[]string{"saf", "resolve", "9", "--reason", "x"}, ExitRefused, `POST /v1/saf/9/resolve Bearer tok {"operator":"alice","reason":"x"}`, "admin API: 409 item 9 is done, want review"},
		{[]string{"saf", "resolve", "6"}, ExitUsage, "", "saf resolve needs --reason"},
		{[]string{"txn", "show", "x"}, ExitUsage, "", "a numeric ID is required"},
		{[]string{"txn", "search", "stray"}, ExitUsage, "", `unexpected argument "stray"`},
		{[]string{"frobnicate"}, ExitUsage, "", `unknown command "frobnicate"`},
		{[]string{"--nope"}, ExitUsage, "", "flag provided but not defined: -nope"},
		{[]string{}, ExitUsage, "", "no command given"},
		{[]string{"--help"}, 0, "", "saf resolve ID --reason TEXT"},
		{[]string{"version"}, 0, "", "switchctl version "},
		{[]string{"reconciliations"}, 0, "GET /v1/reconciliations Bearer tok", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			api.mu.Lock()
			api.reqs = nil
			api.mu.Unlock()
			var out bytes.Buffer
			if code := Main(context.Background(), tt.args, &out, &out, getenv); code != tt.code {
				t.Errorf("exit %d, want %d; output %s", code, tt.code, out.String())
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			switch {
			case tt.request == "" && len(api.reqs) != 0:
				t.Errorf("sent %v", api.reqs)
			case tt.request != "" && (len(api.reqs) != 1 || api.reqs[0] != tt.request):
				t.Errorf("sent %q, want %q", api.reqs, tt.request)
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("output %q lacks %q", out.String(), tt.out)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	var out bytes.Buffer
	code := Main(context.Background(), []string{"--admin", "127.0.0.1:1", "ready"}, &out, &out, func(string) string { return "" })
	if code != ExitUnreachable || !strings.Contains(out.String(), "reaching switchd's admin API at http://127.0.0.1:1") {
		t.Errorf("exit %d: %s", code, out.String())
	}
}
