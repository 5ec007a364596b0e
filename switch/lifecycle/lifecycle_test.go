package lifecycle_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/switch/lifecycle"
)

// TestUndoClosesNewestFirstAndUnregisters: Undo closes every component
// once, newest first, names the closers that failed, and takes off the
// registry what was registered through the list, nothing else.
func TestUndoClosesNewestFirstAndUnregisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	own := prometheus.NewCounter(prometheus.CounterOpts{Name: "own_total", Help: "registered by the caller"})
	reg.MustRegister(own)
	c := lifecycle.New(reg, nil)
	var closed []string
	for _, name := range []string{"lock", "store", "hsm"} {
		c.Opened(name, func() error {
			closed = append(closed, name)
			if name == "store" {
				return errors.New("disk gone")
			}
			return nil
		})
	}
	c.Registerer().MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total", Help: "a"}),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "b", Help: "b"}))
	if err := c.Registerer().Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total", Help: "a"})); err == nil {
		t.Fatal("a duplicate registered")
	}
	if got := c.Registerer().Registered(); got != 2 {
		t.Fatalf("registered %d, want 2", got)
	}

	err := c.Undo()
	if want := []string{"hsm", "store", "lock"}; !reflect.DeepEqual(closed, want) {
		t.Errorf("closed %v, want %v", closed, want)
	}
	if err == nil || err.Error() != "closing store: disk gone" {
		t.Errorf("Undo: %v", err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != "own_total" {
		t.Errorf("after Undo the registry holds %d families, want only the caller's own_total", len(fams))
	}
	if err := c.Undo(); err != nil || len(closed) != 3 {
		t.Errorf("a second Undo closed again: %v, %v", err, closed)
	}
}

// TestStepFault: a fault fails the step it names, wrapped with the step.
func TestStepFault(t *testing.T) {
	boom := errors.New("injected")
	c := lifecycle.New(prometheus.NewRegistry(), func(step string) error {
		if step == "open the store" {
			return boom
		}
		return nil
	})
	if err := c.Step("lock the data folder"); err != nil {
		t.Errorf("unfaulted step: %v", err)
	}
	if err := c.Step("open the store"); !errors.Is(err, boom) || err.Error() != "open the store: injected" {
		t.Errorf("faulted step: %v", err)
	}
	if err := lifecycle.New(prometheus.NewRegistry(), nil).Step("x"); err != nil {
		t.Errorf("no fault: %v", err)
	}
}

// TestUnregisterForgets: a collector unregistered by hand is not
// unregistered again (a collector registered anew in its place stays).
func TestUnregisterForgets(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := lifecycle.Track(reg)
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total", Help: "a"})
	r.MustRegister(a)
	if !r.Unregister(a) || r.Registered() != 0 {
		t.Fatal("Unregister")
	}
	reg.MustRegister(a)
	r.UnregisterAll()
	if fams, _ := reg.Gather(); len(fams) != 1 {
		t.Errorf("UnregisterAll took a collector it no longer owned")
	}
}
