package payswitch_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// tlsTerminal dials the switch's terminal listener over TLS with cfg.
func tlsTerminal(t *testing.T, addr string, cfg *tls.Config) (*terminal.Client, error) {
	t.Helper()
	opts := terminal.DefaultOptions()
	opts.Addr = addr
	opts.Timeout = 5 * time.Second
	opts.TLS = cfg
	c, err := terminal.Dial(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// TestListenerMutualTLS: a terminal with a certificate from the client CA
// and on the allow-list (by CN or by DNS SAN) is served; a wrong CA, no
// certificate, a name off the list and plain TCP get no answer.
func TestListenerMutualTLS(t *testing.T) {
	serverCA, clientCA, rogueCA := tlstest.NewCA(t, "server-ca"), tlstest.NewCA(t, "client-ca"), tlstest.NewCA(t, "rogue-ca")
	srv := serverCA.Server(t, "switch")
	h := newHarness(t, "", func(c *config.Config) {
		c.Listeners[0].TLS = &config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile,
			ClientCAFile: clientCA.CertFile, AllowedClients: []string{"van-one", "van-two.example"}}
	})
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") })
	client := func(p *tlstest.Pair) *tls.Config {
		c := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost"}
		if p != nil {
			c.Certificates = []tls.Certificate{p.TLS(t)}
		}
		return c
	}
	byCN, bySAN := clientCA.Client(t, "van-one"), clientCA.Client(t, "other-cn", "van-two.example")
	wrongCA, offList := rogueCA.Client(t, "van-one"), clientCA.Client(t, "van-three")
	cases := []struct {
		name  string
		tls   *tls.Config
		serve bool
	}{
		{"allowed by CN", client(&byCN), true},
		{"allowed by DNS SAN", client(&bySAN), true},
		{"certificate from another CA", client(&wrongCA), false},
		{"no client certificate", client(nil), false},
		{"not on the allow-list", client(&offList), false},
		{"plain TCP", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			term, err := tlsTerminal(t, h.addr, tc.tls)
			if err != nil {
				if tc.serve {
					t.Fatalf("dial: %v", err)
				}
				return // refused during the handshake
			}
			res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9410000000000005", Amount: 100})
			if tc.serve {
				if err != nil || res.ResponseCode != "00" {
					t.Fatalf("purchase: %v %s", err, res.ResponseCode)
				}
				return
			}
			if err == nil {
				t.Fatalf("refused client was answered %s", res.ResponseCode)
			}
		})
	}
	waitFor(t, 5*time.Second, "4 TLS refusals counted", func() bool {
		return strings.Contains(h.adminGet(t, "/metrics"), `switch_refused_total{listener="terminal",reason="tls_handshake"} 4`)
	})
}

// TestReloadSwapsListenerTLSMaterial: a reload that trusts another client
// CA admits its terminals from the next handshake, refuses the old CA's
// new connections, and keeps the connection already open serving.
func TestReloadSwapsListenerTLSMaterial(t *testing.T) {
	serverCA, oldCA, newCA := tlstest.NewCA(t, "server-ca"), tlstest.NewCA(t, "old-ca"), tlstest.NewCA(t, "new-ca")
	srv := serverCA.Server(t, "switch")
	h := newHarness(t, "", func(c *config.Config) {
		c.Listeners[0].TLS = &config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: oldCA.CertFile}
	})
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") })
	with := func(p tlstest.Pair) *tls.Config {
		return &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{p.TLS(t)}}
	}
	oldClient, newClient := with(oldCA.Client(t, "van")), with(newCA.Client(t, "van"))
	buy := func(term *terminal.Client) string {
		res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9410000000000005", Amount: 100})
		if err != nil {
			return err.Error()
		}
		return res.ResponseCode
	}
	open, err := tlsTerminal(t, h.addr, oldClient)
	if err != nil || buy(open) != "00" {
		t.Fatalf("old CA before the reload: %v", err)
	}
	cfg := h.cfg
	cfg.Listeners = append([]config.Listener(nil), h.cfg.Listeners...)
	cfg.Listeners[0].TLS = &config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: newCA.CertFile}
	sum, err := h.sw.Reload(context.Background(), cfg)
	if err != nil || len(sum.Listeners) != 1 {
		t.Fatalf("reload: %v %+v", err, sum)
	}
	if got := buy(open); got != "00" {
		t.Fatalf("the connection open across the reload: %s", got)
	}
	if term, err := tlsTerminal(t, h.addr, newClient); err != nil || buy(term) != "00" {
		t.Fatalf("new CA after the reload refused: %v", err)
	}
	if term, err := tlsTerminal(t, h.addr, oldClient); err == nil && buy(term) == "00" {
		t.Fatal("old CA's new connection admitted after the reload")
	}
}
