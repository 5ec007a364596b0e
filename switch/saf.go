package payswitch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/internal/promreg"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/store"
)

// safMetrics count the store-and-forward queue's work.
type safMetrics struct {
	attempts *prometheus.CounterVec
	review   prometheus.Counter
}

func newSAFMetrics(reg prometheus.Registerer, q store.Queue, desk store.SAFDesk) *safMetrics {
	m := &safMetrics{
		attempts: promreg.CounterVec(reg, "saf_attempts_total",
			"Store-and-forward reversal attempts, by route and result (acknowledged, retry, review).", "route", "result"),
		review: promreg.Counter(reg, "saf_manual_review_total",
			"Reversals that expired unacknowledged and wait for manual review."),
	}
	reg.MustRegister(newSAFStateCollector(desk)) // opsmetrics.go
	promreg.GaugeFunc(reg, "saf_depth", "Reversals waiting in the store-and-forward queue.", func() float64 {
		n, _ := q.Depth(context.Background())
		return float64(n)
	})
	return m
}

// runSAF runs one store-and-forward worker per route until ctx ends, so a
// silent issuer delays only its own give-backs. Items survive restarts in
// the journal; the STANs they will repeat stay owned by their routes.
func (s *Switch) runSAF(ctx context.Context) {
	defer s.safDone.Done()
	var wg sync.WaitGroup
	for name := range s.linkMap() {
		s.safSeries(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runRouteSAF(ctx, name)
		}()
	}
	wg.Wait()
}

// safSeries creates the give-back attempt series of a route at zero:
// alerts have series from the start (and from a reload that adds it).
func (s *Switch) safSeries(route string) {
	for _, result := range []string{"acknowledged", "retry", "review"} {
		s.safMetrics.attempts.WithLabelValues(route, result)
	}
}

// holdPendingSTANs keeps the STAN of every unsettled give-back (pending,
// or in manual review: an operator may send it again) owned by its route
// (at start, before any request is sent).
func (s *Switch) holdPendingSTANs(ctx context.Context) error {
	for _, state := range []string{store.SAFPending, store.SAFReview} {
		items, err := s.store.Queue().List(ctx, state)
		if err != nil {
			return err
		}
		for _, it := range items {
			if l, ok := s.linkMap()[it.Route]; ok && it.STAN != "" {
				l.Hold(it.STAN)
			}
		}
	}
	return nil
}

// runRouteSAF sends route's due give-backs, at most
// journal.saf_workers_per_route at once: 0420 first, 0421 repeats (a
// refund by reference repeats as 0200) with doubling back-off counted from
// the end of each attempt, until the issuer answers with one of the
// route's settle codes, or manual review once the item expires. Items are
// claimed from the store a batch of saf_workers_per_route at a time, with
// a lease of store.lease plus the route's timeout (safClaimLease): this
// instance's own items, and those of an instance whose lease lapsed.
func (s *Switch) runRouteSAF(ctx context.Context, route string) {
	tick := time.NewTicker(s.cfg.Journal.SAFInterval)
	defer tick.Stop()
	batch := s.cfg.Journal.SAFWorkersPerRoute
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A full batch may leave more due: claim again without waiting.
		for ctx.Err() == nil {
			items, err := s.store.Queue().Claim(ctx, route, time.Now(), s.safClaimLease(route), batch)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("claiming SAF items", zap.String("route", route), zap.Error(err))
				}
				break
			}
			var wg sync.WaitGroup
			for _, it := range items {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.attemptReversal(ctx, it)
				}()
			}
			wg.Wait()
			if len(items) < batch {
				break
			}
		}
	}
}

// safClaimLease is how long a claimed SAF item stays this instance's:
// store.lease plus route's timeout, so one attempt ends inside its claim.
func (s *Switch) safClaimLease(route string) time.Duration {
	lease := s.cfg.Store.Lease
	for _, r := range s.routeList() {
		if r.Name == route {
			lease += r.Timeout
		}
	}
	return lease
}

