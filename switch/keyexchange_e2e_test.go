package payswitch_test

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/keyring"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// TestIssuerKeyExchange: card-a's issuer sends a new zone PIN key under
// the zone master key (0800/161); the switch imports it through its HSM
// and translates the next PIN under it (the issuer verifies under the new
// key only), and a key change with a wrong KCV is refused (30) with the
// current key still in use.
func TestIssuerKeyExchange(t *testing.T) {
	zmk := []byte("ZMK0123456789ABC")
	is := issuertest.Start(t, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}, ZMK: hex.EncodeToString(zmk)})

	h := newHarness(t, is.Addr(), func(c *config.Config) { zoneKeyCeremony(t, c, zmk) })
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	waitFor(t, 5*time.Second, "card-a signed on", func() bool { return is.SignOns() > 0 })
	term := h.terminalOn(t, "terminal", nil)
	pay := func(step string) {
		t.Helper()
		res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100, PIN: devkeys.DemoPIN})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if res.ResponseCode != "00" {
			t.Fatalf("%s: PIN purchase answered %s, want 00", step, res.ResponseCode)
		}
	}
	pay("under the first key")

	if rc, err := is.ChangeKey([]byte("NEWZPK0123456789"), false); err != nil || rc != "00" {
		t.Fatalf("key change: %q, %v; want 00", rc, err)
	}
	pay("under the exchanged key")

	if rc, err := is.ChangeKey([]byte("BADZPK0123456789"), true); err != nil || rc != "30" {
		t.Fatalf("key change with a wrong KCV: %q, %v; want 30", rc, err)
	}
	pay("after the refused key change")
}

// zoneKeyCeremony enters card-a's zone master key zmk and its first zone
// PIN key into the HSM of the switch c configures, by key ceremony (two
// components each), and sets them as card-a's pin.
func zoneKeyCeremony(t *testing.T, c *config.Config, zmk []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "switchd.yaml")
	writeConfig(t, file, *c)
	half := bytes.Repeat([]byte{0x5A}, 16) // components: half, and key XOR half
	for _, k := range []struct{ label, usage, hex string }{
		{"zmk-card-a", "zmk", hex.EncodeToString(zmk)},
		{"zpk-card-a", "zpk", devkeys.ZPKHex},
	} {
		key := devkeys.Bytes(k.hex)
		other := make([]byte, 16)
		subtle.XORBytes(other, key, half)
		stdin := fmt.Sprintf("%X %s\n%X %s\n", half, kcvHex(t, half), other, kcvHex(t, other))
		var out strings.Builder
		if code := keyring.Main([]string{"import", "--config", file, "--label", k.label, "--usage", k.usage,
			"--algorithm", "tdes", "--components", "2", "--kcv", kcvHex(t, key)}, strings.NewReader(stdin), &out, &out); code != 0 {
			t.Fatalf("key ceremony %s: exit %d\n%s", k.label, code, out.String())
		}
	}
	c.Routes[0].PIN = &config.PINKey{Key: "zpk-card-a", ZMK: "zmk-card-a"}
}

// TestIssuerKeyExchangeReachesEveryInstance: two switch instances on one
// PostgreSQL store, each with its own HSM holding the ZMK, are linked to
// card-a's issuer. The issuer sends a new zone PIN key over sw-a's link
// only; a PIN purchase through sw-b is approved under the new key (the
// issuer verifies under it only) within a few heartbeats: sw-a recorded
// the key under the ZMK in the store and sw-b imported it through its own
// HSM. Neither logs the key, only its KCV.
func TestIssuerKeyExchangeReachesEveryInstance(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, "keyexchange")
	zmk := []byte("ZMK0123456789ABC")
	is := issuertest.Start(t, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}, ZMK: hex.EncodeToString(zmk)})
	start := func(name string, signOns int64) *harness {
		h := newHarness(t, is.Addr(), func(c *config.Config) {
			c.InstanceName, c.Store.Lease = name, 3*time.Second // a heartbeat every second
			c.Store.Backend, c.Store.DSN, c.Store.MigrateAtStart = "postgres", dsn, true
			// A generous issuer timeout: this test is about the key, and two
			// switches, PostgreSQL and the issuer under the race detector
			// on two loaded cores can take longer than routeTime (400 ms)
			// to answer a PIN purchase (91).
			setRouteTimeouts(c, 10*time.Second)
			zoneKeyCeremony(t, c, zmk)
		})
		waitFor(t, 10*time.Second, name+"'s card-a link", func() bool { return h.linksUp("card-a") })
		waitFor(t, 10*time.Second, name+" signed on", func() bool { return is.SignOns() >= signOns })
		return h
	}
	// sw-a connects first: the issuer's key change goes over its link.
	a := start("sw-a", 1)
	b := start("sw-b", 2)
	pay := func(h *harness) string {
		t.Helper()
		// The terminal waits longer than the switch waits for the issuer.
		term := h.terminalOn(t, "terminal", func(o *terminal.Options) { o.Timeout = 30 * time.Second })
		res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100, PIN: devkeys.DemoPIN})
		if err != nil {
			t.Fatalf("PIN purchase: %v", err)
		}
		return res.ResponseCode
	}
	if rc := pay(b); rc != "00" {
		t.Fatalf("PIN purchase through sw-b under the first key: %s, want 00", rc)
	}
	newZPK := []byte("NEWZPK0123456789")
	if rc, err := is.ChangeKey(newZPK, false); err != nil || rc != "00" {
		t.Fatalf("key change: %q, %v; want 00", rc, err)
	}
	if rc := pay(a); rc != "00" {
		t.Fatalf("PIN purchase through sw-a, whose link took the key change: %s, want 00", rc)
	}
	waitFor(t, 20*time.Second, "a PIN purchase through sw-b approved under the new key", func() bool { return pay(b) == "00" })
	adopted := b.logs.FilterMessage("issuer key change recorded by another instance: new zone PIN key current").All()
	if len(adopted) != 1 {
		t.Fatalf("sw-b logged %d key changes taken from the store, want 1", len(adopted))
	}
	kcv := kcvHex(t, newZPK)
	for _, h := range []*harness{a, b} {
		for _, e := range h.logs.All() {
			logged := fmt.Sprint(e.Message, e.ContextMap())
			if strings.Contains(strings.ToUpper(logged), strings.ToUpper(hex.EncodeToString(newZPK))) {
				t.Fatalf("a log line carries the clear key: %s", logged)
			}
		}
	}
	if got := fmt.Sprint(adopted[0].ContextMap()["kcv"]); !strings.EqualFold(got, kcv) {
		t.Fatalf("sw-b logged KCV %s, want %s", got, kcv)
	}
}
