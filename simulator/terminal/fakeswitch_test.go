package terminal

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
)

// silentAmount makes the fake switch swallow the request (no answer).
const silentAmount = 9900

// fakeSwitch answers 0200 with 0210 on loopback. DE 4 must arrive as 12
// digits ("000000015000"); anything else answers 30 (format error).
// Otherwise DE 39 comes from the amount: a multiple of 100 below 10000
// answers its hundreds (5100 -> 51, 1400 -> 14), except silentAmount, which
// gets no answer; any other amount is approved (00).
type fakeSwitch struct {
	addr string
	spec *iso8583.MessageSpec

	mu       sync.Mutex
	received []*iso8583.Message
}

func startFakeSwitch(t *testing.T) *fakeSwitch {
	t.Helper()
	fs := &fakeSwitch{spec: specs.MustLoad(specs.TerminalDialect)}
	fs.addr = isotest.Serve(t, fs.spec, fs.handle)
	return fs
}

func (fs *fakeSwitch) handle(c *connection.Connection, req *iso8583.Message) {
	fs.mu.Lock()
	fs.received = append(fs.received, req)
	fs.mu.Unlock()

	amountStr, _ := req.GetString(specs.Amount)
	amount, err := strconv.ParseUint(amountStr, 10, 64)
	rc := "00"
	switch {
	case len(amountStr) != 12 || err != nil:
		rc = "30" // DE 4 is n 12, sent at full width
	case amount == silentAmount:
		return
	case amount%100 == 0 && amount < 10000:
		rc = fmt.Sprintf("%02d", amount/100)
	}
	resp := iso8583.NewMessage(fs.spec)
	resp.MTI(specs.MTIFinancialResponse)
	for _, id := range []int{specs.PAN, specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime,
		specs.STAN, specs.LocalTime, specs.LocalDate, specs.POSEntryMode, specs.TerminalID,
		specs.MerchantID, specs.Currency} {
		if req.GetField(id) == nil {
			continue
		}
		v, _ := req.GetString(id)
		if err := resp.Field(id, v); err != nil {
			panic(err)
		}
	}
	_ = resp.Field(specs.RRN, "000000000042")
	_ = resp.Field(specs.ResponseCode, rc)
	if rc == "00" {
		_ = resp.Field(specs.ApprovalCode, "A1B2C3")
	}
	_ = c.Reply(resp) // fails only when the test already closed the link
}

// lastReceived returns the last request the switch got, waiting for one.
func (fs *fakeSwitch) lastReceived(t *testing.T) *iso8583.Message {
	t.Helper()
	var m *iso8583.Message
	testnet.Eventually(t, 10*time.Second, "a request at the fake switch", func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if n := len(fs.received); n > 0 {
			m = fs.received[n-1]
		}
		return m != nil
	})
	return m
}
