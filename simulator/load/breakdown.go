package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// RouteStats is one issuer route's share of the run. The generator does
// not know the switch's route names; it groups by the card's first four
// digits, the BIN prefix the demo routes own.
type RouteStats struct {
	BIN          string  `json:"bin"`
	Sent         int64   `json:"sent"`
	Answered     int64   `json:"answered"`
	Approved     int64   `json:"approved"`
	Timeouts     int64   `json:"timeouts"`
	Errors       int64   `json:"errors"`
	ApprovalRate float64 `json:"approval_rate"` // of answered
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
}

// routeRecorder counts outcomes by BIN prefix.
type routeRecorder struct {
	mu   sync.Mutex
	bins map[string]*routeCell
}

type routeCell struct {
	stats RouteStats
	hist  *hdr.Histogram
}

func binOf(card string) string { return card[:min(4, len(card))] }

func (r *routeRecorder) cell(card string) *routeCell {
	b := binOf(card)
	if r.bins == nil {
		r.bins = map[string]*routeCell{}
	}
	c, ok := r.bins[b]
	if !ok {
		c = &routeCell{stats: RouteStats{BIN: b}, hist: newHist()}
		r.bins[b] = c
	}
	return c
}

// answer records an answered request of card, latency d.
func (r *routeRecorder) answer(card string, d time.Duration, approved bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cell(card)
	c.stats.Sent++
	c.stats.Answered++
	if approved {
		c.stats.Approved++
	}
	_ = c.hist.RecordValue(min(micros(d), histMaxMicros))
}

// fail records a request of card that got no answer.
func (r *routeRecorder) fail(card string, timeout bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cell(card)
	c.stats.Sent++
	if timeout {
		c.stats.Timeouts++
	} else {
		c.stats.Errors++
	}
}

// stats returns every BIN's figures, in BIN order.
func (r *routeRecorder) stats() []RouteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RouteStats
	for _, c := range r.bins {
		s := c.stats
		if s.Answered > 0 {
			s.ApprovalRate = float64(s.Approved) / float64(s.Answered)
			s.P50, s.P99 = ms(c.hist.ValueAtQuantile(50)), ms(c.hist.ValueAtQuantile(99))
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BIN < out[j].BIN })
	return out
}

// DemoSwitchAdmin is the demo switch's admin address (its /metrics).
const DemoSwitchAdmin = "127.0.0.1:8580"

// demoOpenToBuy is what each demo issuer account starts with.
const demoOpenToBuy = 1_000_000

// cardsFor returns the default cards for a run: the demo cards, plus as
// many generated demo cards as the run's purchases need so that the
// accounts do not run dry (each holds demoOpenToBuy; half of it is used
// at most, at the largest amount).
func cardsFor(c Config) []string {
	requests := float64(c.Count)
	if requests == 0 {
		rate := c.Rate
		if rate == 0 {
			rate = 3000 // closed loop: a generous guess at the maximum
		}
		requests = rate * c.Duration.Seconds()
	}
	perCard := float64(demoOpenToBuy/2) / float64(max(c.AmountMax, 1))
	need := int(math.Ceil(requests / perCard))
	if need <= len(DemoCards) {
		return DemoCards
	}
	return append(append([]string(nil), DemoCards...), GenerateCards(min(need, 100_000), DemoBINs)...)
}

// declinesDominate is the warning a run whose purchases were mostly
// declined gets: the figures then measure the decline path, not approvals.
func declinesDominate(rep *Report) string {
	p := rep.ByType[kindPurchase.String()]
	if p.Answered < 20 || float64(p.Approved) >= 0.5*float64(p.Answered) {
		return ""
	}
	top := ""
	for _, c := range rep.ResponseCodes {
		if c.Code != "00" {
			top = fmt.Sprintf(" (mostly %s %s)", c.Code, c.Meaning)
			break
		}
	}
	return fmt.Sprintf("WARNING: declines dominate: %.0f%% of the answered purchases were approved%s. If the demo accounts ran dry, give more cards (--cards N) or reset the demo issuers (curl -X POST http://127.0.0.1:9100/reset).",
		100*float64(p.Approved)/float64(p.Answered), top)
}

// SwitchTime splits the switch's answers into time in the switch and time
// at the issuers, from the switch's own metrics scraped before and after
// the run (means over the run, all listeners and routes).
type SwitchTime struct {
	Source        string  `json:"source"` // the /metrics URL
	Requests      int64   `json:"requests"`
	MeanTotalMS   float64 `json:"mean_total_ms"`
	IssuerCalls   int64   `json:"issuer_calls"`
	MeanIssuerMS  float64 `json:"mean_issuer_ms"`
	MeanSwitchMS  float64 `json:"mean_switch_ms"` // total minus issuer, per request
	SwitchPercent float64 `json:"switch_percent"`
}

