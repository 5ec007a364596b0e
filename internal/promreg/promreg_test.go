package promreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSeriesRegisteredUnderNamespace checks each builder registers its
// series on the passed registry, named payswitch_<name> with the help,
// type and labels given.
func TestSeriesRegisteredUnderNamespace(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	Counter(reg, "c_total", "A counter.").Inc()
	CounterVec(reg, "cv_total", "A counter vec.", "route", "rc").WithLabelValues("r1", "00").Add(2)
	Gauge(reg, "g", "A gauge.").Set(3)
	GaugeVec(reg, "gv", "A gauge vec.", "listener").WithLabelValues("pos").Set(4)
	GaugeFunc(reg, "gf", "A gauge func.", func() float64 { return 5 })
	HistogramVec(reg, "h_seconds", "A histogram.", []float64{1}, "stage").WithLabelValues("s").Observe(0.5)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range families {
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		got[f.GetName()] = f.GetType().String() + " " + f.GetHelp() + " [" + strings.Join(labels, ",") + "]"
	}
	want := map[string]string{
		"payswitch_c_total":   "COUNTER A counter. []",
		"payswitch_cv_total":  "COUNTER A counter vec. [rc,route]",
		"payswitch_g":         "GAUGE A gauge. []",
		"payswitch_gv":        "GAUGE A gauge vec. [listener]",
		"payswitch_gf":        "GAUGE A gauge func. []",
		"payswitch_h_seconds": "HISTOGRAM A histogram. [stage]",
	}
	if len(got) != len(want) {
		t.Errorf("gathered %d families, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	for _, f := range families {
		if f.GetName() == "payswitch_h_seconds" {
			if b := f.GetMetric()[0].GetHistogram().GetBucket(); len(b) != 1 || b[0].GetUpperBound() != 1 {
				t.Errorf("histogram buckets: %v, want one at 1", b)
			}
		}
		if f.GetName() == "payswitch_gf" && f.GetMetric()[0].GetGauge().GetValue() != 5 {
			t.Errorf("gauge func: %v, want 5", f.GetMetric()[0].GetGauge().GetValue())
		}
	}
}

// TestDuplicatePanics keeps MustRegister's behaviour: a second series of
// the same name on one registry is a programming error.
func TestDuplicatePanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	Counter(reg, "dup_total", "First.")
	defer func() {
		if recover() == nil {
			t.Fatal("registering payswitch_dup_total twice did not panic")
		}
	}()
	Counter(reg, "dup_total", "Second.")
}
