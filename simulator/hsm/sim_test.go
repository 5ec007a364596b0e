package hsm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

func newServer(t *testing.T, headerLen int) *Server {
	t.Helper()
	s, err := New(Options{Addr: "127.0.0.1:0", HeaderLength: headerLen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// exchange sends one framed message and reads one answer.
func exchange(t *testing.T, addr string, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	frame, err := hostcmd.AppendFrame(nil, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	out, err := hostcmd.ReadFrame(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestAnswers: the header is echoed, the response code is the command's
// second letter + 1, then the error code.
func TestAnswers(t *testing.T) {
	cases := []struct {
		name      string
		headerLen int
		msg       string
		prefix    string
	}{
		{"NC with the default header", 4, "ABCDNC", "ABCDND00"},
		{"NC with a 6-character header", 6, "HDR123NC", "HDR123ND00"},
		{"unknown command: disabled", 4, "0001ZZ", "0001Z[68"},
		{"garbage fields: input data error", 4, "0002CAxyz", "0002CB15"},
		{"BU of a forged key block", 4, "0003BUFFFSD0048P0TB00E0000" + strings.Repeat("AB", 16), "0003BV10"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.headerLen)
			got := exchange(t, s.Addr(), tc.msg)
			if !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("answer %q, want it to start %q", got, tc.prefix)
			}
		})
	}
}

func TestAdminFaults(t *testing.T) {
	s := newServer(t, 4)
	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/faults", strings.NewReader(`{"error_percent": 100, "error_code": "42"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /faults: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := exchange(t, s.Addr(), "0001NC"); got != "0001ND42" {
		t.Errorf("with 100%% injected errors NC answered %q, want 0001ND42", got)
	}
	bad, _ := http.NewRequest(http.MethodPut, srv.URL+"/faults", strings.NewReader(`{"error_percent": 120}`))
	if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT of a 120%% fault: %v %v, want 400", resp, err)
	}
	del, _ := http.NewRequest(http.MethodDelete, srv.URL+"/faults", nil)
	if _, err := http.DefaultClient.Do(del); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, s.Addr(), "0001NC"); !strings.HasPrefix(got, "0001ND00") {
		t.Errorf("after DELETE /faults NC answered %q", got)
	}
	resp, err = http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats["commands"] != 2 || stats["injected"] != 1 {
		t.Errorf("stats %v (%v), want 2 commands, 1 injected", stats, err)
	}
}

func TestFaultsRejected(t *testing.T) {
	s := newServer(t, 4)
	for _, f := range []Faults{
		{ErrorPercent: 101}, {DisconnectPercent: -1}, {ErrorCode: "1"}, {Latency: "lognormal,median=30ms,p99=2ms"}, {Latency: "soon"},
	} {
		if err := s.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) accepted", f)
		}
	}
	if err := s.SetFaults(Faults{Latency: "pareto,median=1ms,p99=10ms,max=50ms"}); err != nil {
		t.Errorf("a valid Pareto latency: %v", err)
	}
}

// FuzzHandle: whatever arrives, the emulator answers (never panics) with
// the header echoed and a 2-digit error code.
func FuzzHandle(f *testing.F) {
	f.Add([]byte("0001NC"))
	f.Add([]byte("0002CAxyz"))
	f.Add([]byte("0003BUFFFSD0048P0TB00E0000" + strings.Repeat("AB", 16)))
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := s.Handle(msg, nil)
		if len(msg) >= 4 && !bytes.HasPrefix(out, msg[:4]) {
			t.Fatalf("answer %q does not echo the header of %q", out, msg)
		}
		if len(out) < 4 {
			t.Fatalf("answer %q too short", out)
		}
	})
}
