package payswitch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
)

// TestReloadResultMetrics: a reload (SIGHUP, POST /v1/reload) the switch
// refuses is counted and flips the last-reload gauge to 0.
func TestReloadResultMetrics(t *testing.T) {
	sw := &Switch{metrics: newMetrics(prometheus.NewRegistry(), config.Default()), log: zap.NewNop()}
	ops := sw.metrics.ops
	if got := value(t, ops.reloadValid); got != 1 {
		t.Fatalf("before any reload: %v", got)
	}
	bad := filepath.Join(t.TempDir(), "switchd.yaml")
	if err := os.WriteFile(bad, []byte("listners: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sw.reload.configFile = bad
	if _, err := sw.ReloadFile(context.Background()); !errors.Is(err, ErrReloadRefused) {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if got := value(t, ops.reloads.WithLabelValues("refused")); got != 1 {
		t.Errorf("refused reloads %v", got)
	}
	if got := value(t, ops.reloadValid); got != 0 {
		t.Errorf("last reload successful %v after a refused one", got)
	}
	if got := value(t, ops.lastReload); got == 0 {
		t.Error("no reload time")
	}
}

// value reads a gauge's or counter's current value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
