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

	h := newHarness(t, is.Addr(), func(c *config.Config) {
		// The ZMK and card-a's own ZPK enter the HSM by key ceremony.
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
	})
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
