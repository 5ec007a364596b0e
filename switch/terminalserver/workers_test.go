package terminalserver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
)

func TestWorkers(t *testing.T) {
	tests := []struct {
		name string
		// concurrent requests per round, rounds run one after the other
		concurrent, rounds int
		max                int
		wantStarted        int64
	}{
		{name: "requests one after the other reuse one worker", concurrent: 1, rounds: 5, max: 8, wantStarted: 1},
		{name: "a burst gets a worker per request, the next burst reuses them", concurrent: 4, rounds: 3, max: 8, wantStarted: 4},
		{name: "no more than max park: the others end", concurrent: 4, rounds: 2, max: 2, wantStarted: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			served := map[*iso8583.Message]bool{}
			gate := make(chan struct{})
			var inside, done sync.WaitGroup
			w := newWorkers(func(r request) {
				inside.Done()
				<-gate // every request of a round is in a worker at once: none waits for another
				mu.Lock()
				served[r.msg] = true
				mu.Unlock()
				done.Done()
			})
			w.max = tt.max
			for round := 0; round < tt.rounds; round++ {
				inside.Add(tt.concurrent)
				done.Add(tt.concurrent)
				for i := 0; i < tt.concurrent; i++ {
					w.run(request{msg: &iso8583.Message{}})
				}
				inside.Wait()
				for i := 0; i < tt.concurrent; i++ {
					gate <- struct{}{}
				}
				done.Wait() // every request of the round served
				// A parked worker is sure to take the next request.
				want := min(tt.concurrent, tt.max)
				waitFor(t, "workers to park", func() bool { return w.parkedCount() == want })
			}
			if got := w.started.Load(); got != tt.wantStarted {
				t.Errorf("started %d workers, want %d", got, tt.wantStarted)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(served) != tt.concurrent*tt.rounds {
				t.Errorf("served %d requests, want %d", len(served), tt.concurrent*tt.rounds)
			}
		})
	}
}

func TestWorkersEndWhenIdle(t *testing.T) {
	w := newWorkers(func(request) {})
	w.idle = 20 * time.Millisecond
	w.run(request{})
	waitFor(t, "the worker to park", func() bool { return w.parkedCount() == 1 })
	waitFor(t, "the idle worker to end", func() bool { return w.live.Load() == 0 })
	w.run(request{}) // none parked: a new worker
	if got := w.started.Load(); got != 2 {
		t.Errorf("started %d workers, want 2", got)
	}
}

// TestWorkersStop: once stopped, parked workers end at once (not after
// their idle time), and a request still run is served by a worker that
// then ends.
func TestWorkersStop(t *testing.T) {
	const parked = 3
	var inside, done sync.WaitGroup
	gate := make(chan struct{})
	w := newWorkers(func(request) { inside.Done(); <-gate; done.Done() })
	w.idle = time.Hour
	inside.Add(parked)
	done.Add(parked)
	for range parked {
		w.run(request{})
	}
	inside.Wait()
	close(gate)
	done.Wait()
	waitFor(t, "the workers to park", func() bool { return w.parkedCount() == parked })
	w.close()
	waitFor(t, "the parked workers to end", func() bool { return w.live.Load() == 0 })
	inside.Add(1)
	done.Add(1)
	w.run(request{})
	done.Wait()
	waitFor(t, "the worker serving after the stop to end", func() bool { return w.live.Load() == 0 })
}

// TestListenerClosedEndsWorkers: closing a listener (the shutdown's
// CloseAll, a reload's Retire) ends its parked workers at once.
func TestListenerClosedEndsWorkers(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close func(*Listener, context.Context)
	}{
		{"shutdown", func(l *Listener, ctx context.Context) { l.StopAccepting(); l.CloseAll(ctx) }},
		{"removed by a reload", (*Listener).Retire},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestListener(t, vanConfig, approveAll)
			l.workers.idle = time.Hour // only the stop can end them
			if err := l.Listen(); err != nil {
				t.Fatal(err)
			}
			signedOnVAN(t, l) // a request served: its worker parks
			waitFor(t, "the worker to park", func() bool { return l.workers.parkedCount() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tt.close(l, ctx)
			waitFor(t, "the listener's workers to end", func() bool { return l.workers.live.Load() == 0 })
		})
	}
}

// deepStack uses about kib KiB of stack, as the pipeline's stage chain does.
//
//go:noinline
func deepStack(kib int) byte {
	var frame [1024]byte
	frame[kib%len(frame)] = byte(kib)
	if kib == 0 {
		return frame[0]
	}
	return deepStack(kib-1) + frame[kib%len(frame)]
}

// BenchmarkInboundRequest: a request needing a 24 KiB stack served on a
// goroutine of its own (what the connection library does) or on a worker.
func BenchmarkInboundRequest(b *testing.B) {
	for _, tt := range []struct {
		name string
		run  func(*workers, request)
	}{
		{"goroutine per request", func(w *workers, r request) { go w.serve(r) }},
		{"workers", (*workers).run},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var wg sync.WaitGroup
			w := newWorkers(func(request) { deepStack(24); wg.Done() })
			for b.Loop() {
				wg.Add(1)
				tt.run(w, request{})
				wg.Wait()
			}
		})
	}
}
