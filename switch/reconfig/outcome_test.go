package reconfig_test

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
	"github.com/kbpay/switch/switch/opsmetrics"
	"github.com/kbpay/switch/switch/reconfig"
)

// TestReloadResultMetrics: a reload (SIGHUP, POST /v1/reload) the switch
// refuses is counted and flips the last-reload gauge to 0.
func TestReloadResultMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ops := opsmetrics.New(reg)
	if got := value(t, reg, "payswitch_config_last_reload_successful", ""); got != 1 {
		t.Fatalf("before any reload: %v", got)
	}
	bad := filepath.Join(t.TempDir(), "switchd.yaml")
	if err := os.WriteFile(bad, []byte("listners: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := reconfig.New(reconfig.Deps{Ctx: context.Background(), Config: config.Default(), File: bad, Log: zap.NewNop(), Ops: ops}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := running.ReloadFile(context.Background()); !errors.Is(err, reconfig.ErrRefused) {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if got := value(t, reg, "payswitch_config_reloads_total", "refused"); got != 1 {
		t.Errorf("refused reloads %v", got)
	}
	if got := value(t, reg, "payswitch_config_last_reload_successful", ""); got != 0 {
		t.Errorf("last reload successful %v after a refused one", got)
	}
	if got := value(t, reg, "payswitch_config_last_reload_timestamp_seconds", ""); got == 0 {
		t.Error("no reload time")
	}
}

// value reads the gauge or counter named name from reg (the series whose
// result label is result, when given).
func value(t *testing.T, reg prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if result != "" && !hasLabel(m, "result", result) {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no series %s %s", name, result)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
