package hsm

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
)

// Faults are what the emulator does wrong, switched at run time.
type Faults struct {
	// Latency delays every answer by a draw from a distribution in the
	// issuer emulator's compact form (issuer.ParseLatencyDist): "2ms",
	// "uniform,min=1ms,max=5ms", "lognormal,median=2ms,p99=30ms,max=1s",
	// "pareto,median=2ms,p99=50ms". Empty: none.
	Latency string `json:"latency,omitempty"`
	// ErrorPercent of commands are answered with ErrorCode (default 13,
	// LMK error) instead of being executed.
	ErrorPercent float64 `json:"error_percent,omitempty"`
	ErrorCode    string  `json:"error_code,omitempty"`
	// DisconnectPercent of commands close their connection unanswered.
	DisconnectPercent float64 `json:"disconnect_percent,omitempty"`
	// Stall reads every command and answers none.
	Stall bool `json:"stall,omitempty"`

	dist issuer.LatencyDist
}

// check validates f and parses its latency distribution.
func (f *Faults) check() error {
	if f.ErrorPercent < 0 || f.ErrorPercent > 100 || f.DisconnectPercent < 0 || f.DisconnectPercent > 100 {
		return fmt.Errorf("hsmsim faults: percentages are 0 to 100")
	}
	if f.ErrorCode != "" && len(f.ErrorCode) != 2 {
		return fmt.Errorf("hsmsim faults: error code %q is not 2 characters", f.ErrorCode)
	}
	f.dist = issuer.LatencyDist{}
	if f.Latency != "" {
		d, err := issuer.ParseLatencyDist(f.Latency)
		if err != nil {
			return fmt.Errorf("hsmsim faults: %w", err)
		}
		f.dist = d
	}
	return nil
}

// latencyRand draws latencies for one emulator.
type latencyRand struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newLatencyRand() *latencyRand {
	return &latencyRand{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// delay draws f's latency for one answer.
func (l *latencyRand) delay(f *Faults) time.Duration {
	if f.Latency == "" {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return f.dist.Sample(l.rng)
}

func (f *Faults) errorCode() string {
	if f.ErrorCode != "" {
		return f.ErrorCode
	}
	return "13"
}

// SetFaults replaces the faults in force (the zero value: none).
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	s.faults.Store(&f)
	return nil
}

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults { return *s.faults.Load() }
