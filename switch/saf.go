package payswitch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/journal"
	"github.com/kbpay/switch/switch/pan"
	"github.com/kbpay/switch/switch/pipeline"
)

// safMetrics count the store-and-forward queue's work.
type safMetrics struct {
	attempts *prometheus.CounterVec
	review   prometheus.Counter
}

func newSAFMetrics(reg prometheus.Registerer, j *journal.Journal) *safMetrics {
	m := &safMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switch", Name: "saf_attempts_total",
			Help: "Store-and-forward reversal attempts, by route and result (acknowledged, retry, review).",
		}, []string{"route", "result"}),
		review: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "switch", Name: "saf_manual_review_total",
			Help: "Reversals that expired unacknowledged and wait for manual review.",
		}),
	}
	reg.MustRegister(m.attempts, m.review, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "switch", Name: "saf_depth", Help: "Reversals waiting in the store-and-forward queue.",
	}, func() float64 {
		n, _ := j.SAFDepth(context.Background())
		return float64(n)
	}))
	return m
}

// runSAF runs one store-and-forward worker per route until ctx ends, so a
// silent issuer delays only its own give-backs. Items survive restarts in
// the journal; the STANs they will repeat stay owned by their routes.
func (s *Switch) runSAF(ctx context.Context) {
	defer s.safDone.Done()
	var wg sync.WaitGroup
	for name := range s.linkMap() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runRouteSAF(ctx, name)
		}()
	}
	wg.Wait()
}

// holdPendingSTANs keeps the STAN of every pending give-back owned by its
// route (at start, before any request is sent).
func (s *Switch) holdPendingSTANs(ctx context.Context) error {
	items, err := s.journal.SAFList(ctx, journal.SAFPending)
	if err != nil {
		return err
	}
	for _, it := range items {
		if l, ok := s.linkMap()[it.Route]; ok && it.STAN != "" {
			l.Hold(it.STAN)
		}
	}
	return nil
}

// runRouteSAF sends route's due give-backs, at most
// journal.saf_workers_per_route at once: 0420 first, 0421 repeats (a
// refund by reference repeats as 0200) with doubling back-off counted from
// the end of each attempt, until the issuer answers with one of the
// route's settle codes, or manual review once the item expires.
func (s *Switch) runRouteSAF(ctx context.Context, route string) {
	tick := time.NewTicker(s.cfg.Journal.SAFInterval)
	defer tick.Stop()
	sem := make(chan struct{}, s.cfg.Journal.SAFWorkersPerRoute)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		items, err := s.journal.DueOn(ctx, route, time.Now(), 64)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reading SAF queue", zap.String("route", route), zap.Error(err))
			}
			continue
		}
		var wg sync.WaitGroup
		for _, it := range items {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				s.attemptReversal(ctx, it)
			}()
		}
		wg.Wait()
	}
}

func (s *Switch) attemptReversal(ctx context.Context, it journal.SAFItem) {
	log := s.log.With(zap.Int64("txn", it.TxnID), zap.String("route", it.Route), zap.String("kind", it.Kind), zap.Int("attempt", it.Attempts+1))
	if now := time.Now(); now.After(it.ExpiresAt) {
		s.safMetrics.review.Inc()
		s.safMetrics.attempts.WithLabelValues(it.Route, "review").Inc()
		log.Error("reversal expired unacknowledged: MANUAL REVIEW", zap.Int64("amount", it.Amount))
		if err := s.journal.SAFResult(ctx, it, journal.SAFReview, now, "expired unacknowledged"); err == nil {
			s.releaseSTAN(it)
		}
		return
	}
	err := s.sendReversal(ctx, &it)
	end := time.Now()
	if err == nil {
		s.safMetrics.attempts.WithLabelValues(it.Route, "acknowledged").Inc()
		log.Info("reversal acknowledged", zap.Int64("amount", it.Amount))
		if rerr := s.journal.SAFResult(ctx, it, journal.SAFDone, end, ""); rerr != nil {
			log.Error("recording acknowledged reversal", zap.Error(rerr))
			return
		}
		s.releaseSTAN(it)
		return
	}
	backoff := min(time.Second<<min(it.Attempts, 16), s.cfg.Journal.RetryMax)
	s.safMetrics.attempts.WithLabelValues(it.Route, "retry").Inc()
	log.Warn("reversal not acknowledged, will repeat", zap.Duration("in", backoff), zap.String("error", pan.Scrub(err.Error())))
	_ = s.journal.SAFResult(ctx, it, journal.SAFPending, end.Add(backoff), pan.Scrub(err.Error()))
}

