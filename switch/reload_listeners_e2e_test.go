package payswitch_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
)

// reloadWith reloads h's configuration as mutate changes it.
func (h *harness) reloadWith(t *testing.T, mutate func(*config.Config)) (payswitch.ReloadSummary, error) {
	t.Helper()
	cfg := h.cfg
	cfg.Listeners = slices.Clone(h.cfg.Listeners)
	cfg.Routes = slices.Clone(h.cfg.Routes)
	mutate(&cfg)
	return h.sw.Reload(context.Background(), reparse(t, cfg))
}

// refusesConnects reports an address nothing accepts on.
func refusesConnects(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

func lane(name, addr string) config.Listener {
	return config.Listener{Name: name, Addr: addr, PIN: &config.PINKey{Key: "tpk-demo"}}
}

// TestReloadAddsListenerUnderLoad: while terminals buy on the running
// listener without pause, a reload adds "lane-2": it serves at once, its
// series exist at zero, and the load sees no failed transaction.
func TestReloadAddsListenerUnderLoad(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	load := startLoad(t, h, []string{cardA, cardB}, 3)
	load.waitMore(t, 30)
	sum, err := h.reloadWith(t, func(c *config.Config) { c.Listeners = append(c.Listeners, lane("lane-2", "127.0.0.1:0")) })
	if err != nil || !slices.Contains(sum.Listeners, "lane-2") {
		t.Fatalf("reload adding lane-2: %v %+v", err, sum)
	}
	m := h.adminGet(t, "/metrics")
	for _, want := range []string{`payswitch_refused_total{listener="lane-2",reason="max_in_flight"} 0`,
		`payswitch_requests_total{listener="lane-2",mti="0200",rc="91",route="card-b"} 0`, `payswitch_in_flight{listener="lane-2"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	term := h.terminalOn(t, "lane-2", nil)
	for range 5 {
		if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA2, Amount: 100}); err != nil || res.ResponseCode != "00" {
			t.Fatalf("purchase on the added listener: %v %s", err, res.ResponseCode)
		}
	}
	if links := h.adminGet(t, "/v1/links"); !strings.Contains(links, `"lane-2"`) {
		t.Errorf("/v1/links does not list lane-2: %s", links)
	}
	load.waitMore(t, 30)
	load.finish(t)
}

// TestReloadRemovesVANListenerWithSalesInFlight: a reload removes the
// VAN listener while a signed-on link has sales held at a slow issuer:
// new connects are refused at once, every sale is answered 00, then the
// link is signed off (0800 DE 70 002) and closed; the journal has every
// sale settled and the other listeners never noticed.
func TestReloadRemovesVANListenerWithSalesInFlight(t *testing.T) {
	const n = 8
	h := newVANHarness(t, func(*config.Listener) {})
	addr := h.sw.ListenerAddr("van")
	van := h.salesInFlight(t, n)
	sum, err := h.reloadWith(t, func(c *config.Config) {
		c.Listeners = slices.DeleteFunc(c.Listeners, func(l config.Listener) bool { return l.Name == "van" })
	})
	if err != nil || !slices.Contains(sum.Listeners, "van") {
		t.Fatalf("reload removing van: %v %+v", err, sum)
	}
	if h.sw.ListenerAddr("van") != "" || !refusesConnects(addr) {
		t.Fatal("the removed listener still accepts connections")
	}
	answersThenSignOff(t, van, n)
	if m, err := van.read(t, 20*time.Second); err == nil {
		mti, _ := m.GetMTI()
		t.Fatalf("the removed listener's link stays open (sent %s)", mti)
	}
	if res, err := h.terminal().Purchase(context.Background(), terminal.Purchase{PAN: cardB, Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("purchase on a kept listener: %v %s", err, res.ResponseCode)
	}
	h.stopSwitch(h.sw)
	st, err := storage.Open(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	open, err := st.Lookup().InState(ctx, store.Forwarded)
	if err != nil || len(open) != 0 {
		t.Fatalf("journal: %d transactions left in flight (%v)", len(open), err)
	}
	approved, err := st.Lookup().InState(ctx, store.Approved)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(slices.DeleteFunc(approved, func(x store.Txn) bool { return x.Listener != "van" })); got != n {
		t.Fatalf("journal: %d sales on the removed listener approved, want %d", got, n)
	}
}

// TestReloadAddingListenerRefused: a listener the reload cannot serve
// refuses the whole reload; the listener it would add beside it is not
// left bound, and the running ones keep serving.
func TestReloadAddingListenerRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	keyed := func(key string) config.Listener {
		return config.Listener{Name: "keyed-2", Addr: "127.0.0.1:0", MAC: &config.MACKey{Key: key, Algorithm: "retail"}}
	}
	for _, tc := range []struct {
		name string
		bad  config.Listener
		want string
	}{
		{"port in use", lane("lane-3", busy.Addr().String()), "address already in use"},
		{"MAC key not in the HSM", keyed("mac-missing"), `HSM has no key "mac-missing"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "")
			free := freeAddr(t)
			_, err := h.reloadWith(t, func(c *config.Config) {
				c.Listeners = append(c.Listeners, lane("lane-2", free), tc.bad)
				c.Listeners[0].MaxInFlight = 7
			})
			if !errors.Is(err, payswitch.ErrReloadRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload: %v, want refused with %q", err, tc.want)
			}
			if a, b := h.sw.ListenerAddr("lane-2"), h.sw.ListenerAddr(tc.bad.Name); a != "" || b != "" || !refusesConnects(free) {
				t.Fatalf("a refused reload left listeners behind (%q %q)", a, b)
			}
			if res, err := h.terminal().Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
				t.Fatalf("purchase after the refused reload: %v %s", err, res.ResponseCode)
			}
			if m := h.adminGet(t, "/metrics"); !strings.Contains(m, `payswitch_config_reloads_total{result="refused"} 1`) {
				t.Errorf("refused reload not counted: %s", grepLines(m, "reload"))
			}
		})
	}
}

