package terminalserver

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/cpurole"
)

// Worker pool defaults: a worker parks this long for its next request
// before it ends, and at most maxParkedWorkers wait at once.
const (
	workerIdle       = 10 * time.Second
	maxParkedWorkers = 1024
)

// request is one inbound request handed to a worker (serveMessage's arguments).
type request struct {
	out  answerer
	msg  *iso8583.Message
	raw  []byte
	link *vanLink
	log  *zap.Logger
}

// workers runs a listener's requests on long-lived goroutines.
//
// The connection library starts a fresh goroutine for every inbound
// message; the pipeline's stage chain is deep, so each such goroutine grew
// its stack (8 KiB, 16, 32: a copy each time) on every request. A worker
// keeps its grown stack from one request to the next. Workers are not a
// limit: a request with no worker parked gets a new one at once, so what
// bounds concurrency is unchanged (the listener's max_in_flight per
// connection and the drain tracker, both in serveMessage), answers on a
// VAN link still go out in any order, and the drain still waits on the
// same counters. A worker that has served parks for its next request up to
// idle (at most max park at once; the last parked is the first reused, so
// the others age out), then ends. Once stopped (the listener closed), a
// parked worker ends at once and none parks again.
type workers struct {
	serve func(request)
	idle  time.Duration
	max   int

	mu sync.Mutex
	// parked are the workers waiting for a request, the last parked last.
	// A worker on it is handed its next request by run, through its own
	// channel; one taken off it by run is sure to get one.
	parked  []*worker
	stopped bool
	stop    chan struct{} // closed by close

	// started counts the workers ever started, live those running.
	started, live atomic.Int64
}

// worker is one parked worker's mailbox (buffered: run never blocks on it).
type worker struct{ next chan request }

func newWorkers(serve func(request)) *workers {
	return &workers{serve: serve, idle: workerIdle, max: maxParkedWorkers, stop: make(chan struct{})}
}

// run serves r on a parked worker, or on a new one when none is parked.
func (w *workers) run(r request) {
	w.mu.Lock()
	if n := len(w.parked); n > 0 {
		wk := w.parked[n-1]
		w.parked[n-1] = nil
		w.parked = w.parked[:n-1]
		w.mu.Unlock()
		wk.next <- r
		return
	}
	w.mu.Unlock()
	w.started.Add(1)
	w.live.Add(1)
	go w.work(r)
}

func (w *workers) work(r request) {
	cpurole.Set(cpurole.Pipeline)
	defer w.live.Add(-1)
	wk := &worker{next: make(chan request, 1)}
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for {
		w.serve(r)
		r = request{} // the served request's connection is not kept alive by a parked worker
		if !w.park(wk) {
			return
		}
		idle.Reset(w.idle)
		select {
		case r = <-wk.next:
			continue
		case <-idle.C:
		case <-w.stop:
		}
		if w.unpark(wk) {
			return
		}
		r = <-wk.next // run took it off parked: its request is on the way
	}
}

// park enters wk in parked, unless max are parked or the pool stopped.
func (w *workers) park(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || len(w.parked) >= w.max {
		return false
	}
	w.parked = append(w.parked, wk)
	return true
}

// unpark takes wk off parked and reports whether it still was on it.
func (w *workers) unpark(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.parked, wk) // the oldest age out first: near the start
	if i < 0 {
		return false
	}
	w.parked = slices.Delete(w.parked, i, i+1)
	return true
}

// parkedCount is the number of workers parked.
func (w *workers) parkedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.parked)
}

// close ends the parked workers at once and keeps any other from
// parking: a request still run afterwards is served on a worker that
// then ends.
func (w *workers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
}
