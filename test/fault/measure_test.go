package fault

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/internal/raceflag"
	"github.com/kbpay/switch/simulator/load"
	"github.com/kbpay/switch/switch/store/postgres"
)

// TestMeasureStores measures throughput and latency of the same closed
// load against switchd on the embedded store, one switchd on PostgreSQL,
// and two on PostgreSQL behind HAProxy, in one run (docs/performance.md).
// It runs only with SWITCH_MEASURE=1 (it takes a few minutes and its
// figures mean something only without -race).
func TestMeasureStores(t *testing.T) {
	if os.Getenv("SWITCH_MEASURE") != "1" {
		t.Skip("set SWITCH_MEASURE=1 to measure the stores")
	}
	if raceflag.Enabled {
		t.Skip("measure without -race")
	}
	_, routes := startIssuers(t, bigBalance)
	emb := newSwitchd(t, routes)
	emb.start()
	if err := emb.waitReady(30*time.Second, "card-a", "card-b"); err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Start(t, pgtest.WithSetting("max_connections", "100"))
	dsn := srv.CreateDatabase(t, "switch")
	if _, err := postgres.Migrate(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	a, b := startPair(t, routes, dsn)
	lb, lbOne := balance(t, a, b), balance(t, a)

	cards := load.GenerateCards(200, []string{"9410", "9420"})
	duration := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SWITCH_MEASURE_DURATION")); err == nil {
		duration = d
	}
	t.Logf("closed loop, 64 workers over 32 terminal connections, purchases only, %v per target", duration)
	t.Logf("| store | instances | path | TPS | p50 ms | p99 ms | unanswered |")
	t.Logf("| --- | --- | --- | --- | --- | --- | --- |")
	var series []string
	for i, target := range []struct{ store, instances, path, addr string }{
		{"embedded (SQLite, fsync)", "1", "direct", emb.termAddr},
		{"PostgreSQL", "1", "direct", a.termAddr},
		{"PostgreSQL", "1", "HAProxy", lbOne.Addr},
		{"PostgreSQL", "2", "HAProxy", lb.Addr},
	} {
		rep, err := load.Run(context.Background(), load.Config{Addr: target.addr, Closed: 64, Terminals: 32,
			Duration: duration, Cards: cards, AmountMin: 100, AmountMax: 5000, Seed: uint64(i + 1), NoNetCancel: true,
			TerminalPrefix: "M" + string(rune('A'+i))})
		if err != nil {
			t.Fatalf("%s %s: %v", target.store, target.path, err)
		}
		fails := rep.Sent - rep.Answered // timeouts and broken links
		t.Logf("| %s | %s | %s | %.0f | %.2f | %.2f | %d |", target.store, target.instances, target.path, rep.AchievedTPS,
			rep.Latency.P50, rep.Latency.P99, fails)
		series = append(series, fmt.Sprintf("%s, %s instance(s), %s: TPS by second %v", target.store, target.instances, target.path, tpsBySecond(rep)))
	}
	for _, line := range series {
		t.Log(line)
	}
}

// tpsBySecond is a run's answered requests per second, rounded.
func tpsBySecond(rep *load.Report) []int {
	var out []int
	for _, sec := range rep.Series {
		out = append(out, int(sec.TPS+0.5))
	}
	return out
}