// TestReloadReplacesListenerAtSameAddress: changing a listener's framing
// is a remove and an add under the same name; at a fixed address the new
// listener takes over the socket, so terminals speaking the new framing
// connect to the same address. Renaming a listener at its address hands
// the socket over alike.
func TestReloadReplacesListenerAtSameAddress(t *testing.T) {
	addr := freeAddr(t)
	h := newHarness(t, "", func(c *config.Config) { c.Listeners = append(c.Listeners, lane("lane-2", addr)) })
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") })
	old := h.terminalOn(t, "lane-2", nil)
	if res, err := old.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("before: %v %s", err, res.ResponseCode)
	}
	sum, err := h.reloadWith(t, func(c *config.Config) {
		c.Listeners[len(c.Listeners)-1].Header = "ascii4"
	})
	if err != nil || !slices.Contains(sum.Listeners, "lane-2") {
		t.Fatalf("reload changing lane-2's framing: %v %+v", err, sum)
	}
	if got := h.sw.ListenerAddr("lane-2"); got != addr {
		t.Fatalf("lane-2 listens on %q, want %s", got, addr)
	}
	for i := range 3 {
		term := h.terminalOn(t, "lane-2", func(o *terminal.Options) { o.Header = "ascii4" })
		if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
			t.Fatalf("purchase %d in the new framing: %v %s", i, err, res.ResponseCode)
		}
	}
	sum, err = h.reloadWith(t, func(c *config.Config) {
		c.Listeners[len(c.Listeners)-1].Header = "ascii4"
		c.Listeners[len(c.Listeners)-1].Name = "lane-9"
	})
	if err != nil || !slices.Contains(sum.Listeners, "lane-9") || !slices.Contains(sum.Listeners, "lane-2") {
		t.Fatalf("reload renaming lane-2: %v %+v", err, sum)
	}
	if got := h.sw.ListenerAddr("lane-9"); got != addr || h.sw.ListenerAddr("lane-2") != "" {
		t.Fatalf("lane-9 listens on %q, want %s (lane-2 gone)", got, addr)
	}
	term := h.terminalOn(t, "lane-9", func(o *terminal.Options) { o.Header = "ascii4" })
	if res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: cardA, Amount: 100}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("purchase on the renamed listener: %v %s", err, res.ResponseCode)
	}
}
