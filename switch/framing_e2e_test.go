package payswitch_test

import (
	"context"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// TestEveryFramingEndToEnd: a listener of each framing (length headers,
// with and without a TPDU) serves a terminal speaking it.
func TestEveryFramingEndToEnd(t *testing.T) {
	framings := []string{"binary2", "binary4", "ascii4", "bcd2", "binary2+tpdu", "binary4+tpdu", "ascii4+tpdu", "bcd2+tpdu"}
	h := newHarness(t, "", func(c *config.Config) {
		for _, f := range framings {
			c.Listeners = append(c.Listeners, config.Listener{Name: "framing-" + f, Addr: "127.0.0.1:0", Header: f, PIN: &config.PINKey{Key: "tpk-demo"}})
		}
	})
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") })
	for _, f := range framings {
		t.Run(f, func(t *testing.T) {
			opts := terminal.DefaultOptions()
			opts.Addr = h.sw.ListenerAddr("framing-" + f)
			opts.Header = f
			opts.Timeout = 5 * time.Second
			term, err := terminal.Dial(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer term.Close()
			res, err := term.Purchase(context.Background(), terminal.Purchase{PAN: "9410000000000005", Amount: 100})
			if err != nil || res.ResponseCode != "00" {
				t.Fatalf("purchase over %s: %v %s", f, err, res.ResponseCode)
			}
		})
	}
}
