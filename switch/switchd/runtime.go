package switchd

import (
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
)

// gcKnobs are the runtime/debug setters applyRuntime calls (a test records them).
type gcKnobs struct {
	setGCPercent   func(int) int
	setMemoryLimit func(int64) int64
}

var runtimeDebug = gcKnobs{setGCPercent: debug.SetGCPercent, setMemoryLimit: debug.SetMemoryLimit}

// applyRuntime sets the garbage collector's percent and soft memory limit
// from rc, except the one whose environment variable (GOGC, GOMEMLIMIT) the
// operator set: the Go runtime read that one at start, and it wins. It
// returns the settings in force, as log fields.
func applyRuntime(rc config.Runtime, getenv func(string) string, k gcKnobs) []zap.Field {
	gc, limit := "config", "config"
	if getenv("GOGC") != "" {
		gc = "GOGC"
	} else {
		k.setGCPercent(rc.GCPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		limit = "GOMEMLIMIT"
	} else {
		k.setMemoryLimit(int64(rc.MemoryLimit))
	}
	// SetGCPercent(-1) would turn the collector off: read the percent back
	// by setting it to what it returns.
	percent := k.setGCPercent(-1)
	k.setGCPercent(percent)
	return []zap.Field{
		zap.Int("gc_percent", percent), zap.String("gc_percent_from", gc),
		zap.Stringer("memory_limit", config.ByteSize(k.setMemoryLimit(-1))), zap.String("memory_limit_from", limit),
	}
}
