package hsm

import (
	"math/rand/v2"
	"time"
)

// Faults are what the emulator does wrong, switched at run time.
type Faults struct {
	// LatencyMin and LatencyMax delay every answer by a uniform draw
	// between them (LatencyMax 0: LatencyMin exactly).
	LatencyMin time.Duration `json:"latency_min"`
	LatencyMax time.Duration `json:"latency_max"`
	// ErrorPercent of commands are answered with ErrorCode (default 13,
	// LMK error) instead of being executed.
	ErrorPercent float64 `json:"error_percent"`
	ErrorCode    string  `json:"error_code"`
	// DisconnectPercent of commands close their connection unanswered.
	DisconnectPercent float64 `json:"disconnect_percent"`
	// Stall reads every command and answers none.
	Stall bool `json:"stall"`
}

func (f *Faults) latency() time.Duration {
	if f.LatencyMax <= f.LatencyMin {
		return f.LatencyMin
	}
	return f.LatencyMin + rand.N(f.LatencyMax-f.LatencyMin)
}

func (f *Faults) errorCode() string {
	if len(f.ErrorCode) == 2 {
		return f.ErrorCode
	}
	return "13"
}

// SetFaults replaces the faults in force (the zero value: none).
func (s *Server) SetFaults(f Faults) { s.faults.Store(&f) }

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults { return *s.faults.Load() }