// metricSums is the _sum and _count of the two histograms.
type metricSums struct{ reqSum, reqCount, issSum, issCount float64 }

// scrapeSums reads the switch's request and issuer duration histograms.
func scrapeSums(ctx context.Context, url string) (metricSums, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return metricSums{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return metricSums{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metricSums{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseSums(resp.Body)
}

// Metric names parseSums reads.
const (
	requestMetric = "payswitch_request_duration_seconds"
	issuerMetric  = "payswitch_issuer_duration_seconds"
)

func parseSums(r io.Reader) (metricSums, error) {
	var m metricSums
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if i := strings.IndexByte(name, ' '); i >= 0 {
			name, rest = name[:i], name[i:]
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case requestMetric + "_sum":
			m.reqSum += v
		case requestMetric + "_count":
			m.reqCount += v
		case issuerMetric + "_sum":
			m.issSum += v
		case issuerMetric + "_count":
			m.issCount += v
		}
	}
	return m, sc.Err()
}

// switchTime is the split between two scrapes; nil when nothing was
// answered between them.
func switchTime(url string, before, after metricSums) *SwitchTime {
	n := after.reqCount - before.reqCount
	if n <= 0 {
		return nil
	}
	st := &SwitchTime{Source: url, Requests: int64(n), IssuerCalls: int64(after.issCount - before.issCount)}
	total := (after.reqSum - before.reqSum) * 1000
	issuer := (after.issSum - before.issSum) * 1000
	st.MeanTotalMS = total / n
	if st.IssuerCalls > 0 {
		st.MeanIssuerMS = issuer / float64(st.IssuerCalls)
	}
	st.MeanSwitchMS = max(0, (total-issuer)/n)
	if total > 0 {
		st.SwitchPercent = 100 * max(0, total-issuer) / total
	}
	return st
}

// percentileRows are the rows of the text summary's percentile table.
var percentileRows = []float64{50, 75, 90, 95, 99, 99.9, 99.99, 100}

// writeBreakdowns adds the approval rate, the percentile table, the
// per-route table and the switch-vs-issuer split to the text summary.
func (r *Report) writeBreakdowns(b *strings.Builder) {
	if p := r.ByType[kindPurchase.String()]; p.Answered > 0 {
		fmt.Fprintf(b, "approval rate  %.1f%% of %d answered purchases\n", 100*r.ApprovalRate, p.Answered)
	}
	if len(r.Percentiles) > 0 {
		b.WriteString("latency percentiles (ms)\n ")
		for _, p := range percentileRows {
			fmt.Fprintf(b, " %9s", "p"+strconv.FormatFloat(p, 'f', -1, 64))
		}
		b.WriteString("\n ")
		for _, p := range percentileRows {
			fmt.Fprintf(b, " %9.3f", r.percentile(p))
		}
		b.WriteString("\n")
	}
	if len(r.ByRoute) > 0 {
		b.WriteString("by route (card BIN)\n  BIN   sent  answered  approved  rate    timeouts  errors  p50 ms  p99 ms\n")
		for _, s := range r.ByRoute {
			fmt.Fprintf(b, "  %-4s %5d %9d %9d  %5.1f%% %9d %7d %7.2f %7.2f\n", s.BIN, s.Sent, s.Answered, s.Approved,
				100*s.ApprovalRate, s.Timeouts, s.Errors, s.P50, s.P99)
		}
	}
	if st := r.SwitchTime; st != nil {
		fmt.Fprintf(b, "switch vs issuer  mean %.3f ms per answer: %.3f ms in the switch (%.0f%%), %.3f ms per issuer call (%d calls; %s)\n",
			st.MeanTotalMS, st.MeanSwitchMS, st.SwitchPercent, st.MeanIssuerMS, st.IssuerCalls, st.Source)
	}
}

// percentile reads the latency at p from the recorded curve.
func (r *Report) percentile(p float64) float64 {
	for _, pt := range r.Percentiles {
		if pt.Percentile == p {
			return pt.MS
		}
	}
	return math.NaN()
}

// scrapeSwitch reads the switch's metrics before the run.
func (e *engine) scrapeSwitch(ctx context.Context) (metricSums, error) {
	if e.cfg.SwitchMetrics == "" {
		return metricSums{}, nil
	}
	return scrapeSums(ctx, e.cfg.SwitchMetrics)
}

// addSwitchTime scrapes again after the run and adds the split, or a note
// saying why there is none.
func (e *engine) addSwitchTime(ctx context.Context, rep *Report, before metricSums, err error) {
	if e.cfg.SwitchMetrics == "" {
		return
	}
	var after metricSums
	if err == nil {
		after, err = scrapeSums(context.WithoutCancel(ctx), e.cfg.SwitchMetrics)
	}
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Switch vs issuer time not available: %v.", err))
		return
	}
	rep.SwitchTime = switchTime(e.cfg.SwitchMetrics, before, after)
}
