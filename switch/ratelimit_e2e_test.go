package payswitch_test

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// TestSpoofedTerminalCannotStarveKeyedTerminal: on a keyed listener the
// per-terminal limit counts only requests whose MAC verifies, so a flood of
// requests that carry the victim's terminal ID without its key is answered
// 63 and the victim's own MAC'd requests still go through.
func TestSpoofedTerminalCannotStarveKeyedTerminal(t *testing.T) {
	h := newHarness(t, "", func(c *config.Config) { c.Listeners[2].RatePerTerminal = 1 }) // bursts of 2
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	addr := h.sw.ListenerAddr("keyed")

	// The attacker knows the victim's DE 41 (purchaseMsg's default) but not
	// its key: DE 64 is eight zero bytes.
	spoofed := purchaseMsg(t, cardA, "900001", 100)
	_ = spoofed.BinaryField(specs.MAC, make([]byte, 8))
	spoofFrame := frameOf(t, spoofed)
	attacker := dialRaw(t, addr)
	var mu sync.Mutex
	tally := map[string]int{}
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(tally)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // keep the flood going until the victim is done
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := attacker.Write(spoofFrame); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			resp, err := attacker.read(t, 30*time.Second)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if err != nil {
				return
			}
			rc, _ := resp.GetString(specs.ResponseCode)
			if rc != "63" && rc != "91" {
				rc = "other"
			}
			mu.Lock()
			tally[rc]++
			mu.Unlock()
		}
	}()
	defer func() {
		close(stop)
		_ = attacker.Close()
		wg.Wait()
	}()
	waitFor(t, 30*time.Second, "the flood to be answered", func() bool {
		s := snapshot()
		return s["63"]+s["91"]+s["other"] >= 50
	})

	victim := dialRaw(t, addr)
	for i := 1; i <= 2; i++ {
		m := signMAC(t, purchaseMsg(t, cardA, fmt.Sprintf("%06d", i), 100))
		if _, err := victim.Write(frameOf(t, m)); err != nil {
			t.Fatal(err)
		}
		resp, err := victim.read(t, 10*time.Second)
		if err != nil {
			t.Fatalf("victim request %d: %v", i, err)
		}
		if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
			t.Fatalf("victim request %d: DE 39 %s, want 00 (spoofed flood so far: %v)", i, rc, snapshot())
		}
	}
	if s := snapshot(); s["other"] > 0 {
		t.Fatalf("spoofed requests got answers other than 63 or 91: %v", s)
	}

	// The victim's own (authenticated) requests are still limited: ten at
	// once exceed a burst of 2 however slowly a loaded machine runs them.
	refused := 0
	for i := 3; i < 13; i++ {
		m := signMAC(t, purchaseMsg(t, cardA, fmt.Sprintf("%06d", i), 100))
		if _, err := victim.Write(frameOf(t, m)); err != nil {
			t.Fatal(err)
		}
		resp, err := victim.read(t, 10*time.Second)
		if err != nil {
			t.Fatalf("victim request %d: %v", i, err)
		}
		if rc, _ := resp.GetString(specs.ResponseCode); rc == "91" {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("a keyed terminal over its rate limit was never refused")
	}
	if m := h.adminGet(t, "/metrics"); !strings.Contains(m, `payswitch_refused_total{listener="keyed",reason="rate_limit"}`) {
		t.Fatal("no refused{reason=rate_limit} series for the keyed listener")
	}
}
