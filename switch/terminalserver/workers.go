package terminalserver

import (
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"
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
// workerIdle (at most maxParkedWorkers park at once), then ends.
type workers struct {
	serve func(request)
	// jobs is unbuffered: a send succeeds only when a worker is parked.
	jobs   chan request
	parked atomic.Int64
	// started counts the workers ever started.
	started atomic.Int64
	idle    time.Duration
	max     int64
}

func newWorkers(serve func(request)) *workers {
	return &workers{serve: serve, jobs: make(chan request), idle: workerIdle, max: maxParkedWorkers}
}

// run serves r on a parked worker, or on a new one when none is parked.
func (w *workers) run(r request) {
	select {
	case w.jobs <- r:
	default:
		w.started.Add(1)
		go w.work(r)
	}
}

func (w *workers) work(r request) {
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for {
		w.serve(r)
		r = request{} // the served request's connection is not kept alive by a parked worker
		if w.parked.Add(1) > w.max {
			w.parked.Add(-1)
			return
		}
		idle.Reset(w.idle)
		select {
		case r = <-w.jobs:
			w.parked.Add(-1)
		case <-idle.C:
			w.parked.Add(-1)
			return
		}
	}
}
