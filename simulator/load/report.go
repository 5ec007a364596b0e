package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kbpay/switch/simulator/terminal"
)

// Report is the outcome of a run; report.json is this struct. Latencies
// are in milliseconds. No full card number appears in it.
type Report struct {
	Tool    string    `json:"tool"`
	Started time.Time `json:"started"`
	Target  Target    `json:"target"`
	Run     RunConfig `json:"run"`

	ElapsedSeconds float64 `json:"elapsed_s"`
	TargetTPS      float64 `json:"target_tps,omitempty"`
	AchievedTPS    float64 `json:"achieved_tps"`
	// Sent counts requests the generator tried to send (including those
	// that failed on a broken link); Unsent counts open-loop arrivals it
	// never sent because the target had not kept up when the run ended.
	Sent     int64  `json:"sent"`
	Answered int64  `json:"answered"`
	Unsent   int64  `json:"unsent"`
	Timeouts int64  `json:"timeouts"`
	Errors   Errors `json:"errors"`
	// NetCancels are the 0400s sent for purchases that timed out.
	NetCancels NetCancels `json:"net_cancels"`
	// MixFallbacks counts cancels and refunds sent as purchases because
	// their terminal had no approved sale left to give back.
	MixFallbacks int64 `json:"mix_fallbacks"`

	// Latency of every answer, from its intended send time (open loop) or
	// its send time (closed loop).
	Latency     Latency           `json:"latency_ms"`
	Percentiles []PercentilePoint `json:"percentiles"`
	// GeneratorLag is how late the open loop put requests on the wire
	// after their intended send time (its own lag, any wait for a free
	// terminal or in-flight slot); it is included in Latency.
	GeneratorLag *Latency `json:"generator_lag_ms,omitempty"`
	// WithTimeouts, present when requests timed out, is Latency with each
	// timeout counted at its wait (from the intended send time until it
	// was given up): a floor for what those requests would have shown.
	WithTimeouts *Latency `json:"latency_with_timeouts_ms,omitempty"`

	ResponseCodes []CodeCount           `json:"response_codes"`
	ByType        map[string]TypeCounts `json:"by_type"`
	// ApprovalRate is the share of answered purchases that were approved.
	ApprovalRate float64 `json:"approval_rate"`
	// ByRoute splits the run by the cards' BIN prefix (the issuer route).
	ByRoute []RouteStats `json:"by_route,omitempty"`
	// SwitchTime splits the answers' time into switch and issuer time,
	// from the switch's metrics (nil when they could not be read).
	SwitchTime *SwitchTime `json:"switch_time,omitempty"`
	// Warnings say when the figures do not measure what was meant (for
	// example declines dominating); also at the top of the summary.
	Warnings []string `json:"warnings,omitempty"`
	// Series has one entry per second of the run, by completion time.
	Series []Second `json:"series"`
	Notes  []string `json:"notes"`
}

// Target describes what was loaded.
type Target struct {
	Addr        string `json:"addr"`
	Spec        string `json:"spec"`
	Header      string `json:"header"`
	MerchantID  string `json:"merchant_id"`
	TerminalIDs string `json:"terminal_ids"`
}

// RunConfig is the run's configuration as reported.
type RunConfig struct {
	Mode        string   `json:"mode"` // open or closed
	Arrivals    string   `json:"arrivals,omitempty"`
	Rate        float64  `json:"rate,omitempty"`
	Closed      int      `json:"closed,omitempty"`
	DurationS   float64  `json:"duration_s"`
	Count       int64    `json:"count,omitempty"`
	Terminals   int      `json:"terminals"`
	Link        string   `json:"link"`
	MaxInFlight int      `json:"max_in_flight,omitempty"`
	Mix         string   `json:"mix"`
	TimeoutMS   float64  `json:"timeout_ms"`
	NetCancel   bool     `json:"net_cancel"`
	CardKind    string   `json:"card_kind"`
	Cards       int      `json:"cards"`
	CardsMasked []string `json:"cards_masked"`
	AmountMin   int64    `json:"amount_min"`
	AmountMax   int64    `json:"amount_max"`
	Seed        uint64   `json:"seed"`
	Histogram   string   `json:"histogram"`
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	// Clamped counts values above the histogram's 60 s top.
	Clamped int64 `json:"clamped,omitempty"`
}

