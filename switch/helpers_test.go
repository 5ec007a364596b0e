package payswitch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/settle"
	"github.com/kbpay/switch/switch/storage"
)

func fmtAny(v any) string { return fmt.Sprint(v) }

// mustYAML round-trips a Config through YAML so tests exercise the loader.
func mustYAMLB(t testing.TB, c config.Config) []byte { return mustYAML(t, c) }

func mustYAML(t testing.TB, c config.Config) []byte {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testConfig is the default configuration with all state in a temporary
// data folder and the admin endpoint on a free port.
func testConfig(t testing.TB) config.Config {
	c := config.Default()
	c.DataDir = t.TempDir()
	c.HSM.KeyStore, c.HSM.MasterKeyFile, c.Vault.Path, c.Journal.Path = "", "", "", ""
	c.HSM.MasterKeyEnv = "SWITCH_TEST_MASTER_KEY_UNSET"
	c.Admin.Addr = "127.0.0.1:0"
	return c
}

// newReviewHarness starts switch instance name with a store-and-forward
// queue that gives a reversal up to manual review after 300ms, then makes
// an approved sale on card-b and a sale on card-a whose issuer is silent
// (answered 91; its reversal heads for manual review). It returns the
// harness and the approved sale's RRN.
func newReviewHarness(t *testing.T, name string) (*harness, string) {
	t.Helper()
	h := newHarness(t, "", func(c *config.Config) {
		c.InstanceName = name
		c.Journal.SAFInterval = 20 * time.Millisecond
		c.Journal.ReversalExpiry = 300 * time.Millisecond
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.linkedTerminal("card-b")
	_, resp := sale(t, term, cardB, 1200)
	rrn, _ := resp.GetString(specs.RRN)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" || rrn == "" {
		t.Fatalf("sale: %s rrn %q", rc, rrn)
	}
	h.issuers["card-a"].SetMode(issuer.Silent)
	if _, resp := sale(t, term, cardA, 3400); func() string { rc, _ := resp.GetString(specs.ResponseCode); return rc }() != "91" {
		t.Fatal("silent issuer: no 91")
	}
	return h, rrn
}

// settlement reads today's settlement lines from h's journal and writes
// the settlement files into a temporary folder, returning both.
func settlement(t *testing.T, h *harness) (map[string][]settle.Line, []string) {
	t.Helper()
	j, err := storage.Open(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	lines, err := settle.Lines(context.Background(), j.Lookup(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	paths, err := settle.Write(lines, time.Now(), t.TempDir())
	if err != nil {
		t.Fatalf("settlement files %v: %v", paths, err)
	}
	return lines, paths
}

// linkedTerminal waits until the issuer route's link is signed on, then
// dials a terminal to h.
func (h *harness) linkedTerminal(route string) *terminal.Client {
	h.t.Helper()
	waitFor(h.t, 5*time.Second, route+" link", func() bool { return h.linksUp(route) })
	return h.terminal()
}
