package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Role marks a stage whose place in a list is money safety.
type Role int

// Stage roles.
const (
	RoleNone Role = iota
	// RoleRecordOutcome journals the outcome before the terminal hears it:
	// it wraps the rest of the list and records what comes back.
	RoleRecordOutcome
	// RoleAssign assigns the issuer-leg STAN and RRN.
	RoleAssign
	// RoleRecordRequest journals the issuer request durably before it
	// leaves.
	RoleRecordRequest
	// RoleSend sends the request to the issuer.
	RoleSend
)

// ListKey names a stage list: a message class paid with an instrument.
type ListKey struct {
	Class      Class
	Instrument string
}

func (k ListKey) String() string { return string(k.Class) + "/" + k.Instrument }

// CheckOrder refuses a list in which a stage sends to the issuer before
// the request is journaled: every RoleSend stage needs a RoleRecordRequest
// stage ahead of it, which needs a RoleAssign stage ahead of it (the
// journal row carries the issuer STAN) and, when the list answers a
// terminal, a RoleRecordOutcome stage ahead of that (the outcome is
// journaled before the terminal hears it).
func CheckOrder(name string, stages []Stage, answersTerminal bool) error {
	seen := map[Role]bool{}
	for i, s := range stages {
		need := func(r Role, what string) error {
			if !seen[r] {
				return fmt.Errorf("stage list %s: stage %d %q comes before any stage that %s", name, i, s.Name, what)
			}
			return nil
		}
		var err error
		switch s.Role {
		case RoleSend:
			err = need(RoleRecordRequest, "journals the request")
		case RoleRecordRequest:
			err = need(RoleAssign, "assigns the issuer STAN")
			if err == nil && answersTerminal {
				err = need(RoleRecordOutcome, "journals the outcome")
			}
		}
		if err != nil {
			return err
		}
		seen[s.Role] = true
	}
	return nil
}

// StageTimer observes how long each stage takes itself (not counting the
// stages after it): payswitch_stage_duration_seconds{stage}.
type StageTimer struct{ h *prometheus.HistogramVec }

// NewStageTimer registers the stage histogram on reg.
func NewStageTimer(reg prometheus.Registerer) *StageTimer {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "payswitch", Name: "stage_duration_seconds",
		Help:    "Time each pipeline stage takes itself (the stages after it not counted), by stage.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"stage"})
	reg.MustRegister(h)
	return &StageTimer{h: h}
}

// timed wraps stage s so that its own time is observed: the time inside
// it minus the time inside the stages after it (Txn.nested).
func (st *StageTimer) timed(s Stage) Stage {
	if st == nil {
		return s
	}
	obs := st.h.WithLabelValues(s.Name) // the series exists from the start
	return Stage{Name: s.Name, Role: s.Role, Wrap: func(next Handler) Handler {
		h := s.Wrap(next)
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			start := time.Now()
			t.nested = 0
			err := h.Handle(ctx, t)
			total := time.Since(start)
			obs.Observe((total - t.nested).Seconds())
			t.nested = total
			return err
		})
	}}
}

// Dispatcher sends each transaction down the stage list of its class and
// instrument.
type Dispatcher struct {
	chains map[ListKey]Handler
}

// NewDispatcher builds a handler per list, checking each list's order
// (CheckOrder); timer (nil: none) observes every stage.
func NewDispatcher(lists map[ListKey][]Stage, timer *StageTimer) (*Dispatcher, error) {
	d := &Dispatcher{chains: map[ListKey]Handler{}}
	for k, stages := range lists {
		if err := CheckOrder(k.String(), stages, k.Class != ClassQueued); err != nil {
			return nil, err
		}
		timed := make([]Stage, len(stages))
		for i, s := range stages {
			timed[i] = timer.timed(s)
		}
		d.chains[k] = Chain(timed, Done)
	}
	return d, nil
}

// Handle runs t down its list: a terminal request by ClassOf, a queued
// give-back (Txn.QueuedID set) down the queued list.
func (d *Dispatcher) Handle(ctx context.Context, t *Txn) error {
	class := ClassQueued
	if t.QueuedID == 0 {
		class = ClassOf(t)
	}
	inst := t.Policy.Instrument
	if inst == "" {
		inst = InstrumentCard
	}
	h, ok := d.chains[ListKey{Class: class, Instrument: inst}]
	if !ok {
		return Declinef(ErrInvalidTxn, "no stage list for %s paid by %s", class, inst)
	}
	return h.Handle(ctx, t)
}
