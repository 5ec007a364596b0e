package drain_test

import (
	"context"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/drain"
)

// TestDrainWaitsForInFlight: a drain refuses new transactions and waits
// until the last one in flight leaves, or gives up when its context ends.
func TestDrainWaitsForInFlight(t *testing.T) {
	var tr drain.Tracker
	if !tr.Enter() || !tr.Enter() {
		t.Fatal("refused before draining")
	}
	tr.Drain()
	if !tr.Draining() || tr.Enter() {
		t.Fatal("took a transaction while draining")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if tr.Wait(short) {
		t.Fatal("drained with two in flight")
	}
	done := make(chan bool, 1)
	go func() { done <- tr.Wait(context.Background()) }()
	tr.Leave()
	tr.Leave()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("Wait gave up without a deadline")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait still waiting after the last transaction left")
	}
	if !tr.Wait(context.Background()) {
		t.Fatal("Wait with nothing in flight")
	}
}
