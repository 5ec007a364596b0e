package payswitch_test

import (
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// scriptedCardA serves card-a in the issuer dialect: sales are answered
// by answerSale, give-backs (04xx) are acknowledged 00 and recorded.
type scriptedCardA struct {
	mu        sync.Mutex
	giveBacks []*iso8583.Message
}

func (s *scriptedCardA) reversals() []*iso8583.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*iso8583.Message(nil), s.giveBacks...)
}

func startScriptedCardA(t *testing.T, answerSale func(spec *iso8583.MessageSpec, req *iso8583.Message) *iso8583.Message) (*scriptedCardA, string) {
	spec := specs.MustLoad(specs.IssuerDialect)
	s := &scriptedCardA{}
	addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		if isotest.SignOn(c, spec, req) {
			return
		}
		mti, _ := req.GetMTI()
		if mti[:2] == "04" {
			s.mu.Lock()
			s.giveBacks = append(s.giveBacks, req)
			s.mu.Unlock()
			_ = c.Reply(isotest.Answer(spec, req, "0430", "00"))
			return
		}
		if resp := answerSale(spec, req); resp != nil {
			_ = c.Reply(resp)
		}
	})
	return s, addr
}

// TestUnusableIssuerAnswerIsUnknownOutcome: an answer with the sale's
// STAN that is not a usable answer to it (another MTI class, no DE 39,
// another DE 7) leaves the outcome unknown: the terminal hears 91 and the
// sale is reversed, never journaled as a plain failure.
func TestUnusableIssuerAnswerIsUnknownOutcome(t *testing.T) {
	cases := []struct {
		name   string
		answer func(spec *iso8583.MessageSpec, req *iso8583.Message) *iso8583.Message
	}{
		{"0430 with the sale's STAN", func(spec *iso8583.MessageSpec, req *iso8583.Message) *iso8583.Message {
			return isotest.Answer(spec, req, "0430", "00")
		}},
		{"0210 without DE 39", func(spec *iso8583.MessageSpec, req *iso8583.Message) *iso8583.Message {
			m := isotest.Answer(spec, req, "0210", "00")
			m.UnsetField(specs.ResponseCode)
			return m
		}},
		{"0210 with another DE 7", func(spec *iso8583.MessageSpec, req *iso8583.Message) *iso8583.Message {
			m := isotest.Answer(spec, req, "0210", "00")
			_ = m.Field(specs.TransmissionDateTime, "0101000000")
			return m
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			issuerA, addr := startScriptedCardA(t, tc.answer)
			h := newHarness(t, addr, func(c *config.Config) {
				c.Journal.SAFInterval = 50 * time.Millisecond
				c.Routes[0].Header = "binary2"
			})
			waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
			req, resp := sale(t, h.terminal(), cardA, 2500)
			if rc, _ := resp.GetString(specs.ResponseCode); rc != "91" {
				t.Fatalf("sale answered %s, want 91 (outcome unknown)", rc)
			}
			h.waitSAFSettled(t)
			revs := issuerA.reversals()
			if len(revs) == 0 {
				t.Fatal("no reversal reached the issuer: the customer may be charged for a sale the terminal was told failed")
			}
			de90, _ := revs[0].GetString(specs.OriginalData)
			if _, err := req.GetString(specs.STAN); err != nil || len(de90) != 42 || de90[:4] != "0200" {
				t.Fatalf("reversal DE 90 %q does not name the 0200 sale", de90)
			}
		})
	}
}
