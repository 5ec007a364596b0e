package issuer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/card/pan"
)

// twin returns a Luhn-valid PAN other than p with the same mask.
func twin(t *testing.T, p string) string {
	t.Helper()
	for i := range 1_000_000 {
		if q := p[:6] + fmt.Sprintf("%06d", i) + p[12:]; q != p && pan.Luhn(q) {
			return q
		}
	}
	t.Fatal("no twin PAN")
	return ""
}

func TestAdminHandler(t *testing.T) {
	cardA, cardB := card("9410"), card("94107")
	other := twin(t, cardA)
	a := newIssuer(t, nil, func(c *Config) { c.Balances = map[string]int64{other: 50_000} })
	b := newIssuer(t, nil, func(c *Config) { c.Name, c.BINs, c.Reversals = "prepaid", []string{"9430"}, Bool(false) })
	c := dial(t, a)
	orig, _ := buy(t, c, cardA, 15_000)
	buy(t, c, cardB, 1_000)
	send(t, c, reversalOf(t, "0400", orig, 5_000))

	srv := httptest.NewServer(AdminHandler([]*Issuer{a, b}))
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{cardA, cardB, other} {
			if strings.Contains(string(body), p) {
				t.Errorf("%s %s: body carries a full PAN: %s", method, path, body)
			}
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed && ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return resp.StatusCode, string(body)
	}

	code, body := do("GET", "/ledger")
	var ledger map[string]map[string]int64
	if err := json.Unmarshal([]byte(body), &ledger); code != 200 || err != nil {
		t.Fatalf("GET /ledger: %d %v %s", code, err, body)
	}
	want := map[string]int64{
		pan.Mask(cardA): DefaultOpenToBuy - 10_000, pan.Mask(cardB): DefaultOpenToBuy - 1_000,
		pan.Mask(other) + " #2": 50_000, // same mask as cardA, sorts after it
	}
	if len(ledger["card-a"]) != len(want) || len(ledger["prepaid"]) != 0 {
		t.Errorf("ledger %v, want card-a %v and an empty prepaid", ledger, want)
	}
	for k, v := range want {
		if ledger["card-a"][k] != v {
			t.Errorf("ledger[%q] = %d, want %d (ledger %v)", k, ledger["card-a"][k], v, ledger["card-a"])
		}
	}

	code, body = do("GET", "/stats")
	var stats map[string]Status
	if err := json.Unmarshal([]byte(body), &stats); code != 200 || err != nil {
		t.Fatalf("GET /stats: %d %v %s", code, err, body)
	}
	if s := stats["card-a"]; s.Stats.Approved != 2 || s.Stats.ReversalsApplied != 1 || s.Stats.ReversedAmount != 5_000 ||
		s.Mode != "normal" || !s.Reversals || s.Addr != a.Addr() {
		t.Errorf("card-a status %+v", s)
	}
	if s := stats["prepaid"]; s.Reversals || s.Name != "prepaid" {
		t.Errorf("prepaid status %+v", s)
	}

	code, body = do("GET", "/issuers/card-a/approvals")
	var list []Approval
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 2 {
		t.Fatalf("GET approvals: %d %v %s", code, err, body)
	}
	if l := list[0]; l.MaskedPAN != pan.Mask(cardA) || l.Remaining != 10_000 || l.Reversed != 5_000 || l.PAN != "" {
		t.Errorf("approval %+v", l)
	}

	controls := []struct {
		method, path string
		wantCode     int
		check        func() bool
	}{
		{"POST", "/issuers/card-a/mode?mode=silent", 200, func() bool { return a.Mode() == Silent }},
		{"POST", "/issuers/card-a/mode?mode=normal", 200, func() bool { return a.Mode() == Normal }},
		{"POST", "/issuers/card-a/mode?mode=down", 400, func() bool { return a.Mode() == Normal }},
		{"POST", "/issuers/card-a/mode", 400, func() bool { return a.Mode() == Normal }},
		{"POST", "/issuers/prepaid/latency?d=200ms", 200, func() bool { return b.Latency() == 200*time.Millisecond }},
		{"POST", "/issuers/prepaid/latency?d=-1s", 400, func() bool { return b.Latency() == 200*time.Millisecond }},
		{"POST", "/issuers/prepaid/latency?d=soon", 400, func() bool { return b.Latency() == 200*time.Millisecond }},
		{"POST", "/issuers/card-a/fault?drop=10&late=1s&disconnect=true&charge_when_silent=true", 200, func() bool {
			return a.Fault() == Fault{DropPercent: 10, LateBy: time.Second, Disconnect: true, ChargeWhenSilent: true}
		}},
		{"POST", "/issuers/card-a/fault?drop=101", 400, func() bool { return a.Fault().DropPercent == 10 }},
		{"POST", "/issuers/card-a/fault?disconnect=perhaps", 400, func() bool { return a.Fault().Disconnect }},
		{"POST", "/issuers/card-a/fault", 200, func() bool { return a.Fault() == Fault{} }},
		{"POST", "/issuers/nosuch/mode?mode=silent", 404, func() bool { return true }},
		{"GET", "/issuers/card-a/mode?mode=silent", 405, func() bool { return a.Mode() == Normal }},
		{"DELETE", "/ledger", 405, func() bool { return true }},
	}
	for _, tt := range controls {
		if code, body := do(tt.method, tt.path); code != tt.wantCode || !tt.check() {
			t.Errorf("%s %s: %d %s; want %d and the change applied (or not)", tt.method, tt.path, code, body, tt.wantCode)
		}
	}
}

