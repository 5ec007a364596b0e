package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/switch/config"
)

// serve accepts TLS connections with s until the test ends, completing
// each handshake.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	return testnet.Serve(t, tls.NewListener(testnet.Listen(t), s.Config()), func(c net.Conn) {
		_ = c.(*tls.Conn).Handshake()
		_, _ = c.Read(make([]byte, 1)) // hold until the client closes
	}).Addr()
}

// serverCN dials addr and returns the CN of the certificate it served.
func serverCN(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate on the first read.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write beside and rename: the switch never reads a half-written file.
	if err := os.WriteFile(to+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".new", to); err != nil {
		t.Fatal(err)
	}
}

func TestServerCertificateReloadsWhenFilesChange(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	first, second := ca.Server(t, "first"), ca.Server(t, "second")
	s, err := NewServer(config.ServerTLS{CertFile: first.CertFile, KeyFile: first.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if cn, err := serverCN(t, addr, client); err != nil || cn != "first" {
		t.Fatalf("served %q (%v), want first", cn, err)
	}
	copyFile(t, second.CertFile, first.CertFile)
	copyFile(t, second.KeyFile, first.KeyFile)
	testnet.EventuallyOK(t, 10*time.Second, "the second certificate after the files changed", func() error {
		if cn, err := serverCN(t, addr, client); err != nil || cn != "second" {
			return fmt.Errorf("still serving %q (%v)", cn, err)
		}
		return nil
	})
}

func TestUpdateSwapsClientCAAndKeepsOldOnError(t *testing.T) {
	serverCA, oldCA, newCA := tlstest.NewCA(t, "server"), tlstest.NewCA(t, "old"), tlstest.NewCA(t, "new")
	srv := serverCA.Server(t, "switch")
	s, err := NewServer(config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: oldCA.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	withCert := func(p tlstest.Pair) *tls.Config {
		return &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{p.TLS(t)}}
	}
	oldClient, newClient := withCert(oldCA.Client(t, "van")), withCert(newCA.Client(t, "van"))
	if _, err := serverCN(t, addr, oldClient); err != nil {
		t.Fatalf("old CA's client refused: %v", err)
	}
	if _, err := serverCN(t, addr, newClient); err == nil {
		t.Fatal("new CA's client accepted before the update")
	}
	if err := s.Update(config.ServerTLS{CertFile: srv.CertFile, KeyFile: "/nonexistent", ClientCAFile: newCA.CertFile}); err == nil {
		t.Fatal("an update with a missing key was accepted")
	}
	if _, err := serverCN(t, addr, oldClient); err != nil {
		t.Fatalf("a failed update changed the running material: %v", err)
	}
	if err := s.Update(config.ServerTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: newCA.CertFile}); err != nil {
		t.Fatal(err)
	}
	if _, err := serverCN(t, addr, newClient); err != nil {
		t.Fatalf("new CA's client refused after the update: %v", err)
	}
	if _, err := serverCN(t, addr, oldClient); err == nil {
		t.Fatal("old CA's client accepted after the update")
	}
}
