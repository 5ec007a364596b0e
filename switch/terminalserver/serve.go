package terminalserver

import (
	"errors"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/iso/frame/netheader"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/txnlog"
)

// ReasonListenerRemoved declines (DE 39 91) a request that reaches a
// listener a reload removed, while its connections wind down.
const ReasonListenerRemoved = "listener removed by a configuration reload"

// Metrics are the series a listener counts in (registered by the switch).
type Metrics struct {
	Requests    *prometheus.CounterVec   // listener, mti, route, rc
	Duration    *prometheus.HistogramVec // listener, mti
	InFlight    *prometheus.GaugeVec     // listener
	Connections *prometheus.GaugeVec     // listener
	Refused     *prometheus.CounterVec   // listener, reason
	InputErrors *prometheus.CounterVec   // listener, reason
	Panics      prometheus.Counter
}

// answerer writes the answers to one request on its connection, with the
// network header the request came with echoed (a TPDU, swapped).
type answerer struct {
	out      *frame.Writer
	received netheader.Message // nil: nothing to echo
}

func (a answerer) Send(resp *iso8583.Message) error { return a.out.Answer(resp, a.received) }

func (a answerer) SendFields(resp *frame.Fields) error { return a.out.AnswerFields(resp, a.received) }

// serveMessage runs one terminal request through the pipeline and replies.
func (l *Listener) serveMessage(c answerer, msg *iso8583.Message, raw []byte, link *vanLink, log *zap.Logger) {
	start := time.Now()
	mti, _ := msg.GetMTI()
	if !specs.IsRequest(mti) {
		l.m.InputErrors.WithLabelValues(l.cfg.Name, "unexpected_response").Inc()
		log.Warn("ignoring a non-request message from a terminal", zap.String("mti", MTILabel(mti)))
		return
	}
	// Counted in flight when read (requestCounter); answered before it
	// stops counting, so a closing connection waits for the answer.
	defer link.inFlight.Add(-1)
	t := &pipeline.Txn{Listener: l.cfg.Name, Policy: l.policy, Received: start, Request: msg, MTI: mti, Raw: raw}
	if l.retiring.Load() {
		t.Code, t.Reason = codes.IssuerUnavailable, ReasonListenerRemoved
		l.reply(c, t, start, t.Reason, log)
		return
	}
	// A keyed listener limits in the pipeline, once the MAC verified: DE 41
	// of a request nobody authenticated yet must not spend a terminal's
	// allowance.
	if tid, _ := msg.GetString(specs.TerminalID); !l.keyed() && !l.limits.Allow(tid) {
		l.m.Refused.WithLabelValues(l.cfg.Name, "rate_limit").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, pipeline.ReasonRateLimit
		l.reply(c, t, start, t.Reason, log)
		return
	}
	if !l.admit(link, t) { // VAN link: signed on, within its rate (van.go)
		l.reply(c, t, start, t.Reason, log)
		return
	}
	if link.inFlight.Load() > l.maxInFlight.Load() || !l.deps.Txns.Enter() {
		l.m.Refused.WithLabelValues(l.cfg.Name, "max_in_flight").Inc()
		t.Code, t.Reason = codes.IssuerUnavailable, "overloaded or draining"
		l.reply(c, t, start, t.Reason, log)
		return
	}
	defer l.deps.Txns.Leave()
	l.series.inFlight.Inc()
	defer l.series.inFlight.Dec()

	err := pipeline.Process(l.deps.Ctx, l.deps.Handler, t)
	l.observe(link, t)
	l.logOutcome(t, err, log)
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	l.reply(c, t, start, reason, log)
}

// reply answers the terminal and logs the transaction's one line. The
// answer is packed from its fields (pipeline.Answer); a keyed listener's
// is built as a message, which its MAC is computed over.
func (l *Listener) reply(c answerer, t *pipeline.Txn, start time.Time, reason string, log *zap.Logger) {
	resp, err := pipeline.Answer(t)
	if err != nil {
		log.Error("building response", zap.String("error", pan.Scrub(err.Error())))
		txnlog.Write(log, t, nil, reason)
		return
	}
	defer txnlog.Write(log, t, resp, reason)
	if err := l.send(c, resp, log); err != nil {
		log.Warn("writing response", zap.String("stan", stanOf(t.Request)), zap.Error(err))
		return
	}
	route := t.Route
	if route == "" {
		route = "none"
	}
	mti := MTILabel(t.MTI)
	l.series.request(mti, route, RCLabel(t.Code)).Inc()
	l.series.latency(mti).Observe(time.Since(start).Seconds())
}

