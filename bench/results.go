package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kbpay/switch/simulator/load"
)

// Results are one run; bench/results.json is this struct. Latencies are in
// milliseconds.
type Results struct {
	Tool      string    `json:"tool"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	ElapsedS  float64   `json:"elapsed_s"`
	Host      Host      `json:"host"`
	PhaseS    float64   `json:"phase_s"`
	WarmupS   float64   `json:"warmup_s"`
	Terminals int       `json:"terminals"`
	Cards     int       `json:"cards"`
	Tokens    int       `json:"tokens"`
	// ColdTokens are switch-token-cold's tokens (0: the path did not run).
	ColdTokens int `json:"cold_tokens,omitempty"`
	// RatePerTerminal is the switch listener's per-terminal limit (req/s).
	RatePerTerminal int     `json:"rate_per_terminal"`
	Phases          []Phase `json:"phases"`
	// Rounds is how many times every path ran (Options.Rounds); with more
	// than one, Phases are the medians and RoundPhases every round's own.
	Rounds      int     `json:"rounds"`
	RoundPhases []Phase `json:"round_phases,omitempty"`
	// Compare is, with Options.Compare, each path and load the second
	// build ran: its TPS and CPU per transaction over the first build's.
	Compare []RatioRow `json:"compare,omitempty"`
	// Pairs are the paths the targets compare (pairs), each
	// load: the one's TPS and CPU per transaction over the other's.
	Pairs []RatioRow `json:"pairs,omitempty"`
	// SwitchAddedP99 is, at open-5000, each path's p99 minus the direct
	// path's (ms): what the relay or switch adds at the tail.
	SwitchAddedP99 map[string]float64 `json:"added_p99_ms_at_open_5000,omitempty"`
	Idle           *Idle              `json:"idle,omitempty"`
	Notes          []string           `json:"notes"`
	// finished is set by finish, which does its work once.
	finished bool
}

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	Load      string `json:"loadavg_at_start,omitempty"`
}

// Phase is one load on one path.
type Phase struct {
	Path string `json:"path"`
	Load string `json:"load"`
	// Round is the round (1-based) a phase of one round ran in; 0 on the
	// medians of several.
	Round int `json:"round,omitempty"`
	// StartedAt is when a phase of one round began (zero on medians).
	StartedAt time.Time `json:"started_at,omitzero"`
	Closed    int       `json:"closed,omitempty"`
	TargetTPS float64   `json:"target_tps,omitempty"`
	Terminals int       `json:"terminals"`
	DurationS float64   `json:"duration_s"`

	TPS  float64 `json:"tps"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
	// GeneratorLagP99 is how late (p99, ms) the open loop put requests on
	// the wire after their intended time; it is inside the latencies, and
	// large values mean the load generator itself was short of CPU.
	GeneratorLagP99 float64 `json:"generator_lag_p99_ms,omitempty"`

	Sent     int64 `json:"sent"`
	Answered int64 `json:"answered"`
	Approved int64 `json:"approved"`
	// Unanswered counts timeouts, failed sends and open-loop arrivals
	// never sent because the path had not kept up.
	Unanswered    int64            `json:"unanswered"`
	ResponseCodes map[string]int64 `json:"response_codes"`

	// CPUPerTxnUS is the middle process's (relay or switchd) user+system
	// CPU over the phase per answered transaction; 0 on the direct path.
	CPUPerTxnUS float64 `json:"cpu_us_per_txn,omitempty"`
	CPUSeconds  float64 `json:"cpu_s,omitempty"`
	// PeakRSSMiB is the middle process's VmHWM: reset at the phase's start
	// when PeakRSSPerPhase, else since the process started.
	PeakRSSMiB      float64 `json:"peak_rss_mib,omitempty"`
	PeakRSSPerPhase bool    `json:"peak_rss_per_phase,omitempty"`
	// CommitsPerTxn is switchd's journal group commits (each one fsync
	// when durable) per answered transaction, and WritesPerCommit the
	// writes they carried on average (payswitch_journal_commit_writes);
	// 0 on the paths without switchd.
	CommitsPerTxn   float64 `json:"journal_commits_per_txn,omitempty"`
	WritesPerCommit float64 `json:"journal_writes_per_commit,omitempty"`
	// CPUByRole is switchd's CPU profile of the phase split by goroutine
	// role (internal/cpurole), per answered transaction: only on the
	// phases profiled (ProfileDir, ProfileLoads).
	CPUByRole []RoleCPU `json:"cpu_by_role,omitempty"`
	// StealPct is the share of the machine's CPU time during the phase
	// the hypervisor gave to other tenants (/proc/stat's steal), in
	// percent: a phase slow on every path with a high figure lost its CPU
	// to the host, not to the code measured. On the medians of several
	// rounds it is the worst round's.
	StealPct float64 `json:"steal_pct"`
	// IssuerCPUPerTxnUS is the issuer emulator's CPU per transaction.
	IssuerCPUPerTxnUS float64 `json:"issuer_cpu_us_per_txn"`

	// Rounds is how many rounds this phase's figures are the median of
	// (0 or 1: one run); TPSRange and CPURange are the lowest and highest
	// TPS and CPU per transaction among them.
	Rounds   int       `json:"rounds,omitempty"`
	TPSRange []float64 `json:"tps_range,omitempty"`
	CPURange []float64 `json:"cpu_us_per_txn_range,omitempty"`

	// Ratios to the direct path under the same load (0 when it did not run).
	TPSRatio  float64 `json:"tps_ratio_to_direct,omitempty"`
	P50Ratio  float64 `json:"p50_ratio_to_direct,omitempty"`
	P99Ratio  float64 `json:"p99_ratio_to_direct,omitempty"`
	P999Ratio float64 `json:"p99_9_ratio_to_direct,omitempty"`
	// CPURatioToRelay is CPUPerTxnUS over the bare relay's, same load.
	CPURatioToRelay float64 `json:"cpu_ratio_to_relay,omitempty"`
}

