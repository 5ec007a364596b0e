package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/internal/hosttool"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/issuer/issuertest"
	"github.com/kbpay/switch/simulator/terminal"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

const (
	alertsFile    = "prometheus/alerts.yml"
	ruleTestsFile = "prometheus/alerts_test.yml"
	dashboardFile = "grafana/switchd.json"
)

// TestPrometheusRules: promtool accepts the rules and their unit tests
// pass (promtool from Debian's prometheus package).
func TestPrometheusRules(t *testing.T) {
	promtool := hosttool.Find(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", ruleTestsFile}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestAlertsCarryRunbooks: every alert says how bad it is and what to do.
func TestAlertsCarryRunbooks(t *testing.T) {
	rules := loadAlerts(t)
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Expr)
			continue
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		if strings.TrimSpace(r.Annotations["summary"]) == "" || len(strings.Fields(r.Annotations["runbook"])) < 10 {
			t.Errorf("%s: needs a summary and a runbook hint of a sentence or more", r.Alert)
		}
	}
}

// dashboardExprs is every query of the Grafana dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Fatalf("%s: uid %q title %q, both required for provisioning", dashboardFile, d.UID, d.Title)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// TestAlertsAndDashboardUseRealMetrics: every payswitch_* series and label
// that the alerts, their runbooks and the dashboard name exists in the
// registry of a running switch that has answered a sale.
func TestAlertsAndDashboardUseRealMetrics(t *testing.T) {
	series := liveSeries(t)
	texts := map[string]string{}
	for _, r := range loadAlerts(t) {
		texts["alert "+r.Alert] = r.Expr + "\n" + r.Annotations["summary"] + "\n" + r.Annotations["runbook"]
	}
	for i, e := range dashboardExprs(t) {
		texts[fmt.Sprintf("dashboard query %d", i+1)] = e
	}
	used := map[string]bool{}
	for where, text := range texts {
		for _, name := range metricName.FindAllString(text, -1) {
			used[name] = true
			if err := series.check(name, nil); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
		for _, m := range selector.FindAllStringSubmatch(text, -1) {
			if series.check(m[1], nil) != nil {
				continue // reported above
			}
			if err := series.check(m[1], labelNames(m[2])); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	// The operations essentials must be watched somewhere.
	for _, name := range []string{
		"payswitch_requests_total", "payswitch_issuer_links_up", "payswitch_saf_depth", "payswitch_saf_manual_review_total",
		"payswitch_journal_healthy", "payswitch_in_flight", "payswitch_request_duration_seconds_bucket", "payswitch_issuer_duration_seconds_bucket",
	} {
		if !used[name] {
			t.Errorf("%s is neither alerted on nor on the dashboard", name)
		}
	}
}

var (
	metricName = regexp.MustCompile(`\bpayswitch_[a-z0-9_]*[a-z0-9]\b`)
	selector   = regexp.MustCompile(`\b(payswitch_[a-z0-9_]*[a-z0-9])\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
)

func labelNames(matchers string) []string {
	var names []string
	for _, m := range matcher.FindAllStringSubmatch(matchers, -1) {
		names = append(names, m[1])
	}
	return names
}

// seriesInfo describes the switch's registry: each metric family's label
// names and type.
type seriesInfo struct {
	labels map[string][]string       // family -> label names
	types  map[string]dto.MetricType // family -> type, for families with samples
}

// targetLabels are added by Prometheus at scrape time.
var targetLabels = []string{"instance", "job"}

// check reports whether series name (a family, or a histogram's _bucket,
// _sum or _count) exists and carries every label in labels.
func (s seriesInfo) check(name string, labels []string) error {
	family, extra := name, []string(nil)
	if _, ok := s.labels[name]; !ok {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, found := strings.CutSuffix(name, suffix)
			if !found {
				continue
			}
			if typ, ok := s.types[base]; ok && (typ == dto.MetricType_HISTOGRAM || (suffix != "_bucket" && typ == dto.MetricType_SUMMARY)) {
				family = base
				if suffix == "_bucket" {
					extra = []string{"le"}
				}
			}
		}
		if family == name {
			return fmt.Errorf("%s is not a series of the switch", name)
		}
	}
	for _, l := range labels {
		if !slices.Contains(s.labels[family], l) && !slices.Contains(targetLabels, l) && !slices.Contains(extra, l) {
			return fmt.Errorf("%s has no label %q (it has %v)", name, l, s.labels[family])
		}
	}
	return nil
}

// liveSeries starts a switch (development mode, one issuer route, a
// temporary data folder), waits for its issuer link, sends one sale so
// the histograms have samples, and describes its registry. Label names
// come from every collector's descriptions (vectors with no sample yet
// included), types from the gathered families.
func liveSeries(t *testing.T) seriesInfo {
	t.Helper()
	is := issuertest.Start(t, issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}})
	cfg, err := config.Parse(fmt.Appendf(nil, `
data_dir: %q
admin: {addr: "127.0.0.1:0"}
hsm: {master_key_env: SWITCH_DEPLOY_TEST_MASTER_KEY_UNSET}
listeners:
  - {name: terminal, addr: "127.0.0.1:0", pin: {key: tpk-demo}}
routes:
  - {name: card-a, bins: ["9410"], addrs: [%q], pin: {key: zpk-demo}, reconnect_wait: 50ms, max_reconnect_wait: 200ms}
`, t.TempDir(), is.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sw, err := payswitch.New(cfg, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	})
	waitFor(t, "the issuer link of card-a", func(families map[string]*dto.MetricFamily) bool {
		for _, m := range families["payswitch_issuer_links_up"].GetMetric() {
			if m.GetGauge().GetValue() > 0 {
				return true
			}
		}
		return false
	}, reg)

	opts := terminal.DefaultOptions()
	opts.Addr = sw.ListenerAddr("terminal")
	opts.Timeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	term, err := terminal.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	res, err := term.Purchase(ctx, terminal.Purchase{PAN: "9410000000000005", Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("sale through the switch: rc %q, %v; want 00", res.ResponseCode, err)
	}
	// The terminal can read its answer before the switch observes the
	// request's duration.
	waitFor(t, "the sale's metrics", func(families map[string]*dto.MetricFamily) bool {
		return families["payswitch_request_duration_seconds"] != nil && families["payswitch_issuer_duration_seconds"] != nil &&
			families["payswitch_requests_total"] != nil
	}, reg)
	return describe(t, reg)
}

// waitFor polls the registry until cond holds, for at most a minute.
func waitFor(t *testing.T, what string, cond func(map[string]*dto.MetricFamily) bool, reg *prometheus.Registry) {
	t.Helper()
	testnet.Eventually(t, time.Minute, what, func() bool {
		gathered, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		families := map[string]*dto.MetricFamily{}
		for _, f := range gathered {
			families[f.GetName()] = f
		}
		return cond(families)
	})
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descConst  = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
	descVar    = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	constLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

func describe(t *testing.T, reg *prometheus.Registry) seriesInfo {
	t.Helper()
	s := seriesInfo{labels: map[string][]string{}, types: map[string]dto.MetricType{}}
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		text := d.String()
		name := descName.FindStringSubmatch(text)
		if name == nil {
			t.Fatalf("unreadable metric description %s", text)
		}
		labels := s.labels[name[1]]
		if c := descConst.FindStringSubmatch(text); c != nil {
			for _, m := range constLabel.FindAllStringSubmatch(c[1], -1) {
				labels = append(labels, m[1])
			}
		}
		if v := descVar.FindStringSubmatch(text); v != nil && v[1] != "" {
			for _, l := range strings.Split(v[1], ",") {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
			}
		}
		s.labels[name[1]] = labels
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		s.types[f.GetName()] = f.GetType()
	}
	if len(s.labels) == 0 {
		t.Fatal("the switch registered no metric")
	}
	return s
}