func (s *Switch) attemptReversal(ctx context.Context, it store.SAFItem) {
	log := s.log.With(zap.Int64("txn", it.TxnID), zap.String("route", it.Route), zap.String("kind", it.Kind), zap.Int("attempt", it.Attempts+1))
	if now := time.Now(); now.After(it.ExpiresAt) {
		s.safMetrics.review.Inc()
		s.safMetrics.attempts.WithLabelValues(it.Route, "review").Inc()
		log.Error("reversal expired unacknowledged: MANUAL REVIEW", zap.Int64("amount", it.Amount))
		// Its STAN stays owned: an operator may retry it (the same DE 11,
		// DE 7 and DE 37); it is let go when the item is resolved.
		_ = s.store.Queue().Result(ctx, it, store.SAFReview, now, "expired unacknowledged")
		return
	}
	err := s.sendReversal(ctx, &it)
	end := time.Now()
	if err == nil {
		s.safMetrics.attempts.WithLabelValues(it.Route, "acknowledged").Inc()
		log.Info("reversal acknowledged", zap.Int64("amount", it.Amount))
		if rerr := s.store.Queue().Result(ctx, it, store.SAFDone, end, ""); rerr != nil {
			log.Error("recording acknowledged reversal", zap.Error(rerr))
			return
		}
		s.releaseSTAN(it)
		return
	}
	backoff := min(time.Second<<min(it.Attempts, 16), s.cfg.Journal.RetryMax)
	s.safMetrics.attempts.WithLabelValues(it.Route, "retry").Inc()
	if ctx.Err() != nil {
		// The switch is stopping, not the issuer failing: no warning. The
		// attempt may have left, so it is recorded all the same (the next
		// one, after the restart, is a repeat), on a context of its own.
		log.Info("reversal attempt cut short by shutdown, will repeat", zap.String("error", pan.Scrub(err.Error())))
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.store.Queue().Result(rctx, it, store.SAFPending, end.Add(backoff), "cut short by shutdown")
		return
	}
	log.Warn("reversal not acknowledged, will repeat", zap.Duration("in", backoff), zap.String("error", pan.Scrub(err.Error())))
	_ = s.store.Queue().Result(ctx, it, store.SAFPending, end.Add(backoff), pan.Scrub(err.Error()))
}

// retrySAF is an operator's "retry now" (admin API, console): the item
// keeps the STAN it held through manual review.
func (s *Switch) retrySAF(ctx context.Context, id int64, who string) (store.SAFItem, error) {
	return s.store.SAFDesk().RetryNow(ctx, id, who, s.cfg.Journal.ReversalExpiry)
}

// resolveSAF is an operator closing an item in review (settled outside
// the switch): its STAN is free again.
func (s *Switch) resolveSAF(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	it, err := s.store.SAFDesk().Resolve(ctx, id, who, reason)
	if err == nil {
		s.releaseSTAN(it)
	}
	return it, err
}

// releaseSTAN lets the route reuse a settled give-back's STAN.
func (s *Switch) releaseSTAN(it store.SAFItem) {
	if l, ok := s.linkMap()[it.Route]; ok && it.STAN != "" {
		l.Release(it.STAN)
	}
}

