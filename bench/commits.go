package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// commitTally is switchd's journal group-commit counters at one moment:
// how many groups committed and how many writes they carried
// (payswitch_journal_commit_writes).
type commitTally struct {
	groups, writes float64
}

// readCommits scrapes switchd's /metrics on its admin address for its
// journal group-commit counters.
func readCommits(ctx context.Context, admin string) (commitTally, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return commitTally{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return commitTally{}, fmt.Errorf("reading switchd's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return commitTally{}, fmt.Errorf("reading switchd's metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return commitTally{}, fmt.Errorf("parsing switchd's metrics: %w", err)
	}
	f, ok := fams["payswitch_journal_commit_writes"]
	if !ok || len(f.GetMetric()) != 1 {
		return commitTally{}, fmt.Errorf("switchd's metrics have no payswitch_journal_commit_writes")
	}
	h := f.GetMetric()[0].GetHistogram()
	return commitTally{groups: float64(h.GetSampleCount()), writes: h.GetSampleSum()}, nil
}

// setCommits fills ph's journal figures from the tallies before and
// after its load.
func (ph *Phase) setCommits(before, after commitTally) {
	groups, writes := after.groups-before.groups, after.writes-before.writes
	if groups <= 0 || ph.Answered <= 0 {
		return
	}
	ph.CommitsPerTxn = groups / float64(ph.Answered)
	ph.WritesPerCommit = writes / groups
}
