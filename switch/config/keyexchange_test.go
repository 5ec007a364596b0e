package config

import (
	"strings"
	"testing"
	"time"
)

// TestRouteKeyExchange: key_exchange is off by default, needs pin.zmk and
// an interval of at least a minute.
func TestRouteKeyExchange(t *testing.T) {
	tests := []struct {
		name, route, want string
		every             time.Duration
	}{
		{"off by default", "{name: card-a, pin: {key: zpk-1, zmk: zmk-1}}", "", 0},
		{"daily", "{name: card-a, pin: {key: zpk-1, zmk: zmk-1}, key_exchange: {every: 24h}}", "", 24 * time.Hour},
		{"without pin.zmk", "{name: card-a, pin: {key: zpk-1}, key_exchange: {every: 24h}}", "key_exchange needs pin.zmk", 0},
		{"too often", "{name: card-a, pin: {key: zpk-1, zmk: zmk-1}, key_exchange: {every: 5s}}", "key_exchange.every 5s is shorter than 1m0s", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseEnv([]byte("routes: ["+tt.route+"]\n"), noEnv)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Routes[0].KeyExchangeEvery(); got != tt.every {
				t.Errorf("KeyExchangeEvery %s, want %s", got, tt.every)
			}
		})
	}
}