// send writes resp, signed first on a keyed listener.
func (l *Listener) send(c answerer, resp *frame.Fields, log *zap.Logger) error {
	k := l.policy.MAC
	if k == nil {
		return c.SendFields(resp)
	}
	msg, err := resp.Message()
	if err != nil {
		return err
	}
	if err := pipeline.SignResponse(l.deps.Ctx, l.deps.PINMAC, *k, msg); err != nil {
		// Still answer: an unsigned answer beats a lost one.
		log.Error("signing response", zap.String("error", pan.Scrub(err.Error())))
	}
	return c.Send(msg)
}

func (l *Listener) logOutcome(t *pipeline.Txn, err error, log *zap.Logger) {
	var pe *pipeline.PanicError
	switch {
	case errors.As(err, &pe):
		l.m.Panics.Inc()
		log.Error("panic in pipeline, answered 96",
			zap.String("mti", t.MTI), zap.String("stan", stanOf(t.Request)), zap.String("pan", pan.Mask(t.PAN)),
			zap.String("route", t.Route), zap.String("rc", string(t.Code)),
			zap.Any("panic", pe.Value), zap.ByteString("stack", pe.Stack))
	}
	// Every transaction, declined by the switch or not, gets its info line
	// from reply (txnlog.Write).
}

// formatError answers an undecodable request with DE 39 30, echoing what
// could be read (STAN, terminal ID, ...) so the terminal can match it.
func (l *Listener) formatError(c *frame.Writer, ue *frame.UndecodableError, log *zap.Logger) {
	l.m.InputErrors.WithLabelValues(l.cfg.Name, "undecodable").Inc()
	log.Warn("undecodable message", zap.String("mti", MTILabel(ue.MTI)), zap.String("reason", pan.Scrub(ue.Err.Error())))
	rmti, err := specs.ResponseMTI(ue.MTI)
	if err != nil {
		return // not a request: nothing to answer
	}
	resp := iso8583.NewMessage(l.spec)
	resp.MTI(rmti)
	if ue.Partial != nil {
		for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.RRN, specs.TerminalID, specs.MerchantID} {
			_ = fields.Copy(resp, ue.Partial, id)
		}
	}
	_ = resp.Field(specs.ResponseCode, string(codes.FormatError))
	if err := c.Answer(resp, ue.Header); err != nil {
		// A partial field that does not pack: answer with MTI and DE 39 only.
		bare := iso8583.NewMessage(l.spec)
		bare.MTI(rmti)
		_ = bare.Field(specs.ResponseCode, string(codes.FormatError))
		if err := c.Answer(bare, ue.Header); err != nil {
			log.Warn("answering format error", zap.Error(err))
		}
	}
	l.m.Requests.WithLabelValues(l.cfg.Name, MTILabel(ue.MTI), "none", string(codes.FormatError)).Inc()
}

func stanOf(m *iso8583.Message) string {
	s, _ := m.GetString(specs.STAN)
	return s
}

var knownMTIs = map[string]bool{
	specs.MTIAuthRequest: true, specs.MTIFinancialRequest: true, specs.MTIAdvice: true,
	specs.MTIReversal: true, specs.MTIReversalAdvice: true, specs.MTIReversalRepeat: true,
	specs.MTIReconciliation: true, specs.MTINetworkMgmt: true,
}

// MTILabel is the metric label of a request MTI: a known one, else "other".
func MTILabel(mti string) string {
	if knownMTIs[mti] {
		return mti
	}
	return "other"
}

// RCLabel is the metric label of a DE 39 code: a known one, else "other".
func RCLabel(c codes.Code) string {
	if _, ok := codes.Lookup(c); ok {
		return string(c)
	}
	return "other"
}
