package cli

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestKeptMessagesAreNeverSampled: within one second, every "transaction"
// line is written while a flood of another message is thinned out.
func TestKeptMessagesAreNeverSampled(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(SampleExcept(core, "transaction")).With(zap.String("listener", "terminal"))
	for i := 0; i < 1000; i++ {
		log.Info("transaction", zap.Int("i", i))
		log.Info("noise")
	}
	if n := logs.FilterMessage("transaction").Len(); n != 1000 {
		t.Errorf("%d of 1000 transaction lines written", n)
	}
	if n := logs.FilterMessage("noise").Len(); n >= 1000 || n < 100 {
		t.Errorf("%d noise lines: not sampled", n)
	}
	if got := logs.FilterMessage("transaction").All()[0].ContextMap()["listener"]; got != "terminal" {
		t.Errorf("With fields lost: %v", got)
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("loud"); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := NewLogger("debug", "transaction"); err != nil {
		t.Error(err)
	}
}