// sendReversal sends one attempt and returns nil when the issuer settled
// it: the response MTI of the request with DE 11 (and DE 7 / DE 37 where
// present) of this give-back, and a DE 39 among the route's settle codes.
// It goes down the queued give-back stage list, the issuer leg every
// request to an issuer takes: the first attempt's DE 11 and DE 7 are
// journaled before it leaves and fixed for every repeat.
func (s *Switch) sendReversal(ctx context.Context, it *store.SAFItem) error {
	txn, err := s.store.Lookup().Get(ctx, it.TxnID)
	if err != nil {
		return fmt.Errorf("reading transaction: %w", err)
	}
	orig := txn
	if txn.OriginalID > 0 {
		// A queued merchant cancel: the sale it gives back carries the PAN.
		if orig, err = s.store.Lookup().Get(ctx, txn.OriginalID); err != nil {
			return fmt.Errorf("reading original: %w", err)
		}
	}
	rt, ok := issuerRoutes{s}.Route(it.Route)
	if !ok {
		return fmt.Errorf("route %s is not configured", it.Route)
	}
	realPAN, err := s.hsm.DecryptPAN(ctx, hsm.EncryptedPAN{Key: hsm.KeyRef{Label: orig.PANKey, Version: orig.PANKeyVersion}, Ciphertext: orig.PANCiphertext})
	if err != nil {
		return fmt.Errorf("decrypting PAN: %w", err)
	}
	mti := specs.MTIReversalAdvice
	if it.Attempts > 0 {
		mti = specs.MTIReversalRepeat
	}
	req, err := pipeline.ReversalMessage(rt.Link, orig, realPAN, it.Kind, mti, it.Amount, time.Now())
	if err != nil {
		return err
	}
	t := &pipeline.Txn{QueuedID: it.ID, Route: it.Route, Issuer: rt, IssuerRequest: req}
	t.MTI, _ = req.GetMTI()
	if it.STAN != "" {
		t.Repeat = &pipeline.IssuerIDs{STAN: it.STAN, TxTime: it.TxTime}
	}
	err = s.dispatch.Handle(ctx, t)
	if it.STAN == "" && t.RequestRecorded {
		it.STAN, _ = req.GetString(specs.STAN)
		it.TxTime, _ = req.GetString(specs.TransmissionDateTime)
	}
	return err
}

// recoverInFlight runs at start, before any request is taken: it
// heartbeats, takes over (and recovers) the work of instances whose
// heartbeat lapsed, then recovers every transaction this instance's
// previous run left "forwarded" when it died between sending it and
// journaling the answer (recoverRow). A live peer's rows are not touched.
func (s *Switch) recoverInFlight(ctx context.Context) error {
	now := time.Now()
	if err := s.heartbeat(ctx, now); err != nil {
		return err
	}
	if err := s.takeOverLapsed(ctx, now); err != nil {
		return err
	}
	left, err := s.ownInFlight(ctx)
	if err != nil {
		return err
	}
	for _, t := range left {
		if err := s.recoverRow(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// recoverRow recovers one transaction left "forwarded" with nobody to
// journal its answer (after a restart, or found by the in-flight sweep):
// the issuer may have approved a sale while the terminal never heard, so
// it is timed out and a reversal queued; a cancel or refund still stands
// and its repeat is queued.
func (s *Switch) recoverRow(ctx context.Context, t store.Txn) error {
	if t.OriginalID > 0 {
		// A merchant cancel or refund: it stands if it may have left (its
		// repeat queued), else its amount goes back to the sale.
		queued, err := s.ledger.RecoverCancel(ctx, t)
		if err != nil {
			return err
		}
		s.log.Warn("cancel left in flight recovered", zap.Int64("txn", t.ID), zap.String("route", t.Route), zap.Bool("repeat_queued", queued))
		return nil
	}
	h := &pipeline.Held{Row: t, Reverse: true, Event: "found left in flight: reversal queued"}
	if err := s.ledger.SettleHeld(ctx, h); err != nil {
		if h.ReversalQueued {
			// Keep it so it is settled once the journal takes writes,
			// without queueing its reversal twice.
			s.guard.Hold(h, err)
		}
		return err
	}
	s.log.Warn("transaction left in flight recovered: reversal queued", zap.Int64("txn", t.ID), zap.String("route", t.Route))
	return nil
}

// onLateAnswer journals an issuer answer that came after its timeout. The
// sale's reversal was queued when it timed out, so a late approval is
// reversed by the SAF without anything more to do here.
func (s *Switch) onLateAnswer(route string, msg *iso8583.Message) {
	stan, _ := msg.GetString(specs.STAN)
	rc, _ := msg.GetString(specs.ResponseCode)
	t, err := s.store.Lookup().FindByIssuerSTAN(context.Background(), route, stan)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.Warn("late answer: journal look-up", zap.Error(err))
		return
	}
	detail := "late issuer answer " + rc
	if codes.Code(rc).IsApproved() && t.State == store.TimedOut {
		detail += ": late approval, reversal already queued"
	}
	_ = s.store.Sales().Event(context.Background(), t.ID, "late_answer", strings.TrimSpace(detail))
}