// PercentilePoint is one point of the latency-by-percentile curve.
type PercentilePoint struct {
	Percentile float64 `json:"p"`
	MS         float64 `json:"ms"`
}

// Errors are failures other than timeouts and declines.
type Errors struct {
	Total  int64            `json:"total"`
	ByKind map[string]int64 `json:"by_kind,omitempty"`
}

// NetCancels counts the 0400s sent for purchases that got no answer. A
// net cancel that gets no answer, or a 94 (original still in flight), is
// repeated (the identical message) up to 4 times; Repeats counts those, and
// the other counts are by each net cancel's final outcome.
type NetCancels struct {
	Sent     int64 `json:"sent"`
	Repeats  int64 `json:"repeats"`
	Answered int64 `json:"answered"`
	Approved int64 `json:"approved"`
	Timeouts int64 `json:"timeouts"`
	Errors   int64 `json:"errors"`
	// Codes counts the answers by DE 39.
	Codes map[string]int64 `json:"codes,omitempty"`
}

// TypeCounts are the outcomes of one request type.
type TypeCounts struct {
	Sent     int64 `json:"sent"`
	Answered int64 `json:"answered"`
	Approved int64 `json:"approved"`
	Timeouts int64 `json:"timeouts"`
	Errors   int64 `json:"errors"`
}

// CodeCount is one DE 39 value and how often it came back.
type CodeCount struct {
	Code    string  `json:"code"`
	Meaning string  `json:"meaning"`
	Count   int64   `json:"count"`
	Share   float64 `json:"share"` // of answered requests
}

// Second is one second of the run, by completion time. The last one may
// be shorter (Seconds < 1).
type Second struct {
	T       int     `json:"t"`
	Seconds float64 `json:"seconds"`
	// Offered counts arrivals whose intended send time fell in this second.
	Offered  int64   `json:"offered"`
	Answered int64   `json:"answered"`
	TPS      float64 `json:"tps"`
	P50      float64 `json:"p50_ms,omitempty"`
	P90      float64 `json:"p90_ms,omitempty"`
	P99      float64 `json:"p99_ms,omitempty"`
	Max      float64 `json:"max_ms,omitempty"`
	Timeouts int64   `json:"timeouts,omitempty"`
	Errors   int64   `json:"errors,omitempty"`
	// Codes counts the answers by DE 39.
	Codes map[string]int64 `json:"codes,omitempty"`
}

func summarize(h *hdr.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Min:   ms(h.Min()),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// curvePercentiles are the points of the latency-by-percentile curve.
var curvePercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99,
	99.5, 99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 100}

