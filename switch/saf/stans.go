package saf

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// settledCheckEvery is how often an instance looks for give-backs whose
// STAN it holds that were settled elsewhere.
const settledCheckEvery = time.Second

// heldSTAN is a STAN this instance holds for a give-back.
type heldSTAN struct{ route, stan string }

// holds are the give-backs (by SAF item ID) whose STAN this instance
// holds in its route's pool: each item at most once per process (held at
// start, when it is queued as a repeat here, or when its first attempt
// leaves from here).
type holds struct {
	mu    sync.Mutex
	items map[int64]heldSTAN
}

func (h *holds) add(it store.SAFItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.items == nil {
		h.items = map[int64]heldSTAN{}
	}
	h.items[it.ID] = heldSTAN{it.Route, it.STAN}
}

// take forgets item id and reports whether it was held.
func (h *holds) take(id int64) (heldSTAN, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	held, ok := h.items[id]
	delete(h.items, id)
	return held, ok
}

func (h *holds) ids() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]int64, 0, len(h.items))
	for id := range h.items {
		ids = append(ids, id)
	}
	return ids
}

// HoldSTAN owns give-back it's STAN in its route's pool until the item is
// settled by whichever instance: at start (HoldPending), and for a repeat
// queued here (pipeline.Ledger.QueueRepeat).
func (w *Worker) HoldSTAN(it store.SAFItem) {
	if p, ok := w.routes.STANs(it.Route); ok && it.STAN != "" {
		p.Hold(it.STAN)
		w.held.add(it)
	}
}

// releaseSTAN lets the route reuse a settled give-back's STAN, if this
// instance holds it.
func (w *Worker) releaseSTAN(id int64) {
	held, ok := w.held.take(id)
	if !ok {
		return
	}
	if p, ok := w.routes.STANs(held.route); ok {
		p.Release(held.stan)
	}
}

// runReleases lets go, every settledCheckEvery until ctx ends, the STANs
// of give-backs settled by another instance: acknowledged after it
// claimed them, or resolved by an operator through it (each instance's
// pool is its own).
func (w *Worker) runReleases(ctx context.Context) {
	tick := time.NewTicker(settledCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := w.releaseSettled(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("looking for give-backs settled by another instance", zap.Error(err))
		}
	}
}

// releaseSettled releases the STAN of every held item no longer pending
// or in review.
func (w *Worker) releaseSettled(ctx context.Context) error {
	ids := w.held.ids()
	if len(ids) == 0 {
		return nil
	}
	items, err := w.unsettled(ctx)
	if err != nil {
		return err
	}
	unsettled := map[int64]bool{}
	for _, it := range items {
		unsettled[it.ID] = true
	}
	for _, id := range ids {
		if !unsettled[id] {
			w.releaseSTAN(id)
		}
	}
	return nil
}
