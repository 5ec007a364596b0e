package payswitch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/journal"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/upstream"
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

// runSAF sends due reversals until ctx ends: 0420 first, 0421 repeats with
// doubling back-off until the issuer acknowledges (0430), or manual review
// once the item expires. Items survive restarts in the journal.
func (s *Switch) runSAF(ctx context.Context) {
	defer s.safDone.Done()
	tick := time.NewTicker(s.cfg.Journal.SAFInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		items, err := s.journal.Due(ctx, time.Now(), 64)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reading SAF queue", zap.Error(err))
			}
			continue
		}
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			s.attemptReversal(ctx, it)
		}
	}
}

func (s *Switch) attemptReversal(ctx context.Context, it journal.SAFItem) {
	log := s.log.With(zap.Int64("txn", it.TxnID), zap.String("route", it.Route), zap.String("kind", it.Kind), zap.Int("attempt", it.Attempts+1))
	now := time.Now()
	if now.After(it.ExpiresAt) {
		s.safMetrics.review.Inc()
		s.safMetrics.attempts.WithLabelValues(it.Route, "review").Inc()
		log.Error("reversal expired unacknowledged: MANUAL REVIEW", zap.Int64("amount", it.Amount))
		_ = s.journal.SAFResult(ctx, it, journal.SAFReview, now, "expired unacknowledged")
		return
	}
	err := s.sendReversal(ctx, &it)
	if err == nil {
		s.safMetrics.attempts.WithLabelValues(it.Route, "acknowledged").Inc()
		log.Info("reversal acknowledged", zap.Int64("amount", it.Amount))
		if rerr := s.journal.SAFResult(ctx, it, journal.SAFDone, now, ""); rerr != nil {
			log.Error("recording acknowledged reversal", zap.Error(rerr))
		}
		return
	}
	backoff := time.Second << min(it.Attempts, 16)
	if backoff > s.cfg.Journal.RetryMax {
		backoff = s.cfg.Journal.RetryMax
	}
	s.safMetrics.attempts.WithLabelValues(it.Route, "retry").Inc()
	log.Warn("reversal not acknowledged, will repeat", zap.Duration("in", backoff), zap.String("error", err.Error()))
	_ = s.journal.SAFResult(ctx, it, journal.SAFPending, now.Add(backoff), err.Error())
}

// sendReversal sends one attempt and returns nil when acknowledged.
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
	link, ok := s.links[it.Route]
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
		// First attempt: fix DE 11 and DE 7 for every repeat, durably.
		if err := link.Assign(req); err != nil {
			return err
		}
		it.STAN, _ = req.GetString(specs.STAN)
		it.TxTime, _ = req.GetString(specs.TransmissionDateTime)
		if err := s.journal.SAFAssign(ctx, it.ID, it.STAN, it.TxTime); err != nil {
			return err
		}
	} else {
		_ = req.Field(specs.STAN, it.STAN)
		_ = req.Field(specs.TransmissionDateTime, it.TxTime)
	}
	if it.Kind == journal.KindRefund {
		// A refund has no DE 90: a stable RRN per queued item lets the
		// host recognise a repeat.
		_ = req.Field(specs.RRN, upstream.RRN(it.CreatedAt, it.STAN))
	}
	resp, err := link.Exchange(ctx, req)
	if err != nil {
		return err
	}
	return acknowledged(resp)
}

func acknowledged(resp *iso8583.Message) error {
	rc, _ := resp.GetString(specs.ResponseCode)
	if rc == "00" {
		return nil
	}
	return fmt.Errorf("issuer answered %s", rc)
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
		// A merchant cancel or refund whose answer was lost: it still
		// stands, and its repeat must be recognisable as one.
		if err := s.journal.Set(ctx, t.ID, journal.Update{State: journal.Answered, RC: "00"},
			"found left in flight: repeat queued"); err != nil {
			return err
		}
		kind := s.giveBackKind(t.Route)
		if t.MTI == "0200" {
			kind = journal.KindRefund
		}
		if err := s.ledger.QueueRepeat(ctx, t, kind, t.Amount); err != nil {
			return err
		}
		s.log.Warn("cancel left in flight recovered: repeat queued", zap.Int64("txn", t.ID), zap.String("route", t.Route))
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
