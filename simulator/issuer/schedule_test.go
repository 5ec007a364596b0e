package issuer

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/specs"
)

// fakeClock is the schedule's clock in tests: it moves only when told.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time { return fixedNow.Add(time.Duration(c.offset.Load())) }

// set moves the clock to d after its start.
func (c *fakeClock) set(d time.Duration) { c.offset.Store(int64(d)) }

// newScheduledIssuer is newIssuer with the fake clock installed before
// Start.
func newScheduledIssuer(t *testing.T, clk *fakeClock, mutate func(*Config)) *Issuer {
	t.Helper()
	cfg := Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"}, Seed: 1}
	if mutate != nil {
		mutate(&cfg)
	}
	is, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	is.now = func() time.Time { return fixedNow }
	is.clock = clk.now
	if err := is.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { is.Close() })
	return is
}

// "silent from 10s to 15s, 20% garbage from 30s to 40s".
var fieldSchedule = []ScheduledFault{
	{From: 10 * time.Second, To: 15 * time.Second, Fault: Fault{DropPercent: 100}},
	{From: 30 * time.Second, To: 40 * time.Second, Fault: Fault{GarbagePercent: 20}},
	{From: 35 * time.Second, To: 50 * time.Second, Fault: Fault{LateBy: time.Second}}, // overlaps: the first window wins
	{From: time.Minute, Fault: Fault{WrongSTANPercent: 5}},                            // no end
}

func TestScheduleWindowsSwitchFaults(t *testing.T) {
	clk := &fakeClock{}
	base := Fault{LateBy: 10 * time.Millisecond}
	is := newScheduledIssuer(t, clk, func(c *Config) { c.Fault = base })
	clk.set(100 * time.Second) // SetSchedule counts from the call, not from Start
	if err := is.SetSchedule(fieldSchedule); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   time.Duration
		want Fault
	}{
		{0, base},
		{10*time.Second - 1, base},
		{10 * time.Second, Fault{DropPercent: 100}},
		{15*time.Second - 1, Fault{DropPercent: 100}},
		{15 * time.Second, base},
		{30 * time.Second, Fault{GarbagePercent: 20}},
		{39 * time.Second, Fault{GarbagePercent: 20}},
		{40 * time.Second, Fault{LateBy: time.Second}},
		{50 * time.Second, base},
		{time.Minute, Fault{WrongSTANPercent: 5}},
		{time.Hour, Fault{WrongSTANPercent: 5}},
	}
	for _, tt := range tests {
		clk.set(100*time.Second + tt.at)
		if got := is.ActiveFault(); got != tt.want {
			t.Errorf("at %s: active fault %+v, want %+v", tt.at, got, tt.want)
		}
	}
	if is.Fault() != base {
		t.Errorf("base fault %+v changed", is.Fault())
	}
	sched, elapsed := is.Schedule()
	if !reflect.DeepEqual(sched, fieldSchedule) || elapsed != time.Hour {
		t.Errorf("Schedule() = %+v, %s", sched, elapsed)
	}
	if err := is.SetSchedule(nil); err != nil || is.ActiveFault() != base {
		t.Errorf("cleared schedule: %v, active %+v", err, is.ActiveFault())
	}
}

// End to end with the fake clock: the issuer is silent in the window,
// answers after it, breaks the link with garbage in the next.
func TestScheduleOnTheWire(t *testing.T) {
	clk := &fakeClock{}
	cardA := card("9410")
	is := newScheduledIssuer(t, clk, func(c *Config) {
		c.Schedule = []ScheduledFault{
			{From: 10 * time.Second, To: 15 * time.Second, Fault: Fault{DropPercent: 100}},
			{From: 30 * time.Second, To: 40 * time.Second, Fault: Fault{GarbagePercent: 100}},
		}
	})
	c := dial(t, is)
	answered := func(c *connection.Connection) error {
		_, err := c.Send(purchase(t, "0200", cardA, "100", ""), connection.SendTimeout(300*time.Millisecond))
		return err
	}
	if err := answered(c); err != nil {
		t.Fatalf("at 0s: %v", err)
	}
	clk.set(12 * time.Second)
	if err := answered(c); !errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("at 12s: err %v, want a timeout (silent window)", err)
	}
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtEcho)), specs.ResponseCode); rc != "00" {
		t.Errorf("echo in the silent window: DE 39 %q", rc)
	}
	clk.set(15 * time.Second)
	if err := answered(c); err != nil {
		t.Fatalf("at 15s: %v", err)
	}
	clk.set(35 * time.Second)
	if err := answered(c); err == nil || errors.Is(err, connection.ErrSendTimeout) {
		t.Fatalf("at 35s: err %v, want the link broken by garbage", err)
	}
	clk.set(40 * time.Second)
	if err := answered(dial(t, is)); err != nil {
		t.Fatalf("at 40s: %v", err)
	}
	// Dropped in the silent window: not applied; garbage: applied.
	if b := is.Balance(cardA); b != DefaultOpenToBuy-4*100 {
		t.Errorf("balance %d, want 4 purchases charged", b)
	}
}

