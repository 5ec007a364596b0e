package issuer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// ScheduledFault is one window of a fault schedule: from From until To
// (half-open, [From, To); To 0 means no end), measured since the issuer
// started (Config.Schedule) or since SetSchedule, Fault replaces the base
// fault (SetFault). The first window covering an instant wins. A window's
// Disconnect fires once per window.
//
// In YAML (Config.Schedule, key schedule) and as the JSON body of
// POST /issuers/{name}/schedule (durations as strings):
//
//	schedule:
//	  - {from: 10s, to: 15s, fault: {drop_percent: 100}}      # silent
//	  - {from: 30s, to: 40s, fault: {garbage_percent: 20}}
//	  - {from: 60s, fault: {late_by: 3s, late_percent: 50}}   # until the end
type ScheduledFault struct {
	From  time.Duration `yaml:"from"`
	To    time.Duration `yaml:"to"`
	Fault Fault         `yaml:"fault"`
}

// Validate checks the window's bounds and its fault.
func (w ScheduledFault) Validate() error {
	if w.From < 0 || (w.To != 0 && w.To <= w.From) {
		return fmt.Errorf("schedule window [%s, %s): want 0 <= from < to (to 0: no end)", w.From, w.To)
	}
	if err := w.Fault.Validate(); err != nil {
		return fmt.Errorf("schedule window [%s, %s): %w", w.From, w.To, err)
	}
	return nil
}

// covers reports whether elapsed lies in the window.
func (w ScheduledFault) covers(elapsed time.Duration) bool {
	return elapsed >= w.From && (w.To == 0 || elapsed < w.To)
}

// validateSchedule checks every window.
func validateSchedule(s []ScheduledFault) error {
	for i, w := range s {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("schedule #%d: %w", i+1, err)
		}
	}
	return nil
}

// window is a schedule entry and whether its Disconnect has fired.
type window struct {
	ScheduledFault
	fired bool
}

// SetSchedule replaces the fault schedule; its windows count from now.
// nil or empty clears it, leaving the base fault.
func (is *Issuer) SetSchedule(s []ScheduledFault) error {
	if err := validateSchedule(s); err != nil {
		return fmt.Errorf("issuer %q: %w", is.cfg.Name, err)
	}
	is.faultMu.Lock()
	is.setScheduleLocked(s)
	is.schedEpoch, is.schedOnStart = is.clock(), false
	is.faultMu.Unlock()
	is.log.Info("issuer fault schedule set", zap.Int("windows", len(s)))
	return nil
}

func (is *Issuer) setScheduleLocked(s []ScheduledFault) {
	is.schedule = make([]window, len(s))
	for i, w := range s {
		is.schedule[i] = window{ScheduledFault: w}
	}
}

// Schedule returns the fault schedule and how long it has been running (0
// before Start for a configured one).
func (is *Issuer) Schedule() ([]ScheduledFault, time.Duration) {
	is.faultMu.Lock()
	defer is.faultMu.Unlock()
	out := make([]ScheduledFault, len(is.schedule))
	for i, w := range is.schedule {
		out[i] = w.ScheduledFault
	}
	var elapsed time.Duration
	if !is.schedEpoch.IsZero() {
		elapsed = is.clock().Sub(is.schedEpoch)
	}
	return out, elapsed
}

// ActiveFault returns the fault in force now: the first schedule window
// covering this instant, else the base fault.
func (is *Issuer) ActiveFault() Fault {
	is.faultMu.Lock()
	defer is.faultMu.Unlock()
	f, _ := is.activeFaultLocked()
	return f
}

// activeFaultLocked returns the fault in force and the index of its
// window (-1: the base fault). The schedule runs once it has an epoch.
func (is *Issuer) activeFaultLocked() (Fault, int) {
	if len(is.schedule) > 0 && !is.schedEpoch.IsZero() {
		elapsed := is.clock().Sub(is.schedEpoch)
		for i, w := range is.schedule {
			if w.covers(elapsed) {
				f := w.Fault
				f.Disconnect = f.Disconnect && !w.fired
				return f, i
			}
		}
	}
	return is.fault, -1
}

// consumeDisconnectLocked clears the Disconnect that just fired.
func (is *Issuer) consumeDisconnectLocked(window int) {
	if window < 0 {
		is.fault.Disconnect = false
		return
	}
	is.schedule[window].fired = true
}

// jsonDuration is a time.Duration as JSON: a string such as "1.5s" (a
// number is read as nanoseconds).
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if nerr := json.Unmarshal(b, &n); nerr != nil {
			return fmt.Errorf("duration %s: want a string such as \"2s\"", b)
		}
		*d = jsonDuration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = jsonDuration(v)
	return nil
}

// strictUnmarshal decodes b into v refusing unknown fields.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type faultJSON struct {
	DropPercent      int          `json:"drop_percent"`
	GarbagePercent   int          `json:"garbage_percent"`
	WrongSTANPercent int          `json:"wrong_stan_percent"`
	LateBy           jsonDuration `json:"late_by"`
	LatePercent      int          `json:"late_percent"`
	Disconnect       bool         `json:"disconnect"`
	ChargeWhenSilent bool         `json:"charge_when_silent"`
}

// MarshalJSON writes f with snake_case keys and late_by as a string.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{
		DropPercent: f.DropPercent, GarbagePercent: f.GarbagePercent, WrongSTANPercent: f.WrongSTANPercent,
		LateBy: jsonDuration(f.LateBy), LatePercent: f.LatePercent,
		Disconnect: f.Disconnect, ChargeWhenSilent: f.ChargeWhenSilent,
	})
}

// UnmarshalJSON reads MarshalJSON's form; unknown keys are errors.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault{
		DropPercent: j.DropPercent, GarbagePercent: j.GarbagePercent, WrongSTANPercent: j.WrongSTANPercent,
		LateBy: time.Duration(j.LateBy), LatePercent: j.LatePercent,
		Disconnect: j.Disconnect, ChargeWhenSilent: j.ChargeWhenSilent,
	}
	return nil
}

type scheduledFaultJSON struct {
	From  jsonDuration `json:"from"`
	To    jsonDuration `json:"to"`
	Fault Fault        `json:"fault"`
}

// MarshalJSON writes w as {"from": "10s", "to": "15s", "fault": {...}}.
func (w ScheduledFault) MarshalJSON() ([]byte, error) {
	return json.Marshal(scheduledFaultJSON{From: jsonDuration(w.From), To: jsonDuration(w.To), Fault: w.Fault})
}

// UnmarshalJSON reads MarshalJSON's form; unknown keys are errors.
func (w *ScheduledFault) UnmarshalJSON(b []byte) error {
	var j scheduledFaultJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	*w = ScheduledFault{From: time.Duration(j.From), To: time.Duration(j.To), Fault: j.Fault}
	return nil
}
