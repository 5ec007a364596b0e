package bench

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kbpay/switch/switch/opsmetrics"
)

// TestCommitFigures: the journal figures come from switchd's own
// writes-per-commit series, as its /metrics serves it: the groups and
// writes of the phase (after minus before), per answered transaction.
func TestCommitFigures(t *testing.T) {
	reg := prometheus.NewRegistry()
	ops := opsmetrics.New(reg)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	admin := strings.TrimPrefix(srv.URL, "http://")

	ops.ObserveCommit(time.Millisecond, 7, nil) // before the phase
	before, err := readCommits(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 5, 1, 11} {
		ops.ObserveCommit(time.Millisecond, n, nil)
	}
	after, err := readCommits(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	ph := Phase{Answered: 10}
	ph.setCommits(before, after)
	if ph.CommitsPerTxn != 0.4 || ph.WritesPerCommit != 5 {
		t.Fatalf("commits per txn %v, writes per commit %v; want 0.4 and 5", ph.CommitsPerTxn, ph.WritesPerCommit)
	}

	// A process without the series (not a switchd) is an error, not zeros.
	empty := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
	defer empty.Close()
	if _, err := readCommits(t.Context(), strings.TrimPrefix(empty.URL, "http://")); err == nil {
		t.Fatal("metrics without payswitch_journal_commit_writes read as a tally")
	}
}
