package load

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kbpay/switch/specs/codes"
)

// Histogram range: 1 µs .. 60 s at 3 significant digits. Values are
// recorded in microseconds; longer ones are clamped to the top and counted.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histSigFigs   = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMinMicros, histMaxMicros, histSigFigs) }

// Request types.
type kind int

const (
	kindPurchase kind = iota
	kindCancel
	kindRefund
	numKinds
)

var kindNames = [numKinds]string{"purchase", "cancel", "refund"}

func (k kind) String() string { return kindNames[k] }

// Error kinds besides timeouts.
const (
	errConnection = "connection"     // send failed: link down or closed
	errBuild      = "build"          // the request could not be built
	errBadMTI     = "unexpected_mti" // answered, but not with the response MTI
)

// recorder collects every outcome of a run. All methods are safe for
// concurrent use.
type recorder struct {
	mu    sync.Mutex
	start time.Time

	all     *hdr.Histogram // every answer's latency from its intended send time
	allT    *hdr.Histogram // the same plus each timeout's wait
	lag     *hdr.Histogram // generator lag: actual - intended send time (open loop)
	clamped int64          // latencies above histMaxMicros

	// The current one-second window, by completion time.
	win                  *hdr.Histogram
	winSec               int
	winAnswered          int64
	winTimeouts, winErrs int64
	winCodes             map[string]int64
	series               []Second
	offered              []int64 // arrivals by intended second

	sent, answered int64
	codes          map[string]int64
	types          [numKinds]TypeCounts
	timeouts       int64
	errKinds       map[string]int64
	net            NetCancels
	unsent         int64
	fallbacks      int64
	lastDone       time.Time
}

func newRecorder(start time.Time) *recorder {
	return &recorder{
		start:    start,
		all:      newHist(),
		allT:     newHist(),
		lag:      newHist(),
		win:      newHist(),
		winCodes: map[string]int64{},
		codes:    map[string]int64{},
		errKinds: map[string]int64{},
	}
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMinMicros {
		return histMinMicros
	}
	return us
}

func (r *recorder) secOf(t time.Time) int {
	d := t.Sub(r.start)
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}

// rollTo closes windows until the current one is sec. Callers hold mu.
func (r *recorder) rollTo(sec int) {
	for r.winSec < sec {
		r.closeWindow(1)
		r.winSec++
	}
}

// closeWindow appends the current window, seconds long, to the series and
// resets it. Callers hold mu.
func (r *recorder) closeWindow(seconds float64) {
	s := Second{T: r.winSec, Seconds: seconds, Answered: r.winAnswered, Timeouts: r.winTimeouts, Errors: r.winErrs}
	s.TPS = float64(r.winAnswered) / max(seconds, 1)
	if r.winAnswered > 0 {
		s.P50 = ms(r.win.ValueAtQuantile(50))
		s.P90 = ms(r.win.ValueAtQuantile(90))
		s.P99 = ms(r.win.ValueAtQuantile(99))
		s.Max = ms(r.win.Max())
	}
	if len(r.winCodes) > 0 {
		s.Codes = r.winCodes
		r.winCodes = map[string]int64{}
	}
	r.series = append(r.series, s)
	r.win.Reset()
	r.winAnswered, r.winTimeouts, r.winErrs = 0, 0, 0
}

func ms(us int64) float64 { return float64(us) / 1000 }

// offer counts an arrival (open loop: when scheduled; closed: when sent)
// by its intended send time, and the generator's lag in sending it.
func (r *recorder) offer(intended time.Time) {
	sec := r.secOf(intended)
	r.mu.Lock()
	for len(r.offered) <= sec {
		r.offered = append(r.offered, 0)
	}
	r.offered[sec]++
	r.mu.Unlock()
}

// sending counts a request put on the wire and the generator's lag.
func (r *recorder) sending(k kind, intended, actual time.Time, open bool) {
	r.mu.Lock()
	r.sent++
	r.types[k].Sent++
	if open {
		_ = r.lag.RecordValue(min(micros(actual.Sub(intended)), histMaxMicros))
	}
	r.mu.Unlock()
}

// answer records a response: latency from the intended send time.
func (r *recorder) answer(k kind, intended, done time.Time, rc string, approved, badMTI bool) {
	us := micros(done.Sub(intended))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollTo(r.secOf(done))
	if us > histMaxMicros {
		r.clamped++
		us = histMaxMicros
	}
	_ = r.all.RecordValue(us)
	_ = r.allT.RecordValue(us)
	_ = r.win.RecordValue(us)
	r.answered++
	r.winAnswered++
	if rc == "" {
		rc = noCode
	}
	r.codes[rc]++
	r.winCodes[rc]++
	r.types[k].Answered++
	if approved {
		r.types[k].Approved++
	}
	if badMTI {
		r.errKinds[errBadMTI]++
	}
	if done.After(r.lastDone) {
		r.lastDone = done
	}
}

// noCode stands for a response without DE 39.
const noCode = "--"

// fail records a request that got no answer.
func (r *recorder) fail(k kind, intended, done time.Time, timeout bool, errKind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollTo(r.secOf(done))
	if timeout {
		_ = r.allT.RecordValue(min(micros(done.Sub(intended)), histMaxMicros))
		r.timeouts++
		r.winTimeouts++
		r.types[k].Timeouts++
	} else {
		r.errKinds[errKind]++
		r.winErrs++
		r.types[k].Errors++
	}
	if done.After(r.lastDone) {
		r.lastDone = done
	}
}

// netCancel records a net cancel (0400 for a purchase that timed out):
// answered with DE 39 rc, or not (timed out or failed).
func (r *recorder) netCancel(answered bool, rc string, timeout bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.net.Sent++
	switch {
	case answered:
		r.net.Answered++
		if rc == "" {
			rc = noCode
		}
		if r.net.Codes == nil {
			r.net.Codes = map[string]int64{}
		}
		r.net.Codes[rc]++
		if codes.Code(rc).IsApproved() {
			r.net.Approved++
		}
	case timeout:
		r.net.Timeouts++
	default:
		r.net.Errors++
	}
}

func (r *recorder) netCancelRepeat() {
	r.mu.Lock()
	r.net.Repeats++
	r.mu.Unlock()
}

func (r *recorder) dropUnsent() {
	r.mu.Lock()
	r.unsent++
	r.mu.Unlock()
}

func (r *recorder) fallback() {
	r.mu.Lock()
	r.fallbacks++
	r.mu.Unlock()
}

// live is what the progress line shows.
type live struct {
	elapsed          time.Duration
	sent, answered   int64
	tps              float64 // answers in the last full second
	p99              float64 // ms, of the last full second; -1 when none
	timeouts, errors int64
}

func (r *recorder) live(now time.Time) live {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rollTo(r.secOf(now))
	l := live{elapsed: now.Sub(r.start), sent: r.sent, answered: r.answered, timeouts: r.timeouts, p99: -1}
	for _, n := range r.errKinds {
		l.errors += n
	}
	if n := len(r.series); n > 0 {
		last := r.series[n-1]
		l.tps = last.TPS
		if last.Answered > 0 {
			l.p99 = last.P99
		}
	} else if l.elapsed > 0 && r.winAnswered > 0 { // the first second, so far
		l.tps = float64(r.winAnswered) / l.elapsed.Seconds()
		l.p99 = ms(r.win.ValueAtQuantile(99))
	}
	return l
}
