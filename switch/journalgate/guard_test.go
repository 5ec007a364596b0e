package journalgate_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/journalgate"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
)

// TestGateClosesUntilRecoveredWithNothingHeld: a failed write closes the
// gate; it opens only once nothing is held and no failure came after the
// probe that read the held outcomes.
func TestGateClosesUntilRecoveredWithNothingHeld(t *testing.T) {
	g := journalgate.New(zap.NewNop(), prometheus.NewRegistry())
	if err := g.Admit(); err != nil {
		t.Fatalf("a new gate is closed: %v", err)
	}
	g.Hold(&pipeline.Held{Row: store.Txn{ID: 7}, Reverse: true}, errors.New("disk full"))
	if g.Admit() == nil {
		t.Fatal("gate open after the journal refused an outcome")
	}
	if ok, _ := g.Status(); ok {
		t.Fatal("status healthy while an outcome is held")
	}
	if !g.Busy(7) {
		t.Error("a held row is not busy for the sweep")
	}
	held, failures := g.Held()
	if len(held) != 1 || held[0].Row.ID != 7 {
		t.Fatalf("held %v", held)
	}
	if g.Recovered(failures) {
		t.Fatal("recovered with an outcome still held")
	}
	g.Settled(7)
	g.Failed(errors.New("disk full again")) // after the probe read failures
	if g.Recovered(failures) {
		t.Fatal("recovered over a failure reported after the probe")
	}
	_, failures = g.Held()
	if !g.Recovered(failures) || g.Admit() != nil {
		t.Fatal("gate still closed with nothing held and no new failure")
	}
	done := g.Track(9)
	if !g.Busy(9) {
		t.Error("a tracked row is not busy")
	}
	done()
	if g.Busy(9) {
		t.Error("a finished row is still busy")
	}
}