// report builds the report; the run measured from start to end.
func (e *engine) report(start, end time.Time) *Report {
	r := e.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollTo(r.secOf(end))
	if tail := end.Sub(r.start) - time.Duration(r.winSec)*time.Second; tail > 0 {
		r.closeWindow(tail.Seconds())
	}
	for i := range r.series {
		if i < len(r.offered) {
			r.series[i].Offered = r.offered[i]
		}
	}
	cfg := e.cfg
	rep := &Report{
		Tool:    "termsim load",
		Started: start.UTC().Truncate(time.Millisecond),
		Target: Target{Addr: cfg.Addr, Spec: cfg.Spec, Header: cfg.Header, MerchantID: cfg.MerchantID,
			TerminalIDs: cfg.terminalID(0)},
		Run: RunConfig{
			DurationS: cfg.Duration.Seconds(), Count: cfg.Count, Terminals: cfg.Terminals,
			Mix: cfg.Mix.String(), TimeoutMS: float64(cfg.Timeout.Microseconds()) / 1000, NetCancel: !cfg.NoNetCancel,
			Cards: len(cfg.Cards), AmountMin: cfg.AmountMin, AmountMax: cfg.AmountMax, Seed: e.seed,
			Histogram: "HdrHistogram 1us..60s, 3 significant digits",
		},
		ElapsedSeconds: end.Sub(start).Seconds(),
		Sent:           r.sent,
		Answered:       r.answered,
		Unsent:         r.unsent,
		Timeouts:       r.timeouts,
		Errors:         Errors{ByKind: map[string]int64{}},
		NetCancels:     r.net,
		MixFallbacks:   r.fallbacks,
		Latency:        summarize(r.all),
		ByType:         map[string]TypeCounts{},
		Series:         r.series,
	}
	if cfg.Terminals > 1 {
		rep.Target.TerminalIDs += ".." + cfg.terminalID(cfg.Terminals-1)
	}
	if cfg.CardsAreTokens {
		rep.Run.CardKind = "tokens"
	} else {
		rep.Run.CardKind = "card numbers"
	}
	for i, c := range cfg.Cards {
		if i == 10 {
			rep.Run.CardsMasked = append(rep.Run.CardsMasked, fmt.Sprintf("... %d more", len(cfg.Cards)-10))
			break
		}
		rep.Run.CardsMasked = append(rep.Run.CardsMasked, maskCard(c))
	}
	if e.open {
		rep.Run.Mode, rep.Run.Arrivals, rep.Run.Rate, rep.TargetTPS = "open", cfg.Arrivals, cfg.Rate, cfg.Rate
		lag := summarize(r.lag)
		rep.GeneratorLag = &lag
	} else {
		rep.Run.Mode, rep.Run.Closed = "closed", cfg.Closed
	}
	if cfg.OneOutstanding {
		rep.Run.Link = "POS: one request outstanding per terminal"
	} else {
		rep.Run.Link = "VAN: many requests in flight per terminal"
		if e.open {
			rep.Run.MaxInFlight = cfg.MaxInFlight
		}
	}
	rep.Latency.Clamped = r.clamped
	if r.timeouts > 0 {
		wt := summarize(r.allT)
		rep.WithTimeouts = &wt
	}
	if rep.ElapsedSeconds > 0 {
		rep.AchievedTPS = float64(r.answered) / rep.ElapsedSeconds
	}
	if r.all.TotalCount() > 0 {
		for _, p := range curvePercentiles {
			rep.Percentiles = append(rep.Percentiles, PercentilePoint{p, ms(r.all.ValueAtQuantile(p))})
		}
	}
	for k, n := range r.errKinds {
		rep.Errors.ByKind[k] = n
		rep.Errors.Total += n
	}
	for k := kind(0); k < numKinds; k++ {
		rep.ByType[k.String()] = r.types[k]
	}
	for c, n := range r.codes {
		cc := CodeCount{Code: c, Count: n, Meaning: terminal.ResponseMeaning(c)}
		if c == noCode {
			cc.Meaning = terminal.ResponseMeaning("")
		}
		if r.answered > 0 {
			cc.Share = float64(n) / float64(r.answered)
		}
		rep.ResponseCodes = append(rep.ResponseCodes, cc)
	}
	sort.Slice(rep.ResponseCodes, func(i, j int) bool {
		a, b := rep.ResponseCodes[i], rep.ResponseCodes[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Code < b.Code
	})
	rep.ByRoute = e.routes.stats()
	if p := rep.ByType[kindPurchase.String()]; p.Answered > 0 {
		rep.ApprovalRate = float64(p.Approved) / float64(p.Answered)
	}
	if w := declinesDominate(rep); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	if e.open {
		rep.Notes = append(rep.Notes, "Open loop: latency is measured from each request's intended send time (coordinated omission corrected); generator lag is included in it.")
	} else {
		rep.Notes = append(rep.Notes, "Closed loop: latency is measured from each request's actual send time; a stalled target slows the sending, so this finds the maximum throughput but understates latency under a fixed offered load.")
	}
	rep.Notes = append(rep.Notes, "Timeouts and errors are counted, not part of the latency percentiles; with timeouts, a second set of percentiles counts each timeout at its wait.")
	if r.unsent > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d arrivals were never sent: the target had not caught up %s after the end.", r.unsent, cfg.Timeout))
	}
	if rep.GeneratorLag != nil && rep.GeneratorLag.P99 > 5 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Generator lag p99 %s: the target or this machine did not keep up with the schedule (waits for a free terminal count here).", fmtMS(rep.GeneratorLag.P99)))
	}
	return rep
}

