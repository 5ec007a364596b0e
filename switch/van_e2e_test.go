package payswitch_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// vanHarness is a switch whose "van" listener takes mutual TLS and wants
// a sign-on; dial opens a VAN link to it.
type vanHarness struct {
	*harness
	dial   func(t *testing.T) *rawConn
	caFile string       // the CA of the switch's certificate
	client tlstest.Pair // the VAN's client certificate
}

func newVANHarness(t *testing.T, van func(*config.Listener)) vanHarness {
	t.Helper()
	serverCA, clientCA := tlstest.NewCA(t, "server-ca"), tlstest.NewCA(t, "van-ca")
	srv, client := serverCA.Server(t, "switch"), clientCA.Client(t, "van-one")
	h := newHarness(t, "", func(c *config.Config) {
		setRouteTimeouts(c, 20*time.Second) // 5,000 round trips under -race on two cores
		l := &c.Listeners[1]
		l.TLS = &config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: clientCA.CertFile, AllowedClients: []string{"van-one"}}
		l.SignOnRequired = true
		van(l)
	})
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	cfg := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{client.TLS(t)}}
	return vanHarness{harness: h, caFile: serverCA.CertFile, client: client, dial: func(t *testing.T) *rawConn {
		t.Helper()
		c, err := tls.Dial("tcp", h.sw.ListenerAddr("van"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return &rawConn{Conn: c, codec: &frame.Codec{Header: frame.Binary2, Spec: specs.MustLoad(specs.TerminalDialect)}}
	}}
}

func netMgmt(t *testing.T, code, stan string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI(specs.MTINetworkMgmt)
	for id, v := range map[int]string{specs.TransmissionDateTime: time.Now().UTC().Format("0102150405"), specs.STAN: stan, specs.NetworkMgmtCode: code} {
		withField(t, m, id, v)
	}
	return m
}

// exchange writes m and reads one answer.
func (r *rawConn) exchange(t *testing.T, m *iso8583.Message) (mti, rc string) {
	t.Helper()
	if _, err := r.Write(frameOf(t, m)); err != nil {
		t.Fatal(err)
	}
	resp, err := r.read(t, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mti, _ = resp.GetMTI()
	rc, _ = resp.GetString(specs.ResponseCode)
	return mti, rc
}

// TestVANLinkSignOnAndInterleavedRequests: over mutual TLS, a VAN link's
// sale before sign-on is declined 91 (and never reaches an issuer); after
// 0800/001 an echo is answered and 5,000 sales of 5,000 terminals, all
// written at once and interleaved over two issuers, are each answered 00
// with their own terminal and STAN; after 0800/002 sales are declined
// again.
func TestVANLinkSignOnAndInterleavedRequests(t *testing.T) {
	const n = 5000
	h := newVANHarness(t, func(l *config.Listener) { l.MaxInFlight = 2 * n })
	van := h.dial(t)
	if _, rc := van.exchange(t, purchaseMsg(t, cardA, "000001", 100)); rc != "91" {
		t.Fatalf("sale before sign-on answered %s, want 91", rc)
	}
	if mti, rc := van.exchange(t, netMgmt(t, specs.NetMgmtSignOn, "000002")); mti != "0810" || rc != "00" {
		t.Fatalf("sign-on answered %s %s", mti, rc)
	}
	if _, rc := van.exchange(t, netMgmt(t, specs.NetMgmtEcho, "000003")); rc != "00" {
		t.Fatalf("echo answered %s", rc)
	}
	if m := h.adminGet(t, "/metrics"); !strings.Contains(m, `payswitch_listener_links_signed_on{listener="van"} 1`) {
		t.Fatalf("sign-on not in /metrics:\n%s", grepLines(m, "signed_on"))
	}
	if l := h.adminGet(t, "/v1/links"); !strings.Contains(l, `"listener":"van","tls":true,"sign_on_required":true,"connections":1,"signed_on":1`) {
		t.Fatalf("GET /v1/links: %s", l)
	}
	pans := []string{cardA, cardB}
	go func() {
		var buf []byte
		for i := 1; i <= n; i++ {
			m := withField(t, purchaseMsg(t, pans[i%2], fmt.Sprintf("%06d", 100+i), 100), specs.TerminalID, fmt.Sprintf("V%07d", i))
			buf = append(buf, frameOf(t, m)...)
		}
		if _, err := van.Write(buf); err != nil {
			t.Error(err)
		}
	}()
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := van.read(t, 30*time.Second)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		tid, _ := m.GetString(specs.TerminalID)
		stan, _ := m.GetString(specs.STAN)
		rc, _ := m.GetString(specs.ResponseCode)
		var i int
		if _, err := fmt.Sscanf(strings.TrimSpace(tid), "V%07d", &i); err != nil || stan != fmt.Sprintf("%06d", 100+i) || rc != "00" || seen[tid] {
			t.Fatalf("answer to terminal %q: STAN %s DE 39 %s (seen before: %v)", tid, stan, rc, seen[tid])
		}
		seen[tid] = true
	}
	if got := len(h.issuers["card-a"].Approvals()) + len(h.issuers["card-b"].Approvals()); got != n {
		t.Fatalf("issuers approved %d sales, want %d", got, n)
	}
	if _, rc := van.exchange(t, netMgmt(t, specs.NetMgmtSignOff, "000004")); rc != "00" {
		t.Fatalf("sign-off answered %s", rc)
	}
	if _, rc := van.exchange(t, purchaseMsg(t, cardA, "000005", 100)); rc != "91" {
		t.Fatalf("sale after sign-off answered %s, want 91", rc)
	}
	if m := h.adminGet(t, "/metrics"); !strings.Contains(m, `payswitch_listener_links_signed_on{listener="van"} 0`) {
		t.Fatalf("sign-off not in /metrics:\n%s", grepLines(m, "signed_on"))
	}
}

// TestVANLinkRateLimit: a link over rate_per_link is answered 91 at
// once and counted.
func TestVANLinkRateLimit(t *testing.T) {
	h := newVANHarness(t, func(l *config.Listener) { l.RatePerLink = 5 })
	van := h.dial(t)
	if _, rc := van.exchange(t, netMgmt(t, specs.NetMgmtSignOn, "000001")); rc != "00" {
		t.Fatalf("sign-on answered %s", rc)
	}
	declined := 0
	for i := range 30 { // the burst is 10 (one was the sign-on)
		m := withField(t, purchaseMsg(t, cardA, fmt.Sprintf("%06d", 10+i), 100), specs.TerminalID, fmt.Sprintf("R%07d", i))
		if _, rc := van.exchange(t, m); rc == "91" {
			declined++
		}
	}
	if declined == 0 {
		t.Fatal("no sale declined over the link's rate")
	}
	waitFor(t, 5*time.Second, "link_rate refusals counted", func() bool {
		return strings.Contains(h.adminGet(t, "/metrics"), `switch_refused_total{listener="van",reason="link_rate"}`)
	})
}

// TestTermsimVANMode: termsim van opens two mutual-TLS links, signs them
// on and gets 400 interleaved purchases approved.
func TestTermsimVANMode(t *testing.T) {
	h := newVANHarness(t, func(*config.Listener) {})
	var out, errOut strings.Builder
	code := terminal.Main(context.Background(), []string{"van", "--switch", h.sw.ListenerAddr("van"),
		"--tls-ca", h.caFile, "--tls-cert", h.client.CertFile, "--tls-key", h.client.KeyFile, "--tls-server-name", "localhost",
		"--links", "2", "--requests", "400", "--concurrency", "100", "--pan", cardA, "--pan", cardB, "--timeout", "20s"}, &out, &errOut)
	if code != terminal.ExitOK || !strings.Contains(out.String(), "DE 39 00: 400") {
		t.Fatalf("termsim van exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	if got := len(h.issuers["card-a"].Approvals()) + len(h.issuers["card-b"].Approvals()); got != 400 {
		t.Fatalf("issuers approved %d", got)
	}
}
