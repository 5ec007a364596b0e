package load

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteHTML writes a self-contained HTML report: inline CSS and inline SVG
// charts drawn here, no scripts and nothing fetched from anywhere.
func (r *Report) WriteHTML(w io.Writer) error {
	data := struct {
		R                                        *Report
		Mode                                     string
		LatencyChart, ThroughputChart, CodeChart template.HTML
		PercentileChart                          template.HTML
		ErrorKinds                               string
		PercentileRows                           []struct {
			P  string
			MS float64
		}
	}{R: r}
	if len(r.Percentiles) > 0 {
		for _, p := range percentileRows {
			data.PercentileRows = append(data.PercentileRows, struct {
				P  string
				MS float64
			}{strconv.FormatFloat(p, 'f', -1, 64), r.percentile(p)})
		}
	}
	if r.Run.Mode == "open" {
		data.Mode = fmt.Sprintf("open loop, %s arrivals at %.1f/s", r.Run.Arrivals, r.Run.Rate)
	} else {
		data.Mode = fmt.Sprintf("closed loop, %d in flight", r.Run.Closed)
	}
	data.LatencyChart = template.HTML(latencyChart(r))
	data.ThroughputChart = template.HTML(throughputChart(r))
	data.CodeChart = template.HTML(codeChart(r))
	data.PercentileChart = template.HTML(percentileChart(r))
	var kinds []string
	for k, v := range r.Errors.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
	}
	data.ErrorKinds = strings.Join(kinds, ", ")
	return reportPage.Execute(w, data)
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":       fmtMS,
	"pct":      func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"f1":       func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"codeList": codeList,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>termsim load report {{.R.Started.Format "2006-01-02 15:04:05"}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2733;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.sub{color:#5b6b7c;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#f4f7fa;border:1px solid #dde3ea;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#5b6b7c;font-size:12px}
.bad b{color:#b3261e}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
th{color:#5b6b7c;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;margin:6px 0 2px;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#33404d}
.note{color:#5b6b7c;font-size:13px}
</style></head><body>
<h1>termsim load report</h1>
{{range .R.Warnings}}<p class="note" style="color:#b00020;font-weight:600">{{.}}</p>{{end}}
<div class="sub">{{.R.Started.Format "2006-01-02 15:04:05 MST"}} &middot; target {{.R.Target.Addr}} ({{.R.Target.Spec}}, {{.R.Target.Header}}) &middot; {{.Mode}} &middot; {{.R.Run.Terminals}} terminals, {{.R.Run.Link}} &middot; mix {{.R.Run.Mix}}</div>
<div class="cards">
{{if .R.TargetTPS}}<div class="card"><b>{{f1 .R.TargetTPS}}</b><span>target TPS</span></div>{{end}}
<div class="card"><b>{{f1 .R.AchievedTPS}}</b><span>achieved TPS</span></div>
<div class="card{{if .R.Warnings}} bad{{end}}"><b>{{pct .R.ApprovalRate}}</b><span>purchases approved</span></div>
<div class="card"><b>{{ms .R.Latency.P50}}</b><span>p50</span></div>
<div class="card"><b>{{ms .R.Latency.P99}}</b><span>p99</span></div>
<div class="card"><b>{{ms .R.Latency.P999}}</b><span>p99.9</span></div>
<div class="card"><b>{{ms .R.Latency.Max}}</b><span>max</span></div>
<div class="card{{if .R.Timeouts}} bad{{end}}"><b>{{.R.Timeouts}}</b><span>timeouts</span></div>
<div class="card{{if .R.Errors.Total}} bad{{end}}"><b>{{.R.Errors.Total}}</b><span>errors</span></div>
<div class="card"><b>{{.R.NetCancels.Sent}}</b><span>net cancels sent</span></div>
</div>

<h2>Latency over time</h2>
{{.LatencyChart}}
<p class="note">Per second of completion time: p50, p99 and max of the answers completed in that second.</p>

<h2>Throughput over time</h2>
{{.ThroughputChart}}
<p class="note">Offered: arrivals whose intended send time fell in the second. Answered: responses received in the second. Failed: timeouts and errors.</p>

<h2>Response-code mix</h2>
{{.CodeChart}}

<h2>Latency by percentile</h2>
{{.PercentileChart}}

<h2>Summary</h2>
<table>
<tr><th>elapsed</th><td>{{printf "%.2f" .R.ElapsedSeconds}} s</td></tr>
<tr><th>requests</th><td>sent {{.R.Sent}}, answered {{.R.Answered}}, timeouts {{.R.Timeouts}}, errors {{.R.Errors.Total}}{{if .ErrorKinds}} ({{.ErrorKinds}}){{end}}{{if .R.Unsent}}, never sent {{.R.Unsent}}{{end}}</td></tr>
<tr><th>latency</th><td>min {{ms .R.Latency.Min}} &middot; mean {{ms .R.Latency.Mean}} &middot; p50 {{ms .R.Latency.P50}} &middot; p90 {{ms .R.Latency.P90}} &middot; p99 {{ms .R.Latency.P99}} &middot; p99.9 {{ms .R.Latency.P999}} &middot; max {{ms .R.Latency.Max}} ({{.R.Latency.Count}} answers)</td></tr>
{{with .R.WithTimeouts}}<tr><th>with timeouts</th><td>p50 {{ms .P50}} &middot; p90 {{ms .P90}} &middot; p99 {{ms .P99}} &middot; p99.9 {{ms .P999}} &middot; max {{ms .Max}} (each timeout counted at its wait)</td></tr>{{end}}
{{with .R.GeneratorLag}}<tr><th>generator lag</th><td>p50 {{ms .P50}} &middot; p99 {{ms .P99}} &middot; max {{ms .Max}} (included in latency)</td></tr>{{end}}
<tr><th>net cancels</th><td>sent {{.R.NetCancels.Sent}}, repeats {{.R.NetCancels.Repeats}}, answered {{.R.NetCancels.Answered}}, approved {{.R.NetCancels.Approved}}, timeouts {{.R.NetCancels.Timeouts}}, errors {{.R.NetCancels.Errors}}{{codeList .R.NetCancels.Codes}}</td></tr>
{{if .R.MixFallbacks}}<tr><th>mix fallbacks</th><td>{{.R.MixFallbacks}} cancels/refunds sent as purchases (no approved sale left on their terminal)</td></tr>{{end}}
</table>
<table>
<tr><th>type</th><th>sent</th><th>answered</th><th>approved</th><th>timeouts</th><th>errors</th></tr>
{{range $k, $t := .R.ByType}}{{if $t.Sent}}<tr><td>{{$k}}</td><td class="n">{{$t.Sent}}</td><td class="n">{{$t.Answered}}</td><td class="n">{{$t.Approved}}</td><td class="n">{{$t.Timeouts}}</td><td class="n">{{$t.Errors}}</td></tr>{{end}}{{end}}
</table>
<table>
<tr><th>DE 39</th><th>meaning</th><th>count</th><th>share</th></tr>
{{range .R.ResponseCodes}}<tr><td>{{.Code}}</td><td>{{.Meaning}}</td><td class="n">{{.Count}}</td><td class="n">{{pct .Share}}</td></tr>{{end}}
</table>

{{if .R.ByRoute}}<table>
<tr><th>route (card BIN)</th><th>sent</th><th>answered</th><th>approved</th><th>approval rate</th><th>timeouts</th><th>errors</th><th>p50</th><th>p99</th></tr>
{{range .R.ByRoute}}<tr><td>{{.BIN}}</td><td class="n">{{.Sent}}</td><td class="n">{{.Answered}}</td><td class="n">{{.Approved}}</td><td class="n">{{pct .ApprovalRate}}</td><td class="n">{{.Timeouts}}</td><td class="n">{{.Errors}}</td><td class="n">{{ms .P50}}</td><td class="n">{{ms .P99}}</td></tr>{{end}}
</table>{{end}}
{{with .R.SwitchTime}}<table>
<tr><th>switch vs issuer</th><td>mean {{ms .MeanTotalMS}} per answer: {{ms .MeanSwitchMS}} in the switch ({{printf "%.0f" .SwitchPercent}}%), {{ms .MeanIssuerMS}} per issuer call ({{.IssuerCalls}} calls; from {{.Source}})</td></tr>
</table>{{end}}
<table>
<tr><th>percentile</th>{{range .PercentileRows}}<th>p{{.P}}</th>{{end}}</tr>
<tr><td>ms</td>{{range .PercentileRows}}<td class="n">{{ms .MS}}</td>{{end}}</tr>
</table>

<h2>Configuration</h2>
<table>
<tr><th>target</th><td>{{.R.Target.Addr}}, spec {{.R.Target.Spec}}, header {{.R.Target.Header}}</td></tr>
<tr><th>terminals</th><td>{{.R.Run.Terminals}} ({{.R.Target.TerminalIDs}}), merchant {{.R.Target.MerchantID}}, {{.R.Run.Link}}{{if .R.Run.MaxInFlight}}, at most {{.R.Run.MaxInFlight}} in flight{{end}}</td></tr>
<tr><th>run</th><td>{{.Mode}}, duration {{.R.Run.DurationS}} s{{if .R.Run.Count}}, count {{.R.Run.Count}}{{end}}, timeout {{.R.Run.TimeoutMS}} ms, net cancels {{if .R.Run.NetCancel}}on{{else}}off{{end}}, seed {{.R.Run.Seed}}</td></tr>
<tr><th>cards</th><td>{{.R.Run.Cards}} {{.R.Run.CardKind}}: {{range $i, $c := .R.Run.CardsMasked}}{{if $i}}, {{end}}{{$c}}{{end}}; amounts {{.R.Run.AmountMin}}..{{.R.Run.AmountMax}}</td></tr>
<tr><th>histogram</th><td>{{.R.Run.Histogram}}</td></tr>
</table>
{{range .R.Notes}}<p class="note">{{.}}</p>{{end}}
</body></html>
`))

// Chart geometry.
const (
	chartW, chartH                 = 920, 260
	padL, padR, padT, padB float64 = 62, 16, 28, 38
)

type line struct {
	name, color string
	dash        bool
	pts         [][2]float64 // NaN y breaks the line
}

// niceStep returns a 1-2-5 step that cuts span into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func trimNum(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

type tick struct {
	at    float64
	label string
}

// chart is one line chart: x in [0, xMax], y in [0, yMax] rounded up to a
// nice value, or on a log scale over the decades that hold the data.
type chart struct {
	title, xLabel, yLabel string
	lines                 []line
	xMax                  float64
	xTicks                []tick // nil: numeric ticks
	logY                  bool
}

func (c chart) svg() string {
	title, xLabel, yLabel, lines, xMax, xTicks := c.title, c.xLabel, c.yLabel, c.lines, c.xMax, c.xTicks
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%g" y="16" style="font-weight:600">%s</text>`, padL, template.HTMLEscapeString(title))
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	if xMax <= 0 {
		xMax = 1
	}
	yMin, yMax := math.Inf(1), 0.0
	for _, l := range lines {
		for _, p := range l.pts {
			if !math.IsNaN(p[1]) && p[1] > 0 {
				yMin, yMax = min(yMin, p[1]), max(yMax, p[1])
			}
		}
	}
	var yTicks []float64
	var Y func(float64) float64
	if c.logY && yMax > 0 {
		lo, hi := math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
		if hi <= lo {
			hi = lo + 1
		}
		Y = func(y float64) float64 {
			v := math.Log10(max(y, math.Pow(10, lo)))
			return padT + plotH - (v-lo)/(hi-lo)*plotH
		}
		for e := lo; e <= hi; e++ {
			yTicks = append(yTicks, math.Pow(10, e))
		}
	} else {
		ystep := niceStep(yMax, 5)
		yTop := math.Ceil(yMax/ystep) * ystep
		if yTop <= 0 {
			yTop = ystep
		}
		Y = func(y float64) float64 { return padT + plotH - y/yTop*plotH }
		for v := 0.0; v <= yTop+ystep/2; v += ystep {
			yTicks = append(yTicks, v)
		}
	}
	X := func(x float64) float64 { return padL + x/xMax*plotW }
	// Grid and y ticks.
	for _, v := range yTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e8ee"/>`, padL, Y(v), padL+plotW, Y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, padL-6, Y(v)+4, trimNum(v))
	}
	if xTicks == nil {
		xstep := niceStep(xMax, 10)
		for v := 0.0; v <= xMax+xstep/1000; v += xstep {
			xTicks = append(xTicks, tick{v, trimNum(v)})
		}
	}
	for _, t := range xTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c9d1da"/>`, X(t.at), padT+plotH, X(t.at), padT+plotH+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, X(t.at), padT+plotH+16, template.HTMLEscapeString(t.label))
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#8a97a5"/>`, padL, padT+plotH, padL+plotW, padT+plotH)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#8a97a5"/>`, padL, padT, padL, padT+plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, chartH-4, template.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14,%.1f) rotate(-90)" text-anchor="middle">%s</text>`, padT+plotH/2, template.HTMLEscapeString(yLabel))
	// Lines.
	for _, l := range lines {
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5 4"`
		}
		var seg [][2]float64
		flush := func() {
			switch len(seg) {
			case 0:
			case 1:
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, seg[0][0], seg[0][1], l.color)
			default:
				pts := make([]string, len(seg))
				for i, p := range seg {
					pts[i] = fmt.Sprintf("%.1f,%.1f", p[0], p[1])
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`, l.color, dash, strings.Join(pts, " "))
			}
			seg = seg[:0]
		}
		for _, p := range l.pts {
			if math.IsNaN(p[1]) {
				flush()
				continue
			}
			seg = append(seg, [2]float64{X(p[0]), max(Y(p[1]), padT)})
		}
		flush()
	}
	// Legend.
	lx := padL + plotW
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		lx -= float64(len(l.name))*6.5 + 34
		fmt.Fprintf(&b, `<line x1="%.1f" y1="12" x2="%.1f" y2="12" stroke="%s" stroke-width="2.5"/>`, lx, lx+18, l.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="16">%s</text>`, lx+22, template.HTMLEscapeString(l.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// mid is the x position of second s: its middle.
func mid(s Second) float64 { return float64(s.T) + s.Seconds/2 }

func latencyChart(r *Report) string {
	p50 := line{name: "p50", color: "#1f6feb"}
	p99 := line{name: "p99", color: "#d1242f"}
	mx := line{name: "max", color: "#8250df", dash: true}
	for _, s := range r.Series {
		y50, y99, ymx := math.NaN(), math.NaN(), math.NaN()
		if s.Answered > 0 {
			y50, y99, ymx = s.P50, s.P99, s.Max
		}
		p50.pts = append(p50.pts, [2]float64{mid(s), y50})
		p99.pts = append(p99.pts, [2]float64{mid(s), y99})
		mx.pts = append(mx.pts, [2]float64{mid(s), ymx})
	}
	return chart{title: "Latency per second (ms, log scale)", xLabel: "seconds since start", yLabel: "ms",
		lines: []line{p50, p99, mx}, xMax: r.ElapsedSeconds, logY: true}.svg()
}

func throughputChart(r *Report) string {
	offered := line{name: "offered/s", color: "#8a97a5", dash: true}
	answered := line{name: "answered/s", color: "#1a7f37"}
	failed := line{name: "failed/s", color: "#d1242f"}
	for _, s := range r.Series {
		sec := max(s.Seconds, 1)
		o, a, f := float64(s.Offered)/sec, s.TPS, float64(s.Timeouts+s.Errors)/sec
		offered.pts = append(offered.pts, [2]float64{mid(s), o})
		answered.pts = append(answered.pts, [2]float64{mid(s), a})
		failed.pts = append(failed.pts, [2]float64{mid(s), f})
	}
	return chart{title: "Throughput per second", xLabel: "seconds since start", yLabel: "per second",
		lines: []line{offered, answered, failed}, xMax: r.ElapsedSeconds}.svg()
}

// percentileChart draws latency against percentile on the usual HDR scale:
// x = log10(1/(1-p)), so 90%, 99%, 99.9% ... are evenly spaced.
func percentileChart(r *Report) string {
	const xMax = 5 // 99.999%
	l := line{name: "latency", color: "#1f6feb"}
	for _, p := range r.Percentiles {
		if p.Percentile >= 100 {
			continue
		}
		x := min(-math.Log10(1-p.Percentile/100), xMax)
		l.pts = append(l.pts, [2]float64{x, p.MS})
	}
	ticks := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	return chart{title: "Latency by percentile (ms, log scale)", xLabel: "percentile", yLabel: "ms",
		lines: []line{l}, xMax: xMax, xTicks: ticks, logY: true}.svg()
}

// codeChart draws the response-code mix as horizontal bars, with the
// requests that got no answer as bars of their own.
func codeChart(r *Report) string {
	type bar struct {
		label, color string
		n            int64
	}
	var bars []bar
	for _, c := range r.ResponseCodes {
		color := "#d4a72c"
		switch {
		case c.Code == "00":
			color = "#1a7f37"
		case strings.HasPrefix(c.Code, "9") || c.Code == noCode:
			color = "#d1242f"
		}
		bars = append(bars, bar{c.Code + " " + c.Meaning, color, c.Count})
	}
	if r.Timeouts > 0 {
		bars = append(bars, bar{"no answer: timeout", "#6e7781", r.Timeouts})
	}
	if r.Errors.Total > 0 {
		bars = append(bars, bar{"no answer: error", "#24292f", r.Errors.Total})
	}
	const rowH, labelW = 24, 330
	h := int(padT) + rowH*max(len(bars), 1) + 12
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="Response-code mix">`, chartW, h, chartW, h)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, chartW, h)
	fmt.Fprintf(&b, `<text x="8" y="16" style="font-weight:600">Response-code mix (DE 39) of %d requests</text>`, r.Answered+r.Timeouts+r.Errors.Total)
	if len(bars) == 0 {
		fmt.Fprintf(&b, `<text x="8" y="%d">no answers</text></svg>`, int(padT)+14)
		return b.String()
	}
	var total, top int64
	for _, x := range bars {
		total += x.n
		top = max(top, x.n)
	}
	barMax := float64(chartW - labelW - 120)
	for i, x := range bars {
		y := int(padT) + i*rowH
		label := x.label
		if len(label) > 52 {
			label = label[:51] + "…"
		}
		w := float64(x.n) / float64(top) * barMax
		fmt.Fprintf(&b, `<text x="8" y="%d">%s</text>`, y+15, template.HTMLEscapeString(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/>`, labelW, y+3, max(w, 1), rowH-8, x.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d (%.1f%%)</text>`, float64(labelW)+max(w, 1)+6, y+15, x.n, 100*float64(x.n)/float64(total))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