// WriteText writes the human-readable summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := fmt.Sprintf("closed loop, %d in flight", r.Run.Closed)
	if r.Run.Mode == "open" {
		mode = fmt.Sprintf("open loop, %s arrivals, target %.1f TPS", r.Run.Arrivals, r.Run.Rate)
	}
	terms := "terminals"
	if r.Run.Terminals == 1 {
		terms = "terminal"
	}
	fmt.Fprintf(&b, "termsim load: %s, %d %s (%s), mix %s, target %s\n", mode, r.Run.Terminals, terms, r.Run.Link, r.Run.Mix, r.Target.Addr)
	for _, w := range r.Warnings {
		fmt.Fprintln(&b, w)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "elapsed\t%.2fs\n", r.ElapsedSeconds)
	if r.TargetTPS > 0 {
		fmt.Fprintf(tw, "throughput\ttarget %.1f TPS, achieved %.1f TPS\n", r.TargetTPS, r.AchievedTPS)
	} else {
		fmt.Fprintf(tw, "throughput\tachieved %.1f TPS\n", r.AchievedTPS)
	}
	fmt.Fprintf(tw, "requests\tsent %d, answered %d, timeouts %d, errors %d", r.Sent, r.Answered, r.Timeouts, r.Errors.Total)
	if r.Unsent > 0 {
		fmt.Fprintf(tw, ", never sent %d", r.Unsent)
	}
	fmt.Fprintln(tw)
	l := r.Latency
	if l.Count > 0 {
		fmt.Fprintf(tw, "latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s)\n",
			fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), fmtMS(l.Min), fmtMS(l.Mean))
	} else {
		fmt.Fprintf(tw, "latency\tno answers\n")
	}
	if l := r.WithTimeouts; l != nil {
		fmt.Fprintf(tw, "with timeouts\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (each timeout counted at its wait)\n",
			fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max))
	}
	if g := r.GeneratorLag; g != nil && g.Count > 0 {
		fmt.Fprintf(tw, "generator lag\tp50 %s  p99 %s  max %s  (included in latency)\n", fmtMS(g.P50), fmtMS(g.P99), fmtMS(g.Max))
	}
	var types []string
	for k := kind(0); k < numKinds; k++ {
		t := r.ByType[k.String()]
		if t.Sent == 0 {
			continue
		}
		types = append(types, fmt.Sprintf("%s %d (answered %d, approved %d)", k, t.Sent, t.Answered, t.Approved))
	}
	if len(types) > 0 {
		fmt.Fprintf(tw, "by type\t%s\n", strings.Join(types, "; "))
	}
	if r.MixFallbacks > 0 {
		fmt.Fprintf(tw, "\t%d cancels/refunds sent as purchases (no approved sale left on their terminal)\n", r.MixFallbacks)
	}
	n := r.NetCancels
	fmt.Fprintf(tw, "net cancels\t%d sent, %d repeats (answered %d, approved %d, timeouts %d, errors %d)%s\n",
		n.Sent, n.Repeats, n.Answered, n.Approved, n.Timeouts, n.Errors, codeList(n.Codes))
	if len(r.Errors.ByKind) > 0 {
		var kinds []string
		for k, v := range r.Errors.ByKind {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(kinds)
		fmt.Fprintf(tw, "errors\t%s\n", strings.Join(kinds, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r.writeBreakdowns(&b)
	if len(r.ResponseCodes) > 0 {
		b.WriteString("response codes (DE 39)\n")
		width := 1
		for _, c := range r.ResponseCodes {
			width = max(width, len(fmt.Sprint(c.Count)))
		}
		for _, c := range r.ResponseCodes {
			fmt.Fprintf(&b, "  %-2s  %*d  %5.1f%%  %s\n", c.Code, width, c.Count, 100*c.Share, c.Meaning)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(&b, w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFiles writes report.json and report.html into dir, creating it.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating report directory: %w", err)
	}
	write := func(name string, fn func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	if err := write("report.json", r.WriteJSON); err != nil {
		return err
	}
	return write("report.html", r.WriteHTML)
}

// codeList renders "; DE 39: 00 x3, 94 x1" for a small code count map.
func codeList(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s x%d", k, m[k])
	}
	return "; DE 39: " + strings.Join(parts, ", ")
}
