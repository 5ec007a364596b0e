package load

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// IsTerminal reports whether w is a character device (a terminal), where a
// \r-updated progress line makes sense.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress starts the live progress line and returns the function that
// stops it (leaving the final line in place).
func (e *engine) progress(start time.Time) (stop func()) {
	w := e.cfg.Progress
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	width := 0
	draw := func(now time.Time) {
		line := formatLive(e.rec.live(now), e.cfg.Duration, e.cfg.Count, e.inFlight.Load())
		pad := ""
		if n := width - len(line); n > 0 {
			pad = strings.Repeat(" ", n) // clear what the longer previous line left
		}
		width = len(line)
		fmt.Fprintf(w, "\r%s%s", line, pad)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(e.cfg.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case now := <-tick.C:
				draw(now)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		draw(time.Now())
		fmt.Fprintln(w)
	}
}

// formatLive renders one progress line: a bar of elapsed time, the answers
// per second and p99 of the last full second, and the failures so far.
func formatLive(l live, duration time.Duration, count int64, inFlight int64) string {
	const barWidth = 20
	frac := 0.0
	if duration > 0 {
		frac = float64(l.elapsed) / float64(duration)
	}
	if count > 0 {
		frac = max(frac, float64(l.sent)/float64(count))
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * barWidth)
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	p99 := "-"
	if l.p99 >= 0 {
		p99 = fmtMS(l.p99)
	}
	return fmt.Sprintf("[%s] %6.1fs  sent %d  tps %.0f  p99 %s  in-flight %d  timeouts %d  errors %d",
		bar, l.elapsed.Seconds(), l.sent, l.tps, p99, inFlight, l.timeouts, l.errors)
}

// fmtMS renders milliseconds with sensible precision.
func fmtMS(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.3fms", v)
	case v < 100:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}
