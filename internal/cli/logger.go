package cli

import (
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger is every binary's production JSON logger: ISO 8601 times
// ("time"), no stack traces on errors (the message says what went wrong;
// a recovered panic logs its own stack). Zap's sampling (per message, 100
// a second, then every 100th) keeps a flood of identical lines from
// costing throughput, except for the messages named in unsampled, which
// are always written: switchd's one line per transaction must never be
// thinned out.
func NewLogger(level string, unsampled ...string) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = lvl
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.DisableStacktrace = true
	zc.Sampling = nil // applied below, with the exceptions
	return zc.Build(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return SampleExcept(c, unsampled...) }))
}

// SampleExcept samples c like zap's production logger (per message, 100
// a second, then every 100th) except for the messages given, which always
// reach c.
func SampleExcept(c zapcore.Core, messages ...string) zapcore.Core {
	keep := make(map[string]bool, len(messages))
	for _, m := range messages {
		keep[m] = true
	}
	return &splitCore{exact: c, sampled: zapcore.NewSamplerWithOptions(c, time.Second, 100, 100), keep: keep}
}

// splitCore sends the kept messages to exact and the rest through the
// sampler.
type splitCore struct {
	exact, sampled zapcore.Core
	keep           map[string]bool
}

func (s *splitCore) Enabled(l zapcore.Level) bool { return s.exact.Enabled(l) }

func (s *splitCore) With(f []zapcore.Field) zapcore.Core {
	return &splitCore{exact: s.exact.With(f), sampled: s.sampled.With(f), keep: s.keep}
}

func (s *splitCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if s.keep[e.Message] {
		return s.exact.Check(e, ce)
	}
	return s.sampled.Check(e, ce)
}

// Write is reached only through a CheckedEntry of this core (never: Check
// adds the inner cores); it writes unsampled.
func (s *splitCore) Write(e zapcore.Entry, f []zapcore.Field) error { return s.exact.Write(e, f) }

func (s *splitCore) Sync() error { return s.exact.Sync() }
