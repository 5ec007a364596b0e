package payswitch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/config"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key to dir and
// returns the paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchd admin test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAdminTLS: with admin.tls the admin endpoint speaks HTTPS with the
// configured certificate, and plain HTTP gets nothing useful.
func TestAdminTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t, t.TempDir())
	c := productionConfig(t)
	c.Admin.TLS = &config.AdminTLS{CertFile: certFile, KeyFile: keyFile}
	sw, _, err := parseAndBuild(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if got := adminGetStatus(t, client, "https://"+sw.AdminAddr()+"/v1/saf", testAdminToken); got != http.StatusOK {
		t.Errorf("HTTPS /v1/saf with the token: status %d", got)
	}
	if got := adminGetStatus(t, client, "https://"+sw.AdminAddr()+"/v1/saf", config.DemoAdminToken); got != http.StatusUnauthorized {
		t.Errorf("HTTPS /v1/saf with the demo token: status %d", got)
	}
	// The console's session cookie is Secure on the TLS admin port.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	login, err := client.PostForm("https://"+sw.AdminAddr()+"/console/login", url.Values{"operator": {"alice"}, "token": {testAdminToken}})
	if err != nil {
		t.Fatal(err)
	}
	_ = login.Body.Close()
	if cks := login.Cookies(); login.StatusCode != http.StatusSeeOther || len(cks) != 1 || !cks[0].Secure || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("console login over HTTPS: %d, cookies %+v", login.StatusCode, cks)
	}
	resp, err := http.Get("http://" + sw.AdminAddr() + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS admin port")
		}
	}
}

func TestAdminTLSBadCertificateRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(t)
	c.Admin.TLS = &config.AdminTLS{CertFile: filepath.Join(dir, "none.crt"), KeyFile: filepath.Join(dir, "none.key")}
	if _, _, err := parseAndBuild(t, c); err == nil {
		t.Fatal("switch built with a missing admin certificate")
	}
}
