// Package txnlog writes the one log line every answered request gets, card data masked.
package txnlog

import (
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/pipeline"
)

// Write writes the one info line every answered request gets:
// where it came from, what it was, the masked card, where it went, the
// answer and how long the switch and the issuer took (milliseconds; the
// switch's time excludes the issuer's). reason says why when the switch
// decided the answer itself. Card data appears masked (6+4) only. log
// carries the listener and the remote address already.
func Write(log *zap.Logger, t *pipeline.Txn, resp *frame.Fields, reason string) {
	ce := log.Check(zap.InfoLevel, Message)
	if ce == nil {
		return // info is off: the line's fields are not worth building
	}
	total := time.Since(t.Received)
	get := func(m *iso8583.Message, id int) string {
		if m == nil {
			return ""
		}
		s, _ := m.GetString(id)
		return s
	}
	card := t.PAN
	if card == "" {
		card = get(t.Request, specs.PAN)
	}
	fields := []zap.Field{
		zap.String("mti", t.MTI),
		zap.String("processing_code", get(t.Request, specs.ProcessingCode)),
		zap.String("card", pan.Mask(card)),
		zap.String("terminal", get(t.Request, specs.TerminalID)),
		zap.String("merchant", get(t.Request, specs.MerchantID)),
		zap.String("amount", get(t.Request, specs.Amount)),
		zap.String("currency", get(t.Request, specs.Currency)),
		zap.String("route", t.Route),
		zap.String("rc", string(t.Code)),
		zap.String("rrn", answered(resp, specs.RRN)),
		zap.String("approval_code", answered(resp, specs.ApprovalCode)),
		zap.String("stan", get(t.Request, specs.STAN)),
		zap.Float64("switch_ms", ms(total-t.IssuerTime)),
		zap.Float64("issuer_ms", ms(t.IssuerTime)),
	}
	if t.Token != "" {
		fields = append(fields, zap.Bool("tokenized", true))
	}
	if reason != "" {
		fields = append(fields, zap.String("reason", pan.Scrub(reason)))
	}
	ce.Write(fields...)
}

// Message is the message of the one line per transaction.
const Message = "transaction"

// answered is field id of the answer resp ("" without one).
func answered(resp *frame.Fields, id int) string {
	if resp == nil {
		return ""
	}
	return resp.GetString(id)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