// releaseSTAN lets the route reuse a settled give-back's STAN.
func (s *Switch) releaseSTAN(it journal.SAFItem) {
	if l, ok := s.linkMap()[it.Route]; ok && it.STAN != "" {
		l.Release(it.STAN)
	}
}

// sendReversal sends one attempt and returns nil when the issuer settled
// it: the response MTI of the request with DE 11 (and DE 7 / DE 37 where
// present) of this give-back, and a DE 39 among the route's settle codes.
func (s *Switch) sendReversal(ctx context.Context, it *journal.SAFItem) error {
	txn, err := s.journal.Get(ctx, it.TxnID)
	if err != nil {
		return fmt.Errorf("reading transaction: %w", err)
	}
	orig := txn
	if txn.OriginalID > 0 {
		// A queued merchant cancel: the sale it gives back carries the PAN.
		if orig, err = s.journal.Get(ctx, txn.OriginalID); err != nil {
			return fmt.Errorf("reading original: %w", err)
		}
	}
	link, ok := s.linkMap()[it.Route]
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
	req, err := pipeline.ReversalMessage(link, orig, realPAN, it.Kind, mti, it.Amount, time.Now())
	if err != nil {
		return err
	}
	if it.STAN == "" {
		// First attempt: fix DE 11 and DE 7 for every repeat, durably, and
		// keep the STAN owned until the item is settled.
		if err := link.Assign(req); err != nil {
			return err
		}
		stan, _ := req.GetString(specs.STAN)
		tt, _ := req.GetString(specs.TransmissionDateTime)
		if err := s.journal.SAFAssign(ctx, it.ID, stan, tt); err != nil {
			link.Abandon(req)
			return err
		}
		it.STAN, it.TxTime = stan, tt
		link.Hold(stan)
	} else {
		if err := errors.Join(req.Field(specs.STAN, it.STAN), req.Field(specs.TransmissionDateTime, it.TxTime)); err != nil {
			return fmt.Errorf("setting the first attempt's DE 11 and DE 7: %w", err)
		}
		// Exchange ends one ownership of the STAN; the item's own hold
		// stays until it is settled.
		link.Hold(it.STAN)
	}
	resp, err := link.Exchange(ctx, req)
	if err != nil {
		return err
	}
	return s.settles(it.Route, resp)
}

// settles reports whether an answer settles a give-back on route.
func (s *Switch) settles(route string, resp *iso8583.Message) error {
	rc, _ := resp.GetString(specs.ResponseCode)
	for _, r := range s.routeList() {
		if r.Name == route && slices.Contains(r.SettleCodes, rc) {
			return nil
		}
	}
	return fmt.Errorf("issuer answered %q, not a settle code of route %s", rc, route)
}

// recoverInFlight recovers every transaction left "forwarded" by a
// previous run that died between sending it and journaling the answer
// (recoverRow).
func (s *Switch) recoverInFlight(ctx context.Context) error {
	left, err := s.journal.InState(ctx, journal.Forwarded)
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
func (s *Switch) recoverRow(ctx context.Context, t journal.Txn) error {
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
	t, err := s.journal.FindByIssuerSTAN(context.Background(), route, stan)
	if errors.Is(err, journal.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.Warn("late answer: journal look-up", zap.Error(err))
		return
	}
	detail := "late issuer answer " + rc
	if rc == "00" && t.State == journal.TimedOut {
		detail += ": late approval, reversal already queued"
	}
	_ = s.journal.Event(context.Background(), t.ID, "late_answer", strings.TrimSpace(detail))
}