// RatioRow is one path's TPS and CPU per transaction over another's under
// one load: each round's ratio of the two phases (measured seconds apart
// in that round) and, as the row's figure, their median. CPU is absent
// when either path has no middle process (direct).
type RatioRow struct {
	Path      string    `json:"path"`
	Over      string    `json:"over"`
	Load      string    `json:"load"`
	TPSRatio  float64   `json:"tps_ratio"`
	CPURatio  float64   `json:"cpu_us_per_txn_ratio,omitempty"`
	TPSRounds []float64 `json:"tps_ratio_rounds"`
	CPURounds []float64 `json:"cpu_ratio_rounds,omitempty"`
	// Stolen and CPUStolen mark, for each of TPSRounds and CPURounds, a
	// round in which either phase lost stealMark or more of the machine's
	// CPU to other tenants.
	Stolen    []bool `json:"stolen_rounds,omitempty"`
	CPUStolen []bool `json:"cpu_stolen_rounds,omitempty"`
}

// stealMark is the steal (percent of the machine's CPU time) from which a
// round's ratio is marked as disturbed by the host.
const stealMark = 5.0

// pairs are the paths the targets set against each other: the
// relays and the card path against the direct one (≥ 0.65 of its TPS),
// tokens against card numbers (within 10 %), the big vault and the
// once-used tokens against switch-token (within 10 %), and the durable
// journal against one without fsync (within 20 %); and the card path
// against the durable relay, what the durability rule costs alone.
var pairs = [][2]string{
	{PathRelay, PathDirect},
	{PathDurableRelay, PathDirect},
	{PathPAN, PathDirect},
	{PathPAN, PathDurableRelay},
	{PathToken, PathPAN},
	{PathTokenVault, PathToken},
	{PathTokenCold, PathToken},
	{PathPAN, PathNoFsync},
}

// sortPhases puts phases (measured load by load across the paths) in
// the table's order: by round, then path (this build's run of each before
// the compared build's), then load, the loads and the idle phase in the
// order they ran.
func sortPhases(phases []Phase) {
	loads := map[string]int{}
	for _, p := range phases {
		if _, ok := loads[p.Load]; !ok {
			loads[p.Load] = len(loads)
		}
	}
	base := func(p Phase) int { b, _ := strings.CutSuffix(p.Path, CompareSuffix); return pathIndex(b) }
	// Within a base path, "p" sorts before "p@compare".
	slices.SortStableFunc(phases, func(a, b Phase) int {
		return cmp.Or(cmp.Compare(a.Round, b.Round), cmp.Compare(base(a), base(b)),
			cmp.Compare(a.Path, b.Path), cmp.Compare(loads[a.Load], loads[b.Load]))
	})
}

