package tokenapi_test

import (
	"testing"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// TestDemoBearerIsTheSwitchsDemoToken: tokenctl's and termsim's default
// bearer is what a switch in development mode accepts.
func TestDemoBearerIsTheSwitchsDemoToken(t *testing.T) {
	if tokenapi.DemoBearer != config.DemoAdminToken {
		t.Fatalf("tokenapi.DemoBearer %q, config.DemoAdminToken %q", tokenapi.DemoBearer, config.DemoAdminToken)
	}
}
