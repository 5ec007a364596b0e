package bench

import (
	"bytes"
	"regexp"
	"testing"
)

// TestResultsCarryNoLongDigitRuns: ratios and per-transaction figures are
// divisions; written at full float precision they leave 16-digit runs in
// results.json that read like card numbers (and mean nothing).
func TestResultsCarryNoLongDigitRuns(t *testing.T) {
	r := &Results{Phases: []Phase{
		{Path: PathDirect, Load: addedP99Load, TPS: 3, P50: 0.3, P99: 0.7, P999: 0.9},
		{Path: PathRelay, Load: addedP99Load, TPS: 1, P50: 0.7, P99: 1.1, P999: 1.3, CPUPerTxnUS: 7, IssuerCPUPerTxnUS: 10.0 / 3},
		{Path: PathPAN, Load: addedP99Load, TPS: 2, P50: 1.1, P99: 2.9, P999: 3.1, CPUPerTxnUS: 22, CommitsPerTxn: 2.0 / 3, WritesPerCommit: 10.0 / 3},
	}}
	r.finish()
	var out bytes.Buffer
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	if run := regexp.MustCompile(`[0-9]{13,}`).Find(out.Bytes()); run != nil {
		t.Fatalf("results.json carries the digit run %s:\n%s", run, &out)
	}
	if got := r.Phases[1].TPSRatio; got != 0.333 {
		t.Fatalf("relay TPS ratio %v, want 0.333", got)
	}
}
