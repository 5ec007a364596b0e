package trafficmetrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/trafficmetrics"
)

// TestSeriesAtZero: the configured listeners' and routes' series exist
// before the first request, and those of a listener or route a reload
// adds once PreinitListener/PreinitRoute ran.
func TestSeriesAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := config.Config{Listeners: []config.Listener{{Name: "pos"}}, Routes: []config.IssuerRoute{{Name: "visa"}}}
	m := trafficmetrics.New(reg, cfg)
	// requests: 3 MTIs x 6 codes per listener and route ("none" included).
	const perPair = 3 * 6
	count := func() int {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "payswitch_requests_total" {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	if got, want := count(), 2*perPair; got != want {
		t.Fatalf("requests series at start %d, want %d", got, want)
	}
	m.PreinitRoute([]string{"pos"}, "mc")
	if got, want := count(), 3*perPair; got != want {
		t.Fatalf("requests series after a route was added %d, want %d", got, want)
	}
	m.PreinitListener("van", []string{"none", "visa", "mc"})
	if got, want := count(), 6*perPair; got != want {
		t.Fatalf("requests series after a listener was added %d, want %d", got, want)
	}
	m.RefusedOverRate("pos")
	var got dto.Metric
	if err := m.Server().Refused.WithLabelValues("pos", "rate_limit").Write(&got); err != nil {
		t.Fatal(err)
	}
	if got.GetCounter().GetValue() != 1 {
		t.Fatalf("rate-limit refusals %v, want 1", got.GetCounter().GetValue())
	}
}