// comparePairs pairs each path the Compare build ran with this build's.
func comparePairs(phases []Phase) [][2]string {
	var out [][2]string
	for _, p := range phases {
		base, ok := strings.CutSuffix(p.Path, CompareSuffix)
		if pr := [2]string{p.Path, base}; ok && !slices.Contains(out, pr) {
			out = append(out, pr)
		}
	}
	return out
}

// ptrs points at each of vs.
func ptrs(vs []float64) []*float64 {
	out := make([]*float64, len(vs))
	for i := range vs {
		out[i] = &vs[i]
	}
	return out
}

// ratios is a RatioRow for each of pairs (path, over) and load that both
// ran, from phases of one or more rounds (Phase.Round), in pairs' and
// then the loads' order.
func ratios(phases []Phase, pairs [][2]string) []RatioRow {
	type key struct {
		path, load string
		round      int
	}
	byKey := map[key]*Phase{}
	var loads []string
	rounds := 0
	for i := range phases {
		p := &phases[i]
		byKey[key{p.Path, p.Load, p.Round}] = p
		if !slices.Contains(loads, p.Load) {
			loads = append(loads, p.Load)
		}
		rounds = max(rounds, p.Round)
	}
	var rows []RatioRow
	for _, pr := range pairs {
		for _, l := range loads {
			row := RatioRow{Path: pr[0], Over: pr[1], Load: l}
			for r := 0; r <= rounds; r++ {
				a, b := byKey[key{pr[0], l, r}], byKey[key{pr[1], l, r}]
				if a == nil || b == nil || b.TPS == 0 {
					continue
				}
				stolen := max(a.StealPct, b.StealPct) >= stealMark
				row.TPSRounds = append(row.TPSRounds, a.TPS/b.TPS)
				row.Stolen = append(row.Stolen, stolen)
				if a.CPUPerTxnUS > 0 && b.CPUPerTxnUS > 0 {
					row.CPURounds = append(row.CPURounds, a.CPUPerTxnUS/b.CPUPerTxnUS)
					row.CPUStolen = append(row.CPUStolen, stolen)
				}
			}
			if len(row.TPSRounds) == 0 {
				continue
			}
			if !slices.Contains(row.Stolen, true) {
				row.Stolen, row.CPUStolen = nil, nil
			}
			row.TPSRatio = median(slices.Clone(row.TPSRounds))
			if len(row.CPURounds) > 0 {
				row.CPURatio = median(slices.Clone(row.CPURounds))
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// Idle is the idle-connection phase's memory figures.
type Idle struct {
	Connections      int     `json:"connections"`
	OpenSeconds      float64 `json:"open_s"`
	RSSBeforeMiB     float64 `json:"rss_before_mib"`
	RSSWithIdleMiB   float64 `json:"rss_with_idle_mib"`
	KiBPerConnection float64 `json:"kib_per_connection"`
	StillOpen        int     `json:"still_open_after_load"`
}

func newResults(o Options) *Results {
	r := &Results{Tool: "switchbench", Command: "make bench", Started: time.Now().UTC(),
		Host:   Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		PhaseS: o.Duration.Seconds(), WarmupS: o.Warmup.Seconds(), Terminals: o.Terminals, Cards: o.Cards, Tokens: o.Tokens, ColdTokens: o.ColdTokens,
		RatePerTerminal: RatePerTerminal, Rounds: o.Rounds}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Host.Load = strings.TrimSpace(string(b))
	}
	r.Notes = []string{
		"All processes (load generator, issuer emulator, relay or switchd) share this machine's CPUs; compare ratios within one run.",
		"Closed loops send each request when the previous one of the same worker is answered; open loops count latency from each request's intended send time.",
		"CPU per transaction is the middle process's utime+stime (/proc/<pid>/stat) over the phase divided by the answered transactions.",
	}
	return r
}

func (p *Phase) fromReport(rep *load.Report) {
	p.TPS = rep.AchievedTPS
	p.P50, p.P99, p.P999, p.Max = rep.Latency.P50, rep.Latency.P99, rep.Latency.P999, rep.Latency.Max
	p.Sent, p.Answered = rep.Sent, rep.Answered
	if rep.GeneratorLag != nil {
		p.GeneratorLagP99 = rep.GeneratorLag.P99
	}
	p.Unanswered = rep.Sent - rep.Answered + rep.Unsent
	p.ResponseCodes = map[string]int64{}
	for _, c := range rep.ResponseCodes {
		p.ResponseCodes[c.Code] = c.Count
		if c.Code == "00" {
			p.Approved = c.Count
		}
	}
}

func (r *Results) add(p Phase) { r.Phases = append(r.Phases, p) }

// finish combines the rounds and fills in the ratios and the added p99.
func (r *Results) finish() {
	if r.finished {
		return
	}
	r.finished = true
	r.ElapsedS = time.Since(r.Started).Seconds()
	sortPhases(r.Phases)
	r.Pairs = ratios(r.Phases, pairs)
	r.Compare = ratios(r.Phases, comparePairs(r.Phases))
	r.combineRounds()
	find := func(path, l string) *Phase {
		for i := range r.Phases {
			if r.Phases[i].Path == path && r.Phases[i].Load == l {
				return &r.Phases[i]
			}
		}
		return nil
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	for i := range r.Phases {
		p := &r.Phases[i]
		if d := find(PathDirect, p.Load); d != nil {
			p.TPSRatio, p.P50Ratio = div(p.TPS, d.TPS), div(p.P50, d.P50)
			p.P99Ratio, p.P999Ratio = div(p.P99, d.P99), div(p.P999, d.P999)
		}
		if rl := find(PathRelay, p.Load); rl != nil && p.Path != PathDirect {
			p.CPURatioToRelay = div(p.CPUPerTxnUS, rl.CPUPerTxnUS)
		}
	}
	if d := find(PathDirect, addedP99Load); d != nil {
		r.SwitchAddedP99 = map[string]float64{}
		for _, path := range AllPaths[1:] {
			if p := find(path, addedP99Load); p != nil {
				r.SwitchAddedP99[path] = p.P99 - d.P99
			}
		}
	}
	r.roundFigures()
}

// roundFigures keeps every figure to three decimals: what the measurements
// carry (µs of a ms latency, a ratio's third digit). A float's long tail
// says nothing and, in a file about card payments, reads like a card
// number.
func (r *Results) roundFigures() {
	round := func(vs ...*float64) {
		for _, v := range vs {
			*v = math.Round(*v*1000) / 1000
		}
	}
	round(&r.ElapsedS)
	for _, ps := range [][]Phase{r.Phases, r.RoundPhases} {
		for i := range ps {
			p := &ps[i]
			round(figures(p)...)
			round(&p.StealPct)
			round(&p.TPSRatio, &p.P50Ratio, &p.P99Ratio, &p.P999Ratio, &p.CPURatioToRelay)
			for _, rg := range [][]float64{p.TPSRange, p.CPURange} {
				for j := range rg {
					round(&rg[j])
				}
			}
		}
	}
	for _, rows := range [][]RatioRow{r.Compare, r.Pairs} {
		for i := range rows {
			round(&rows[i].TPSRatio, &rows[i].CPURatio)
			round(ptrs(rows[i].TPSRounds)...)
			round(ptrs(rows[i].CPURounds)...)
		}
	}
	for path, v := range r.SwitchAddedP99 {
		round(&v)
		r.SwitchAddedP99[path] = v
	}
	if r.Idle != nil {
		round(&r.Idle.OpenSeconds, &r.Idle.RSSBeforeMiB, &r.Idle.RSSWithIdleMiB, &r.Idle.KiBPerConnection)
	}
}

// WriteJSON writes the results as indented JSON.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}

// WriteFile writes the results as JSON to path.
func (r *Results) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// WriteTable writes the results as a Markdown table (readable as text).
func (r *Results) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(cells ...string) { fmt.Fprintf(tw, "| %s |\n", strings.Join(cells, "\t| ")) }
	row("path", "load", "TPS", "p50 ms", "p99 ms", "p99.9 ms", "CPU µs/txn", "commits/txn", "writes/commit", "peak RSS MiB", "TPS ×direct", "p50 ×direct", "p99 ×direct", "p99.9 ×direct", "CPU ×relay", "unanswered", "not 00", "steal %")
	row("---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
	f := func(v float64, prec int) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	for _, p := range r.Phases {
		tps, cpu := fmt.Sprintf("%.0f", p.TPS), f(p.CPUPerTxnUS, 1)
		if len(p.TPSRange) == 2 { // the median of rounds, and their lowest-highest
			tps += fmt.Sprintf(" (%.0f-%.0f)", p.TPSRange[0], p.TPSRange[1])
		}
		if len(p.CPURange) == 2 {
			cpu += fmt.Sprintf(" (%.0f-%.0f)", p.CPURange[0], p.CPURange[1])
		}
		row(p.Path, p.Load, tps, f(p.P50, 2), f(p.P99, 2), f(p.P999, 2),
			cpu, f(p.CommitsPerTxn, 2), f(p.WritesPerCommit, 1), f(p.PeakRSSMiB, 1), f(p.TPSRatio, 2), f(p.P50Ratio, 2), f(p.P99Ratio, 2), f(p.P999Ratio, 2),
			f(p.CPURatioToRelay, 2), fmt.Sprint(p.Unanswered), fmt.Sprint(p.Answered-p.Approved), fmt.Sprintf("%.1f", p.StealPct))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Rounds > 1 {
		fmt.Fprintf(w, "\nEach figure is the median of %d rounds; TPS and CPU show the rounds' lowest-highest.\n", r.Rounds)
	}
	if len(r.Compare) > 0 {
		fmt.Fprintf(w, "\nThe compared build (%s rows) over this one, each round's ratio and their median:\n", CompareSuffix)
		writeRatios(w, r.Compare)
	}
	if len(r.Pairs) > 0 {
		fmt.Fprintln(w, "\nPaths side by side (measured seconds apart within each round), each round's ratio and their median:")
		writeRatios(w, r.Pairs)
	}
	if len(r.SwitchAddedP99) > 0 {
		fmt.Fprintf(w, "\nAdded p99 at %s (path p99 - direct p99):", addedP99Load)
		for _, path := range AllPaths[1:] {
			if v, ok := r.SwitchAddedP99[path]; ok {
				fmt.Fprintf(w, " %s %+.2f ms;", path, v)
			}
		}
		fmt.Fprintln(w)
	}
	if r.Idle != nil {
		fmt.Fprintf(w, "\n%d idle terminal connections on switchd: RSS %.1f MiB -> %.1f MiB (%.1f KiB each), %d still open after the load\n",
			r.Idle.Connections, r.Idle.RSSBeforeMiB, r.Idle.RSSWithIdleMiB, r.Idle.KiBPerConnection, r.Idle.StillOpen)
	}
	_, err := fmt.Fprintf(w, "\n%d CPUs, %s, load average at start %s; phases of %.0f s, %d terminal IDs, per-terminal limit %d/s on the switch\n",
		r.Host.CPUs, r.Host.GoVersion, r.Host.Load, r.PhaseS, r.Terminals, r.RatePerTerminal)
	return err
}

// writeRatios writes rows one a line: "path over other  load  TPS ×m
// (r1 r2 ...)  CPU/txn ×m (...)", a round the host disturbed (Stolen)
// marked "*", and a legend when any is.
func writeRatios(w io.Writer, rows []RatioRow) {
	marked := false
	list := func(vs []float64, stolen []bool) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.3f", v)
			if len(stolen) == len(vs) && stolen[i] {
				parts[i] += "*"
				marked = true
			}
		}
		return strings.Join(parts, " ")
	}
	for _, c := range rows {
		fmt.Fprintf(w, "  %-37s %-10s TPS x%.3f (%s)", c.Path+" over "+c.Over, c.Load, c.TPSRatio, list(c.TPSRounds, c.Stolen))
		if c.CPURatio > 0 {
			fmt.Fprintf(w, "  CPU/txn x%.3f (%s)", c.CPURatio, list(c.CPURounds, c.CPUStolen))
		}
		fmt.Fprintln(w)
	}
	if marked {
		fmt.Fprintf(w, "  * a round in which either phase lost %.0f %% or more of the machine's CPU to other tenants (steal)\n", stealMark)
	}
}
