package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// breakerState returns the breaker state of the route's endpoint at addr.
func breakerState(l *Link, addr string) string {
	for _, e := range l.Endpoints() {
		if e.Addr == addr {
			return e.Breaker
		}
	}
	return "no such endpoint"
}

// outcomes is what a load run saw, by result.
type outcomes struct {
	mu                      sync.Mutex
	approved                map[string]bool // RRNs answered 00
	unknownRRNs             map[string]bool // RRNs whose outcome is unknown (the caller reverses them)
	unknown, unavailable, n int
	other                   []error
}

// runSales sends total sales, conc at a time, calling midway after half
// of them completed; it returns what each got.
func runSales(t *testing.T, l *Link, total, conc int, midway func()) *outcomes {
	t.Helper()
	o := &outcomes{approved: map[string]bool{}, unknownRRNs: map[string]bool{}}
	var next, done atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				req := sale(t, l, "000000000100")
				resp, err := l.Exchange(context.Background(), req)
				o.mu.Lock()
				o.n++
				switch {
				case err == nil:
					rc, _ := resp.GetString(specs.ResponseCode)
					rrn, _ := req.GetString(specs.RRN)
					if rc != "00" {
						o.other = append(o.other, fmt.Errorf("DE 39 %s", rc))
					} else if o.approved[rrn] {
						o.other = append(o.other, fmt.Errorf("RRN %s approved twice", rrn))
					}
					o.approved[rrn] = true
				case errors.Is(err, ErrNoAnswer):
					o.unknown++
					rrn, _ := req.GetString(specs.RRN)
					o.unknownRRNs[rrn] = true
				case errors.Is(err, ErrUnavailable):
					o.unavailable++
				default:
					o.other = append(o.other, err)
				}
				o.mu.Unlock()
				if done.Add(1) == int64(total/2) && midway != nil {
					once.Do(midway)
				}
			}
		}()
	}
	wg.Wait()
	return o
}

// approvalsAt maps each RRN the issuers approved to how often.
func approvalsAt(iss ...*issuer.Issuer) map[string]int {
	m := map[string]int{}
	for _, is := range iss {
		for _, a := range is.Approvals() {
			m[a.RRN]++
		}
	}
	return m
}

// checkNoneLostOrDuplicated: every sale answered 00 was approved exactly
// once by exactly one issuer, and the issuers approved nothing else but
// sales whose outcome the caller was told is unknown (it reverses them:
// an issuer that dies after approving, before its answer left).
func checkNoneLostOrDuplicated(t *testing.T, o *outcomes, iss ...*issuer.Issuer) {
	t.Helper()
	if len(o.other) > 0 {
		t.Fatalf("unexpected outcomes: %v", o.other[:min(5, len(o.other))])
	}
	at := approvalsAt(iss...)
	for rrn := range o.approved {
		if at[rrn] != 1 {
			t.Errorf("RRN %s answered 00 but approved %d times by the issuers", rrn, at[rrn])
		}
	}
	for rrn, n := range at {
		if !o.approved[rrn] && !(o.unknownRRNs[rrn] && n == 1) {
			t.Errorf("RRN %s approved %d times by an issuer but not answered 00", rrn, n)
		}
	}
}

func twoEndpointRoute(t *testing.T, policy string, failures int, openFor time.Duration) (*Link, *issuer.Issuer, *issuer.Issuer) {
	t.Helper()
	a, b := startIssuer(t), startIssuer(t)
	l := newLink(t, a.Addr(), func(rc *config.IssuerRoute) {
		rc.Addrs = nil
		rc.Endpoints = []config.Endpoint{{Addr: a.Addr(), Links: 1}, {Addr: b.Addr(), Links: 1}}
		rc.Policy = policy
		rc.Timeout = time.Second
		rc.ReconnectWait = time.Minute // a closed issuer stays away for the test
		rc.MaxReconnectWait = time.Minute
		rc.Breaker = config.Breaker{Failures: failures, OpenFor: openFor, Probes: 1}
	})
	waitFor(t, "both endpoints signed on", func() bool { return l.Up() == 2 })
	return l, a, b
}

