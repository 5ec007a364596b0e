package console

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/switch/store"
)

const (
	bearer   = "s3cret-admin-token"
	fullPAN  = "9410000000000005"
	fullPAN2 = "4111111111111111"
	token    = "9990000000000017"
)

// testConsole is a console over a fake source on an httptest server, with
// a browser-like client (cookie jar, redirects not followed).
type testConsole struct {
	t     *testing.T
	src   *fakeSource
	srv   *httptest.Server
	cl    *http.Client
	logs  *observer.ObservedLogs
	clock *clock
	pages []string // every body served, for the card data check
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestConsole(t *testing.T, cfg Config) *testConsole {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	clk := &clock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	cfg.Bearer, cfg.Now = bearer, clk.Now
	src := newFake()
	c, err := New(src, cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testConsole{t: t, src: src, srv: srv, cl: cl, logs: logs, clock: clk}
}

// do sends a request and returns the status, the Location and the body.
func (tc *testConsole) do(method, path string, form url.Values) (int, string, string) {
	tc.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, tc.srv.URL+path, body)
	if err != nil {
		tc.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := tc.cl.Do(req)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	tc.pages = append(tc.pages, string(b))
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (tc *testConsole) login() {
	tc.t.Helper()
	if code, loc, _ := tc.do("POST", "/console/login", url.Values{"operator": {"alice"}, "token": {bearer}}); code != http.StatusSeeOther || loc != "/console/" {
		tc.t.Fatalf("login: %d %q", code, loc)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF token from a page's form.
func (tc *testConsole) csrf(path string) string {
	tc.t.Helper()
	_, _, body := tc.do("GET", path, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		tc.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// audits returns the audit records' actions.
func (tc *testConsole) audits() []observer.LoggedEntry {
	return tc.logs.FilterMessage("console audit").All()
}

// noCardData fails when a full card number is in any page served or any
// log record.
func (tc *testConsole) noCardData() {
	tc.t.Helper()
	for _, p := range tc.pages {
		for _, card := range []string{fullPAN, fullPAN2, token} {
			if strings.Contains(p, card) {
				tc.t.Fatalf("a page holds the full number %s:\n%s", card, p)
			}
		}
	}
	for _, e := range tc.logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + toString(v)
		}
		for _, card := range []string{fullPAN, fullPAN2, token} {
			if strings.Contains(text, card) {
				tc.t.Fatalf("a log record holds the full number %s: %s", card, text)
			}
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func TestPagesNeedASession(t *testing.T) {
	tc := newTestConsole(t, Config{})
	for _, p := range []struct{ method, path string }{
		{"GET", "/console/"}, {"GET", "/console/transactions?q=600000000001"}, {"GET", "/console/transactions/7"},
		{"GET", "/console/saf"}, {"GET", "/console/tokens"},
		{"POST", "/console/saf/3/resolve"}, {"POST", "/console/saf/3/retry"}, {"POST", "/console/tokens/status"},
		{"POST", "/console/transactions"}, {"POST", "/console/logout"},
	} {
		t.Run(p.method+" "+p.path, func(t *testing.T) {
			code, loc, body := tc.do(p.method, p.path, url.Values{"reason": {"x"}})
			if code != http.StatusSeeOther || loc != "/console/login" {
				t.Fatalf("without a session: %d %q", code, loc)
			}
			if strings.Contains(body, "600000000001") {
				t.Fatal("data shown without a session")
			}
		})
	}
	if len(tc.src.resolved) != 0 {
		t.Fatal("an action ran without a session")
	}
	if code, _, body := tc.do("GET", "/console/login", nil); code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("login page: %d", code)
	}
}

func TestLogin(t *testing.T) {
	for _, tt := range []struct {
		name   string
		secure bool
	}{{"plain HTTP", false}, {"TLS", true}} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestConsole(t, Config{Secure: tt.secure})
			if code, _, body := tc.do("POST", "/console/login", url.Values{"operator": {"mallory"}, "token": {"guess"}}); code != http.StatusUnauthorized || !strings.Contains(body, "Wrong admin token") {
				t.Fatalf("wrong token: %d", code)
			}
			if a := tc.audits(); len(a) != 1 || a[0].ContextMap()["action"] != "login refused" || a[0].ContextMap()["operator"] != "mallory" {
				t.Fatalf("refused login audit: %+v", a)
			}
			req, _ := http.NewRequest("POST", tc.srv.URL+"/console/login", strings.NewReader(url.Values{"operator": {"alice"}, "token": {bearer}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := tc.cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cks := resp.Cookies()
			if resp.StatusCode != http.StatusSeeOther || len(cks) != 1 {
				t.Fatalf("login: %d %v", resp.StatusCode, cks)
			}
			ck := cks[0]
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != tt.secure || ck.Path != "/console/" || len(ck.Value) < 32 {
				t.Fatalf("session cookie %+v", ck)
			}
			if strings.Contains(ck.Value, bearer) {
				t.Fatal("the cookie carries the admin token")
			}
			if a := tc.audits(); a[len(a)-1].ContextMap()["action"] != "login" || a[len(a)-1].ContextMap()["operator"] != "alice" {
				t.Fatalf("login audit: %+v", a)
			}
		})
	}
}

func TestWrongTokensAreThrottled(t *testing.T) {
	tc := newTestConsole(t, Config{})
	for i := range loginBurst {
		if code, _, _ := tc.do("POST", "/console/login", url.Values{"token": {"guess"}}); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i, code)
		}
	}
	// Even the right token waits now.
	if code, _, _ := tc.do("POST", "/console/login", url.Values{"token": {bearer}}); code != http.StatusTooManyRequests {
		t.Fatalf("after %d wrong tokens: %d", loginBurst, code)
	}
	tc.clock.advance(loginEvery)
	tc.login()
}

func TestNoticesAreNotTakenFromTheURL(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	for _, q := range []string{"done=Call+555-0100+now&now=review", "done=resolve&item=3&now=Call+555", "done=resolve&item=x&now=done"} {
		if _, _, body := tc.do("GET", "/console/saf?"+q, nil); strings.Contains(body, "555") || strings.Contains(body, `class="notice"`) {
			t.Fatalf("%s: a notice from the URL", q)
		}
	}
}

func TestSessionEnds(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(tc *testConsole)
	}{
		{"idle", func(tc *testConsole) { tc.clock.advance(16 * time.Minute) }},
		{"too old while in use", func(tc *testConsole) {
			for range 40 { // 40 x 14m > 8h, never idle for 15m
				tc.clock.advance(14 * time.Minute)
				tc.do("GET", "/console/saf", nil)
			}
		}},
		{"logout", func(tc *testConsole) {
			if code, loc, _ := tc.do("POST", "/console/logout", url.Values{"csrf": {tc.csrf("/console/")}}); code != http.StatusSeeOther || loc != "/console/login" {
				tc.t.Fatalf("logout: %d %q", code, loc)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestConsole(t, Config{})
			tc.login()
			if code, _, _ := tc.do("GET", "/console/", nil); code != 200 {
				t.Fatalf("overview: %d", code)
			}
			tt.end(tc)
			if code, loc, _ := tc.do("GET", "/console/", nil); code != http.StatusSeeOther || loc != "/console/login" {
				t.Fatalf("after the session ended: %d %q", code, loc)
			}
		})
	}
}

func TestActionsNeedTheCSRFToken(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	good := tc.csrf("/console/saf")
	for name, csrf := range map[string]string{"none": "", "forged": strings.Repeat("ab", 32), "truncated": good[:10]} {
		t.Run(name, func(t *testing.T) {
			code, _, body := tc.do("POST", "/console/saf/3/resolve", url.Values{"csrf": {csrf}, "reason": {"called the issuer"}})
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Fatalf("resolve with %s CSRF token: %d", name, code)
			}
		})
	}
	if len(tc.src.resolved) != 0 {
		t.Fatalf("resolved without the CSRF token: %v", tc.src.resolved)
	}
	refused := 0
	for _, a := range tc.audits() {
		if a.ContextMap()["action"] == "refused" {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusals audited, want 3", refused)
	}
	// Another session's token is not this session's.
	other := newTestConsole(t, Config{})
	other.login()
	if code, _, _ := tc.do("POST", "/console/saf/3/resolve", url.Values{"csrf": {other.csrf("/console/saf")}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d", code)
	}
}

func TestResolveAndRetry(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	csrf := tc.csrf("/console/saf")
	if code, _, _ := tc.do("POST", "/console/saf/3/resolve", url.Values{"csrf": {csrf}, "reason": {"  "}}); code != http.StatusConflict {
		t.Fatalf("resolve without a reason: %d", code)
	}
	code, loc, _ := tc.do("POST", "/console/saf/3/resolve", url.Values{"csrf": {csrf}, "reason": {"issuer refunded, ticket 42, card " + fullPAN2}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/saf?state=resolved") {
		t.Fatalf("resolve: %d %q", code, loc)
	}
	if len(tc.src.resolved) != 1 || !strings.HasPrefix(tc.src.resolved[0], "alice (console, 127.0.0.1:") ||
		!strings.HasSuffix(tc.src.resolved[0], "issuer refunded, ticket 42, card 411111******1111") {
		t.Fatalf("recorded %q", tc.src.resolved)
	}
	if code, _, body := tc.do("GET", loc, nil); code != 200 || !strings.Contains(body, "is now resolved") {
		t.Fatalf("after resolve: %d", code)
	}
	if code, _, _ := tc.do("POST", "/console/saf/3/resolve", url.Values{"csrf": {csrf}, "reason": {"again"}}); code != http.StatusConflict {
		t.Fatalf("resolving twice: %d", code)
	}
	if code, _, _ := tc.do("POST", "/console/saf/99/retry", url.Values{"csrf": {csrf}}); code != http.StatusNotFound {
		t.Fatalf("retry of no item: %d", code)
	}
	var got map[string]any
	for _, a := range tc.audits() {
		if a.ContextMap()["action"] == "SAF resolve" {
			got = a.ContextMap()
		}
	}
	if got["operator"] != "alice" || got["saf_id"] != int64(3) || got["reason"] != "issuer refunded, ticket 42, card 411111******1111" || got["session"] == "" {
		t.Fatalf("resolve audit %v", got)
	}
	tc.noCardData()
}

func TestSearchNeverEchoesACardNumber(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	csrf := tc.csrf("/console/transactions")
	for _, typed := range []string{fullPAN, "9410 0000 0000 0005", "9410-0000-0000-0005", "941000******0005", "941000...0005"} {
		t.Run(typed, func(t *testing.T) {
			code, loc, _ := tc.do("POST", "/console/transactions", url.Values{"csrf": {csrf}, "q": {typed}})
			if code != http.StatusSeeOther || loc != "/console/transactions?q=941000%2A%2A%2A%2A%2A%2A0005" {
				t.Fatalf("search for a card: %d %q", code, loc)
			}
			code, _, body := tc.do("GET", loc, nil)
			if code != 200 || !strings.Contains(body, `value="941000******0005"`) || !strings.Contains(body, `href="/console/transactions/7"`) {
				t.Fatalf("results: %d\n%s", code, body)
			}
		})
	}
	// A card number typed into the URL itself is masked by a redirect.
	if code, loc, _ := tc.do("GET", "/console/transactions?q="+fullPAN2+"&rc=00", nil); code != http.StatusSeeOther || loc != "/console/transactions?q=411111%2A%2A%2A%2A%2A%2A1111&rc=00" {
		t.Fatalf("GET with a card: %d %q", code, loc)
	}
	if code, loc, _ := tc.do("GET", "/console/transactions?q=card+"+fullPAN2+"+please", nil); code != http.StatusSeeOther || strings.Contains(loc, fullPAN2) {
		t.Fatalf("GET with a card in text: %d %q", code, loc)
	}
	for _, f := range tc.src.filters {
		for _, v := range []string{f.RRN, f.STAN, f.TerminalID, f.MerchantID, f.CardFirst6 + f.CardLast4} {
			if len(v) > 12 && isDigits(v) {
				t.Fatalf("searched by a full card number: %+v", f)
			}
		}
	}
	tc.noCardData()
}

func TestSearchByEachField(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	for _, q := range []string{"600000000001", "000123", "TERM0001", "MERCHANT0000001"} {
		t.Run(q, func(t *testing.T) {
			code, _, body := tc.do("GET", "/console/transactions?q="+q, nil)
			if code != 200 || strings.Count(body, `href="/console/transactions/7"`) != 1 || !strings.Contains(body, "941000******0005") {
				t.Fatalf("search %s: %d\n%s", q, code, body)
			}
		})
	}
	if code, _, body := tc.do("GET", "/console/transactions?q=nothing", nil); code != 200 || !strings.Contains(body, "0 transaction(s)") {
		t.Fatalf("no match: %d", code)
	}
	if code, _, _ := tc.do("GET", "/console/transactions?from=yesterday", nil); code != http.StatusBadRequest {
		t.Fatalf("bad time: %d", code)
	}
	tc.src.filters = nil
	tc.do("GET", "/console/transactions?q=TERM0001&route=card-a&rc=05&from=2026-12-01T00:00&to=2026-12-01T04:00", nil)
	want := store.TxnFilter{TerminalID: "TERM0001", Route: "card-a", RC: "05", From: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC), Limit: searchLimit}
	found := false
	for _, f := range tc.src.filters {
		found = found || f == want
	}
	if !found {
		t.Fatalf("filters %+v lack %+v", tc.src.filters, want)
	}
}

func TestTransactionPage(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	code, _, body := tc.do("GET", "/console/transactions/7", nil)
	if code != 200 {
		t.Fatalf("transaction: %d", code)
	}
	for _, want := range []string{"941000******0005", "received", "approved", "600000000001", `action="/console/saf/3/resolve"`} {
		if !strings.Contains(body, want) {
			t.Errorf("transaction page lacks %q", want)
		}
	}
	if code, _, _ := tc.do("GET", "/console/transactions/8", nil); code != http.StatusNotFound {
		t.Fatalf("no such transaction: %d", code)
	}
	// A card number in the path is not echoed (it parses as a number).
	if code, _, body := tc.do("GET", "/console/transactions/"+fullPAN2, nil); code != http.StatusNotFound || !strings.Contains(body, "411111******1111") {
		t.Fatalf("a card number as a transaction: %d", code)
	}
	tc.do("POST", "/console/saf/"+fullPAN2+"/retry", url.Values{"csrf": {"forged"}}) // audited as refused
	tc.noCardData()
}

func TestOverview(t *testing.T) {
	tc := newTestConsole(t, Config{Refresh: 3 * time.Second})
	tc.login()
	_, _, body := tc.do("GET", "/console/", nil)
	for _, want := range []string{`<meta http-equiv="refresh" content="3">`, `data-route="card-a"`, `data-route="card-b"`, "1 of 1", "0 of 2", "ready", "Rates appear"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	tc.clock.advance(10 * time.Second)
	tc.src.mu.Lock()
	routes := append([]RouteState(nil), tc.src.ov.Routes...)             // a new overview, as a Source makes
	routes[0].Requests, routes[0].Sales, routes[0].Approved = 60, 60, 49 // 50 more, 40 approved
	tc.src.ov.Routes = routes
	tc.src.mu.Unlock()
	_, _, body = tc.do("GET", "/console/", nil)
	for _, want := range []string{"Rates over the last 10s", "<td>5.0</td><td>80.0%</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q:\n%s", want, body)
		}
	}
}

func TestTokenSuspendAndResume(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	csrf := tc.csrf("/console/tokens")
	if code, loc, _ := tc.do("POST", "/console/tokens", url.Values{"csrf": {csrf}, "token": {token}}); code != http.StatusSeeOther || loc != "/console/tokens" {
		t.Fatalf("look-up: %d %q", code, loc)
	}
	_, _, body := tc.do("GET", "/console/tokens", nil)
	if !strings.Contains(body, "999000******0017") || !strings.Contains(body, `id="token-status">active`) {
		t.Fatalf("token page:\n%s", body)
	}
	shown := "999000******0017"
	if code, _, _ := tc.do("POST", "/console/tokens/status", url.Values{"csrf": {csrf}, "shown": {shown}, "status": {"suspended"}}); code != http.StatusBadRequest {
		t.Fatalf("suspend without a reason: %d", code)
	}
	if code, _, _ := tc.do("POST", "/console/tokens/status", url.Values{"csrf": {csrf}, "shown": {"999000******0025"}, "status": {"suspended"}, "reason": {"x"}}); code != http.StatusConflict {
		t.Fatalf("suspend of a token not shown: %d", code)
	}
	if code, _, _ := tc.do("POST", "/console/tokens/status", url.Values{"csrf": {csrf}, "shown": {shown}, "status": {"deleted"}, "reason": {"x"}}); code != http.StatusBadRequest {
		t.Fatalf("delete from the console: %d", code)
	}
	if code, _, _ := tc.do("POST", "/console/tokens/status", url.Values{"csrf": {csrf}, "shown": {shown}, "status": {"suspended"}, "reason": {"lost phone"}}); code != http.StatusSeeOther {
		t.Fatalf("suspend: %d", code)
	}
	if tc.src.tokens[token].Status != store.TokenSuspended {
		t.Fatal("not suspended")
	}
	_, _, body = tc.do("GET", "/console/tokens", nil)
	if !strings.Contains(body, `id="token-status">suspended`) || !strings.Contains(body, ">Resume<") {
		t.Fatalf("after suspend:\n%s", body)
	}
	if code, _, _ := tc.do("POST", "/console/tokens/status", url.Values{"csrf": {csrf}, "shown": {shown}, "status": {"active"}, "reason": {"found it"}}); code != http.StatusSeeOther {
		t.Fatalf("resume: %d", code)
	}
	var actions []string
	for _, a := range tc.audits() {
		m := a.ContextMap()
		if strings.HasPrefix(m["action"].(string), "token") {
			actions = append(actions, m["action"].(string)+" "+toString(m["token"])+" "+toString(m["reason"]))
		}
	}
	want := "token look-up 999000******0017 |token status refused 999000******0017 |token status refused 999000******0017 |token status refused 999000******0017 |token suspend 999000******0017 lost phone|token resume 999000******0017 found it"
	if got := strings.Join(actions, "|"); got != want {
		t.Fatalf("audit:\n got %s\nwant %s", got, want)
	}
	if code, _, _ := tc.do("POST", "/console/tokens", url.Values{"csrf": {csrf}, "token": {"not a token"}}); code != http.StatusBadRequest {
		t.Fatalf("bad token: %d", code)
	}
	tc.noCardData()
}

func TestSourceErrorsAreNotShown(t *testing.T) {
	tc := newTestConsole(t, Config{})
	tc.login()
	tc.src.txns = nil
	if !errors.Is(func() error { _, err := tc.src.Transaction(context.Background(), 7); return err }(), store.ErrNotFound) {
		t.Fatal("fake")
	}
	if code, _, body := tc.do("GET", "/console/transactions/7", nil); code != http.StatusNotFound || !strings.Contains(body, "No transaction 7") {
		t.Fatalf("missing transaction: %d", code)
	}
}