// A configured schedule counts from Start; a window's Disconnect fires
// once per window.
func TestScheduleFromStartAndDisconnectPerWindow(t *testing.T) {
	sched := []ScheduledFault{
		{From: 0, To: 10 * time.Second, Fault: Fault{Disconnect: true}},
		{From: 20 * time.Second, To: 30 * time.Second, Fault: Fault{Disconnect: true}},
	}
	is, err := New(Config{Name: "a", Addr: "127.0.0.1:0", BINs: []string{"9410"}, Schedule: sched}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	clk.set(time.Hour)
	is.clock = clk.now
	if f := is.ActiveFault(); f != (Fault{}) {
		t.Errorf("before Start: active %+v", f)
	}
	if err := is.Start(); err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	steps := []struct {
		at         time.Duration
		financial  bool
		disconnect bool
	}{
		{0, false, false}, // reversals and 0800 do not consume it
		{0, true, true},
		{5 * time.Second, true, false},
		{15 * time.Second, true, false},
		{20 * time.Second, true, true},
		{29 * time.Second, true, false},
	}
	for _, s := range steps {
		clk.set(time.Hour + s.at)
		if d := is.faultFor(s.financial); d.disconnect != s.disconnect {
			t.Errorf("at %s (financial %v): disconnect %v", s.at, s.financial, d.disconnect)
		}
	}
	if f := is.ActiveFault(); f.Disconnect {
		t.Error("ActiveFault shows a Disconnect that fired")
	}
}

func TestScheduleValidateAndJSON(t *testing.T) {
	is := newIssuer(t, nil, nil)
	bad := []struct {
		w       ScheduledFault
		wantErr string
	}{
		{ScheduledFault{From: -time.Second, To: time.Second}, "0 <= from < to"},
		{ScheduledFault{From: 2 * time.Second, To: time.Second}, "0 <= from < to"},
		{ScheduledFault{From: time.Second, To: time.Second}, "0 <= from < to"},
		{ScheduledFault{To: time.Second, Fault: Fault{DropPercent: 60, GarbagePercent: 60}}, "add up to 120"},
	}
	for _, tt := range bad {
		err := is.SetSchedule([]ScheduledFault{{To: time.Second}, tt.w})
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "schedule #2") {
			t.Errorf("%+v: error %v, want %q", tt.w, err, tt.wantErr)
		}
	}
	if s, _ := is.Schedule(); len(s) != 0 {
		t.Errorf("a rejected schedule was kept: %+v", s)
	}

	b, err := json.Marshal(fieldSchedule[:2])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"from":"10s","to":"15s","fault":{"drop_percent":100,`; !strings.HasPrefix(string(b), "["+want) {
		t.Errorf("JSON %s, want it to start [%s", b, want)
	}
	var back []ScheduledFault
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, fieldSchedule[:2]) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`[{"from": 1000000000, "to": "2s", "fault": {"late_by": "1.5s"}}]`), &back); err != nil ||
		back[0].From != time.Second || back[0].Fault.LateBy != 1500*time.Millisecond {
		t.Errorf("numeric from: %+v, %v", back, err)
	}
	for _, in := range []string{
		`[{"from": "1s", "until": "2s"}]`,
		`[{"from": "1s", "fault": {"drop": 5}}]`,
		`[{"from": "soon"}]`,
		`[{"from": true}]`,
	} {
		if err := json.Unmarshal([]byte(in), &back); err == nil {
			t.Errorf("%s decoded", in)
		}
	}
}