func TestEndpointGoesSilentMidLoadBreakerIsolatesIt(t *testing.T) {
	const total, conc, failures = 300, 6, 3
	l, a, b := twoEndpointRoute(t, config.PolicyRoundRobin, failures, time.Hour)
	o := runSales(t, l, total, conc, func() { a.SetMode(issuer.Silent) })
	checkNoneLostOrDuplicated(t, o, a, b)
	if got := breakerState(l, a.Addr()); got != "open" {
		t.Fatalf("breaker of the silent endpoint is %s, want open", got)
	}
	// Only requests that had left for the silent endpoint before its
	// breaker opened are unknown (the caller reverses them): at most the
	// failures that trip it plus those already in flight.
	if o.unknown > failures+conc || o.unavailable != 0 {
		t.Fatalf("%d unknown, %d unavailable of %d; want <= %d unknown and none unavailable", o.unknown, o.unavailable, total, failures+conc)
	}
	if len(o.approved)+o.unknown != total {
		t.Fatalf("%d approved + %d unknown != %d sent", len(o.approved), o.unknown, total)
	}
	// The route keeps approving on the healthy endpoint.
	for range 20 {
		if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); err != nil {
			t.Fatalf("after isolation: %v", err)
		}
	}
}

func TestEndpointDiesMidLoadRouteKeepsApproving(t *testing.T) {
	const total, conc = 300, 6
	l, a, b := twoEndpointRoute(t, config.PolicyRoundRobin, 3, time.Hour)
	o := runSales(t, l, total, conc, func() { _ = b.Close() })
	checkNoneLostOrDuplicated(t, o, a, b)
	// A request on the dying link when it dropped has an unknown outcome;
	// every other one is approved by the survivor.
	if o.unknown > conc || o.unavailable != 0 || len(o.approved)+o.unknown != total {
		t.Fatalf("%d approved, %d unknown, %d unavailable of %d", len(o.approved), o.unknown, o.unavailable, total)
	}
	waitFor(t, "the dead endpoint's link dropped", func() bool { return l.Up() == 1 })
	for range 20 {
		if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); err != nil {
			t.Fatalf("after the endpoint died: %v", err)
		}
	}
}

func TestBreakerOpensAnswersAtOnceAndRecloses(t *testing.T) {
	is := startIssuer(t)
	l := newLink(t, is.Addr(), func(rc *config.IssuerRoute) {
		rc.Timeout = 300 * time.Millisecond
		rc.Breaker = config.Breaker{Failures: 2, OpenFor: 500 * time.Millisecond, Probes: 1}
	})
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	is.SetMode(issuer.Silent)
	for range 2 {
		if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("silent issuer: err = %v, want ErrNoAnswer", err)
		}
	}
	if got := breakerState(l, is.Addr()); got != "open" {
		t.Fatalf("breaker %s after 2 timeouts, want open", got)
	}
	before := len(is.Received())
	start := time.Now()
	_, err := l.Exchange(context.Background(), sale(t, l, "000000000100"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("open breaker: err = %v, want ErrUnavailable and ErrBreakerOpen", err)
	}
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Fatalf("open breaker answered after %v: it waited for the timeout", d)
	}
	if len(is.Received()) != before {
		t.Fatal("a request left while the breaker was open")
	}
	if l.STANsInUse() != 2 { // the two unanswered STANs are quarantined, the refused one is free
		t.Fatalf("%d STANs in use, want 2", l.STANsInUse())
	}
	is.SetMode(issuer.Normal)
	waitFor(t, "half-open", func() bool { return breakerState(l, is.Addr()) == "half-open" })
	if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := breakerState(l, is.Addr()); got != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", got)
	}
}

