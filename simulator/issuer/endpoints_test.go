package issuer

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/specs"
)

// TestEndpointsDownAndSilent: one issuer on three endpoints; a silent
// endpoint reads and never answers, a downed one refuses and drops its
// connections, and the others (one ledger) carry on.
func TestEndpointsDownAndSilent(t *testing.T) {
	is := newIssuer(t, nil, func(c *Config) { c.Addrs = []string{"127.0.0.1:0", "127.0.0.1:0"} })
	addrs := is.Addrs()
	if len(addrs) != 3 || addrs[0] != is.Addr() {
		t.Fatalf("endpoints %v, want 3 with Addr first", addrs)
	}
	conns := make([]*connection.Connection, len(addrs))
	for i, a := range addrs {
		conns[i] = dialAddr(t, a)
		if rc := get(send(t, conns[i], netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
			t.Fatalf("echo on endpoint %d answered %s", i, rc)
		}
	}
	srv := httptest.NewServer(AdminHandler([]*Issuer{is}))
	t.Cleanup(srv.Close)
	post := func(path string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/issuers/card-a/endpoints/" + addrs[2] + "/silent"); code != http.StatusOK {
		t.Fatalf("silent by address: HTTP %d", code)
	}
	if _, err := conns[2].Send(netMgmt(t, specs.NetMgmtEcho), connection.SendTimeout(time.Second)); !errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("silent endpoint: %v, want no answer", err)
	}
	if code := post("/issuers/card-a/endpoints/1/down"); code != http.StatusOK {
		t.Fatalf("down by index: HTTP %d", code)
	}
	select {
	case <-conns[1].Done():
	case <-time.After(10 * time.Second):
		t.Fatal("downed endpoint's connection still open")
	}
	if c, err := net.DialTimeout("tcp", addrs[1], 5*time.Second); err == nil {
		c.Close()
		t.Fatal("downed endpoint still accepts")
	}
	if rc := get(send(t, conns[0], netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
		t.Fatalf("endpoint 0 after 1 went down answered %s", rc)
	}
	if code := post("/issuers/card-a/endpoints/9/down"); code != http.StatusNotFound {
		t.Fatalf("unknown endpoint: HTTP %d, want 404", code)
	}
	want := []EndpointStatus{{0, addrs[0], false, false}, {1, addrs[1], true, false}, {2, addrs[2], false, true}}
	for i, ep := range is.Endpoints() {
		if ep != want[i] {
			t.Fatalf("endpoint %d: %+v, want %+v", i, ep, want[i])
		}
	}
}
