// Package tlsconf builds the TLS configurations of the switch's links:
// listeners (terminals, VANs) with optional mutual TLS and a client
// allow-list, and issuer endpoints. Certificates are re-read when their
// files change, so a renewal needs no restart.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kbpay/switch/switch/config"
)

// ErrClientNotAllowed is a client certificate that verified but whose
// subject CN and DNS names are all off the listener's allow-list.
var ErrClientNotAllowed = errors.New("client certificate not on the allow-list")

// Server is a listener's TLS material. Config's handshakes always use the
// latest material: certificate files re-read when they change, and
// everything replaced by Update (a reload).
type Server struct {
	state atomic.Pointer[serverState]
}

type serverState struct {
	cert      *certFile
	clientCAs *x509.CertPool
	allowed   map[string]bool
}

// NewServer loads the listener's certificate, key and client CAs.
func NewServer(c config.ServerTLS) (*Server, error) {
	s := &Server{}
	if err := s.Update(c); err != nil {
		return nil, err
	}
	return s, nil
}

// Update replaces the TLS material for the handshakes that follow (open
// connections keep theirs). On error nothing changes.
func (s *Server) Update(c config.ServerTLS) error {
	st := &serverState{cert: &certFile{certPath: c.CertFile, keyPath: c.KeyFile}}
	if err := st.cert.load(); err != nil {
		return err
	}
	if c.ClientCAFile != "" {
		pool, err := loadPool(c.ClientCAFile)
		if err != nil {
			return fmt.Errorf("tls.client_ca_file: %w", err)
		}
		st.clientCAs = pool
	}
	if len(c.AllowedClients) > 0 {
		st.allowed = map[string]bool{}
		for _, n := range c.AllowedClients {
			st.allowed[n] = true
		}
	}
	s.state.Store(st)
	return nil
}

// Config is the tls.Config to serve with.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			st := s.state.Load()
			cfg := &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return st.cert.get() },
			}
			if st.clientCAs != nil {
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
				cfg.ClientCAs = st.clientCAs
				cfg.VerifyConnection = st.verify
			}
			return cfg, nil
		},
	}
}

func (st *serverState) verify(cs tls.ConnectionState) error {
	if st.allowed == nil {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return ErrClientNotAllowed
	}
	leaf := cs.PeerCertificates[0]
	if st.allowed[leaf.Subject.CommonName] {
		return nil
	}
	for _, n := range leaf.DNSNames {
		if st.allowed[n] {
			return nil
		}
	}
	return fmt.Errorf("%w: CN %q", ErrClientNotAllowed, leaf.Subject.CommonName)
}

// PeerName is the subject CN of a connection's verified client
// certificate ("" without one).
func PeerName(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

// certFile is a certificate and key on disk, re-read when either file's
// modification time or size changes (checked at most once a second).
type certFile struct {
	certPath, keyPath string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func (f *certFile) fileStamp() string {
	s := ""
	for _, p := range []string{f.certPath, f.keyPath} {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

func (f *certFile) load() error {
	c, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return fmt.Errorf("tls certificate %s: %w", f.certPath, err)
	}
	f.mu.Lock()
	f.cert, f.stamp, f.checked = &c, f.fileStamp(), time.Now()
	f.mu.Unlock()
	return nil
}

// get returns the certificate, re-reading the files when they changed; a
// half-written or broken pair keeps the previous certificate in service.
func (f *certFile) get() (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < time.Second {
		return f.cert, nil
	}
	f.checked = time.Now()
	if st := f.fileStamp(); st != f.stamp {
		if c, err := tls.LoadX509KeyPair(f.certPath, f.keyPath); err == nil {
			f.cert, f.stamp = &c, st
		}
	}
	return f.cert, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// Client builds the TLS configuration to connect to an issuer endpoint
// (nil, nil: plain TCP). The client certificate is re-read at each
// handshake, so a renewed one is used from the next connection.
func Client(ec config.Endpoint) (*tls.Config, error) {
	t := ec.TLS
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(ec.Addr)
		if err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
		cfg.ServerName = host
	}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		f := &certFile{certPath: t.CertFile, keyPath: t.KeyFile}
		if err := f.load(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return f.get() }
	}
	return cfg, nil
}

// Adopt makes o's material s's for the handshakes that follow: a reload
// prepares a Server (which can fail) and adopts it (which cannot).
func (s *Server) Adopt(o *Server) { s.state.Store(o.state.Load()) }