func TestAdminLatencyFaultSchedule(t *testing.T) {
	is := newIssuer(t, nil, func(c *Config) { c.Seed = 1<<63 + 5 })
	srv := httptest.NewServer(AdminHandler([]*Issuer{is}))
	t.Cleanup(srv.Close)
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	lognormal := LatencyDist{Kind: LatencyLognormal, Median: 20 * time.Millisecond, P99: 300 * time.Millisecond, Max: 2 * time.Second}
	fault := Fault{DropPercent: 10, GarbagePercent: 20, WrongSTANPercent: 30, LateBy: time.Second, LatePercent: 40}
	tests := []struct {
		path, body string
		wantCode   int
		check      func() bool
	}{
		{"/issuers/card-a/latency?dist=lognormal&median=20ms&p99=300ms&max=2s", "", 200, func() bool { return is.LatencyDist() == lognormal }},
		{"/issuers/card-a/latency?dist=lognormal&median=20ms", "", 400, func() bool { return is.LatencyDist() == lognormal }},
		{"/issuers/card-a/latency?dist=uniform&min=5ms&max=50ms&median=1ms", "", 400, func() bool { return is.LatencyDist() == lognormal }},
		{"/issuers/card-a/latency?dist=gamma", "", 400, func() bool { return is.LatencyDist() == lognormal }},
		{"/issuers/card-a/latency?d=1s&median=2s", "", 400, func() bool { return is.LatencyDist() == lognormal }},
		{"/issuers/card-a/latency?dist=uniform&min=5ms&max=50ms", "", 200, func() bool {
			return is.LatencyDist() == LatencyDist{Kind: LatencyUniform, Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
		}},
		{"/issuers/card-a/latency?d=30ms", "", 200, func() bool { return is.LatencyDist() == FixedLatency(30*time.Millisecond) }},
		{"/issuers/card-a/fault?drop=10&garbage=20&wrong_stan=30&late=1s&late_percent=40", "", 200, func() bool { return is.Fault() == fault }},
		{"/issuers/card-a/fault?drop=60&garbage=50", "", 400, func() bool { return is.Fault() == fault }},
		{"/issuers/card-a/fault?wrong_stan=x", "", 400, func() bool { return is.Fault() == fault }},
		{"/issuers/card-a/fault?late_percent=101", "", 400, func() bool { return is.Fault() == fault }},
		{"/issuers/card-a/schedule", `[{"from": "10s", "to": "15s", "fault": {"drop_percent": 100}},
			{"from": "30s", "to": "40s", "fault": {"garbage_percent": 20}}]`, 200, func() bool {
			s, _ := is.Schedule()
			return reflect.DeepEqual(s, fieldSchedule[:2])
		}},
		{"/issuers/card-a/schedule", `[{"from": "10s", "to": "5s"}]`, 400, func() bool { s, _ := is.Schedule(); return len(s) == 2 }},
		{"/issuers/card-a/schedule", `[{"from": "10s", "fault": {"silent": true}}]`, 400, func() bool { s, _ := is.Schedule(); return len(s) == 2 }},
		{"/issuers/card-a/schedule", `{"from": "10s"}`, 400, func() bool { s, _ := is.Schedule(); return len(s) == 2 }},
		{"/issuers/card-a/schedule", ``, 400, func() bool { s, _ := is.Schedule(); return len(s) == 2 }},
		{"/issuers/card-a/schedule", `null`, 400, func() bool { s, _ := is.Schedule(); return len(s) == 2 }},
		{"/issuers/nosuch/schedule", `[]`, 404, func() bool { return true }},
	}
	for _, tt := range tests {
		if code, body := post(tt.path, tt.body); code != tt.wantCode || !tt.check() {
			t.Errorf("POST %s %s: %d %s; want %d and the change applied (or not)", tt.path, tt.body, code, body, tt.wantCode)
		}
	}

	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	st := stats["card-a"]
	if st["latency_dist"] != "fixed,value=30ms" || st["seed"] != "9223372036854775813" || st["schedule_elapsed"] == nil {
		t.Errorf("status %v", st)
	}
	if f, _ := st["fault"].(map[string]any); f["late_by"] != "1s" || f["garbage_percent"] != 20.0 || f["wrong_stan_percent"] != 30.0 {
		t.Errorf("status fault %v", st["fault"])
	}
	if s, _ := st["schedule"].([]any); len(s) != 2 {
		t.Errorf("status schedule %v", st["schedule"])
	}
	if code, body := post("/issuers/card-a/schedule", "[]"); code != 200 || strings.Contains(body, `"schedule"`) {
		t.Errorf("clearing the schedule: %d %s", code, body)
	}
	if s, _ := is.Schedule(); len(s) != 0 {
		t.Errorf("schedule %+v after []", s)
	}
}
