package load

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/card/pan"
)

func TestReportFiles(t *testing.T) {
	s := startSynth(t, time.Millisecond)
	s.decline = func(amount int64) bool { return amount%4 == 0 }
	rep := run(t, Config{Addr: s.addr, Rate: 200, Duration: 1200 * time.Millisecond, Terminals: 2,
		Mix: Mix{Purchase: 80, Cancel: 15, Refund: 5}})
	dir := filepath.Join(t.TempDir(), "out")
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	if got.Sent != rep.Sent || got.Answered != rep.Answered || got.Latency.P99 != rep.Latency.P99 || got.TargetTPS != 200 {
		t.Errorf("report.json disagrees with the run: %+v", got)
	}
	if len(got.Series) < 2 || got.Series[0].Answered == 0 || got.Series[0].Offered == 0 || got.Series[0].P99 == 0 {
		t.Errorf("per-second series missing or empty: %+v", got.Series)
	}
	var sum int64
	for _, s := range got.Series {
		sum += s.Answered
	}
	if sum != got.Answered {
		t.Errorf("series answers add up to %d, total %d", sum, got.Answered)
	}
	if len(got.ResponseCodes) < 2 || got.ResponseCodes[0].Meaning == "" || len(got.Percentiles) == 0 {
		t.Errorf("codes %+v percentiles %d", got.ResponseCodes, len(got.Percentiles))
	}
	for _, key := range []string{`"p99_9"`, `"net_cancels"`, `"timeouts"`, `"response_codes"`, `"series"`, `"achieved_tps"`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("report.json lacks %s", key)
		}
	}

	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	h := string(html)
	if n := strings.Count(h, "<svg"); n < 4 {
		t.Errorf("report.html has %d SVG charts, want latency, throughput, code mix and percentiles", n)
	}
	for _, want := range []string{"Latency per second", "Throughput per second", "Response-code mix", "<polyline", "<style>", "Approved"} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Self-contained: nothing fetched, nothing run.
	for _, bad := range []string{"http", "<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(strings.ToLower(h), bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	checkNoPAN(t, string(raw)+h)
	if !strings.Contains(h, pan.Mask(DemoCards[0])) {
		t.Errorf("report.html does not list the masked cards")
	}
}

// checkNoPAN fails if any demo card number appears in full.
func checkNoPAN(t *testing.T, out string) {
	t.Helper()
	for _, c := range DemoCards {
		if strings.Contains(out, c) {
			t.Errorf("output shows the full card number %s", pan.Mask(c))
		}
	}
}

func TestTextSummary(t *testing.T) {
	s := startSynth(t, time.Millisecond)
	rep := run(t, Config{Addr: s.addr, Rate: 100, Count: 30, Terminals: 1})
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"target 100.0 TPS", "achieved", "sent 30, answered 30", "p50", "p90", "p99", "p99.9", "max",
		"net cancels", "00", "Approved or completed successfully", "generator lag"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	checkNoPAN(t, out)
}

func TestSeriesShowsAStall(t *testing.T) {
	// The per-second windows keep going (with zero answers) while nothing
	// comes back, and the stall appears in the second it ends in.
	s := startSynth(t, time.Millisecond)
	timer := time.AfterFunc(900*time.Millisecond, func() { s.stall(1500 * time.Millisecond) })
	defer timer.Stop()
	rep, err := Run(context.Background(), Config{Addr: s.addr, Rate: 50, Duration: 3 * time.Second, Terminals: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var empty, slow int
	for _, sec := range rep.Series {
		if sec.Answered == 0 && sec.Seconds == 1 {
			empty++
		}
		if sec.Max >= 1000 {
			slow++
		}
	}
	if empty == 0 || slow == 0 {
		t.Errorf("series does not show a 1.5s stall (empty seconds %d, seconds with a >=1s max %d): %+v", empty, slow, rep.Series)
	}
	if rep.Latency.Max < 1000 {
		t.Errorf("max %.1fms, want >= 1s", rep.Latency.Max)
	}
}