func TestPriorityPolicyFailsOverAndBack(t *testing.T) {
	primary, backup := startIssuer(t), startIssuer(t)
	l := newLink(t, primary.Addr(), func(rc *config.IssuerRoute) {
		rc.Addrs = nil
		rc.Endpoints = []config.Endpoint{{Addr: backup.Addr(), Priority: 2, Links: 1}, {Addr: primary.Addr(), Priority: 1, Links: 1}}
		rc.Policy = config.PolicyPriority
	})
	waitFor(t, "both signed on", func() bool { return l.Up() == 2 })
	send := func(n int) {
		t.Helper()
		for range n {
			if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(10)
	if len(primary.Approvals()) != 10 || len(backup.Approvals()) != 0 {
		t.Fatalf("primary %d, backup %d approvals; want all on the primary", len(primary.Approvals()), len(backup.Approvals()))
	}
	primary.SetMode(issuer.Silent) // still signed on: the breaker decides
	for i := 0; breakerState(l, primary.Addr()) != "open"; i++ {
		if i > 10 {
			t.Fatal("primary's breaker never opened")
		}
		_, _ = l.Exchange(context.Background(), sale(t, l, "000000000100"))
	}
	send(10)
	if len(backup.Approvals()) != 10 {
		t.Fatalf("backup approved %d, want 10", len(backup.Approvals()))
	}
}

func TestAllEndpointsDownAnswersUnavailableAtOnce(t *testing.T) {
	addrs := []string{testnet.FreeAddr(t), testnet.FreeAddr(t)} // nothing listens there
	l := newLink(t, addrs[0], func(rc *config.IssuerRoute) {
		rc.Addrs = addrs
		rc.Timeout = 5 * time.Second
	})
	start := time.Now()
	_, err := l.Exchange(context.Background(), sale(t, l, "000000000100"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v with every endpoint down", d)
	}
	if l.STANsInUse() != 0 {
		t.Fatalf("%d STANs still owned by requests that never left", l.STANsInUse())
	}
}

// The report: a route with two addresses, one of them silent; 60
// sales through it. Before per-endpoint breakers about half timed out.
func TestSilentOneOfTwoAddrsStillApproves(t *testing.T) {
	a, b := startIssuer(t), startIssuer(t)
	l := newLink(t, a.Addr(), func(rc *config.IssuerRoute) {
		rc.Addrs = []string{a.Addr(), b.Addr()}
		rc.Timeout = 300 * time.Millisecond
	})
	waitFor(t, "both signed on", func() bool { return l.Up() == 2 })
	a.SetMode(issuer.Silent)
	o := runSales(t, l, 60, 1, nil)
	checkNoneLostOrDuplicated(t, o, a, b)
	t.Logf("%d approved, %d unknown", len(o.approved), o.unknown)
	if o.unknown > 5 { // the default breaker opens after 5 consecutive timeouts
		t.Fatalf("%d of 60 sales unanswered with one healthy endpoint", o.unknown)
	}
}

func TestEndpointMutualTLS(t *testing.T) {
	spec := specs.MustLoad(specs.IssuerDialect)
	serverCA, clientCA, rogueCA := tlstest.NewCA(t, "issuer-ca"), tlstest.NewCA(t, "switch-ca"), tlstest.NewCA(t, "rogue")
	srv := serverCA.Server(t, "issuer", "issuer.example")
	srvCfg := &tls.Config{Certificates: []tls.Certificate{srv.TLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	addr := scriptedTLSIssuer(t, spec, srvCfg)
	cases := []struct {
		name string
		tls  config.ClientTLS
		up   bool
	}{
		{"client certificate from the CA the issuer trusts", tlsClient(serverCA, clientCA.Client(t, "switch"), "issuer.example"), true},
		{"client certificate from another CA", tlsClient(serverCA, rogueCA.Client(t, "switch"), "issuer.example"), false},
		{"issuer certificate for another name", tlsClient(serverCA, clientCA.Client(t, "switch"), "someone-else.example"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink(t, addr, func(rc *config.IssuerRoute) {
				rc.Addrs = nil
				rc.Endpoints = []config.Endpoint{{Addr: addr, Links: 1, TLS: &tc.tls}}
				rc.Header = "binary2" // isotest frames
				// A refused client certificate may only show when the
				// sign-on goes unanswered: keep each failed attempt short.
				rc.ConnectTimeout, rc.MaxReconnectWait = time.Second, 50*time.Millisecond
				rc.Breaker = config.Breaker{Failures: 2, OpenFor: time.Hour, Probes: 1}
			})
			if !tc.up {
				// Failed handshakes are connect failures: they open the breaker.
				waitFor(t, "the breaker to open on failed handshakes", func() bool { return breakerState(l, addr) == "open" })
				if _, err := l.Exchange(context.Background(), sale(t, l, "000000000100")); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err = %v, want ErrUnavailable", err)
				}
				return
			}
			waitFor(t, "sign-on over TLS", func() bool { return l.Up() == 1 })
			resp, err := l.Exchange(context.Background(), sale(t, l, "000000000100"))
			if err != nil {
				t.Fatal(err)
			}
			if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
				t.Fatalf("DE 39 %s", rc)
			}
		})
	}
}

func tlsClient(serverCA *tlstest.CA, p tlstest.Pair, serverName string) config.ClientTLS {
	return config.ClientTLS{CAFile: serverCA.CertFile, CertFile: p.CertFile, KeyFile: p.KeyFile, ServerName: serverName}
}

// scriptedTLSIssuer signs on and approves every request, over TLS.
func scriptedTLSIssuer(t *testing.T, spec *iso8583.MessageSpec, cfg *tls.Config) string {
	return isotest.ServeTLS(t, spec, cfg, func(c *connection.Connection, req *iso8583.Message) {
		if !isotest.SignOn(c, spec, req) {
			_ = c.Reply(isotest.Answer(spec, req, "0210", "00"))
		}
	})
}
