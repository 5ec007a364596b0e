package payswitch_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/tlstest"
	"github.com/kbpay/switch/switch/config"
)

// TestAdminTLS: with admin.tls the admin endpoint speaks HTTPS with the
// configured certificate, and plain HTTP gets nothing useful.
func TestAdminTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "admin")
	cert := ca.Server(t, "switch-admin")
	certFile, keyFile, pool := cert.CertFile, cert.KeyFile, ca.Pool()
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
