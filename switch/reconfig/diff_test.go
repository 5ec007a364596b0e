package reconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/config"
)

// TestRestartOnly: a change outside the routes, listeners and the
// journal's group hold is refused, naming the section; those reload.
func TestRestartOnly(t *testing.T) {
	base := config.Default()
	tests := []struct {
		name   string
		change func(*config.Config)
		want   string // "" when the reload may apply it
	}{
		{"nothing", func(*config.Config) {}, ""},
		{"routes", func(c *config.Config) { c.Routes = nil }, ""},
		{"listeners", func(c *config.Config) { c.Listeners = nil }, ""},
		{"drain timeout", func(c *config.Config) { c.DrainTimeout += time.Second }, "drain_timeout changed: needs a restart"},
		{"instance", func(c *config.Config) { c.InstanceID++ }, "needs a restart"},
		{"journal group hold", func(c *config.Config) {
			wait := 2 * time.Millisecond
			c.Journal.GroupWait, c.Journal.GroupSize = &wait, 32
		}, ""},
		{"journal path", func(c *config.Config) { c.Journal.Path += ".new" }, "journal changed: needs a restart"},
		{"journal hold and durable", func(c *config.Config) {
			c.Journal.GroupSize = 32
			c.Journal.Durable = new(false)
		}, "journal changed: needs a restart"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := config.Default()
			tc.change(&cur)
			err := restartOnly(base, cur)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSameServing: limits and TLS material reload in place; TLS on or off
// and any other setting replace the listener.
func TestSameServing(t *testing.T) {
	base := config.Listener{Name: "pos", Addr: "127.0.0.1:0", MaxConnections: 10, MaxInFlight: 4}
	tests := []struct {
		name   string
		change func(*config.Listener)
		same   bool
	}{
		{"limits", func(l *config.Listener) { l.MaxConnections, l.MaxInFlight = 20, 8 }, true},
		{"address", func(l *config.Listener) { l.Addr = "127.0.0.1:1" }, false},
		{"tls on", func(l *config.Listener) { l.TLS = &config.ServerTLS{} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := base
			tc.change(&cur)
			if got := sameServing(base, cur); got != tc.same {
				t.Fatalf("sameServing %v, want %v", got, tc.same)
			}
		})
	}
}
