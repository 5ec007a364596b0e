package admin

import (
	"context"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/console"
	"github.com/kbpay/switch/switch/upstream"
)

// TestRouteEndpointsForConsole: the console shows each endpoint of a
// route's running link with its links and breaker, and the configured
// endpoints (state unknown) of a route without one.
func TestRouteEndpointsForConsole(t *testing.T) {
	rc := config.Default().Routes[0]
	rc.Addrs = nil
	rc.Endpoints = []config.Endpoint{{Addr: "127.0.0.1:1", Links: 2}, {Addr: "127.0.0.1:2", Priority: 1}}

	eps, up, links := routeEndpoints(rc, nil)
	want := []console.EndpointState{{Addr: "127.0.0.1:1", LinksUp: -1, Links: 2}, {Addr: "127.0.0.1:2", LinksUp: -1, Links: 1}}
	if !reflect.DeepEqual(eps, want) || up != 0 || links != 3 {
		t.Errorf("without a link: %+v, %d up of %d", eps, up, links)
	}

	l, err := upstream.New(rc, zap.NewNop(), upstream.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close(context.Background()) }()
	eps, up, links = routeEndpoints(rc, l)
	want = []console.EndpointState{{Addr: "127.0.0.1:1", LinksUp: 0, Links: 2, Breaker: "closed"}, {Addr: "127.0.0.1:2", LinksUp: 0, Links: 1, Breaker: "closed"}}
	if !reflect.DeepEqual(eps, want) || up != 0 || links != 3 {
		t.Errorf("with a link not signed on: %+v, %d up of %d", eps, up, links)
	}
}
