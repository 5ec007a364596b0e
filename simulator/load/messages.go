package load

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// ProcessingRefund is DE 3 of a refund (20 = returns, from the default
// account).
const ProcessingRefund = "200000"

// sale is an earlier purchase a cancel or refund can name.
type sale struct {
	card     string
	amount   int64
	stan     string // DE 11 of the 0200
	txTime   string // DE 7 of the 0200
	proc     string // DE 3 of the 0200
	currency string
	rrn      string // DE 37 of the answer
	auth     string // DE 38 of the answer
}

// saleOf captures what a cancel or refund of the purchase req needs; the
// answer's DE 37 and 38 are filled in once it is approved.
func saleOf(req *iso8583.Message, card string, amount int64) sale {
	get := func(id int) string { s, _ := req.GetString(id); return s }
	return sale{
		card:     card,
		amount:   amount,
		stan:     terminal.NormalizeSTAN(get(specs.STAN)),
		txTime:   get(specs.TransmissionDateTime),
		proc:     get(specs.ProcessingCode),
		currency: get(specs.Currency),
	}
}

// maxSales bounds each terminal's pool of approved sales.
const maxSales = 4096

// salePool holds a terminal's approved sales that have been neither
// cancelled nor refunded. A sale leaves the pool when a cancel or refund
// names it, so no sale is given back twice.
type salePool struct {
	mu    sync.Mutex
	sales []sale
}

func (p *salePool) add(s sale, rng *rand.Rand) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sales) >= maxSales {
		p.sales[rng.IntN(len(p.sales))] = s // forget one at random
		return
	}
	p.sales = append(p.sales, s)
}

// take removes and returns a random sale; for refunds only one with an RRN
// and an approval code qualifies.
func (p *salePool) take(rng *rand.Rand, needRRN bool) (sale, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.sales)
	if n == 0 {
		return sale{}, false
	}
	i := rng.IntN(n)
	if needRRN {
		found := false
		for j := 0; j < n; j++ {
			k := (i + j) % n
			if p.sales[k].rrn != "" && p.sales[k].auth != "" {
				i, found = k, true
				break
			}
		}
		if !found {
			return sale{}, false
		}
	}
	s := p.sales[i]
	p.sales[i] = p.sales[n-1]
	p.sales = p.sales[:n-1]
	return s, true
}

func (p *salePool) putBack(s sale, rng *rand.Rand) { p.add(s, rng) }

// purchaseMessage builds a 0200 purchase (terminal.NewPurchaseMessage: DE 2,
// 3, 4, 7, 11, 12, 13, 22, 41, 42, 49).
func purchaseMessage(spec *iso8583.MessageSpec, card string, amount int64, currency, stan string, now time.Time, opts terminal.Options) (*iso8583.Message, error) {
	return terminal.NewPurchaseMessage(spec, terminal.Purchase{PAN: card, Amount: amount, Currency: currency}, stan, now, opts)
}

// refundMessage builds a 0200 refund of s: processing code 200000, the
// sale's amount, and its RRN (DE 37) and approval code (DE 38).
func refundMessage(spec *iso8583.MessageSpec, s sale, stan string, now time.Time, opts terminal.Options) (*iso8583.Message, error) {
	m, err := purchaseMessage(spec, s.card, s.amount, s.currency, stan, now, opts)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		id  int
		val string
	}{{specs.ProcessingCode, ProcessingRefund}, {specs.RRN, s.rrn}, {specs.ApprovalCode, s.auth}} {
		if err := m.Field(f.id, f.val); err != nil {
			return nil, fmt.Errorf("building refund STAN %s: setting DE %d: %w", stan, f.id, err)
		}
	}
	return m, nil
}

// cancelMessage builds a full 0400 cancel (or net cancel) of s: DE 2, 3, 4,
// 49 of the sale, the terminal's DE 41 and 42, a new STAN and DE 7, DE 37
// and 38 when the sale was answered, and DE 90 = "0200" + the sale's STAN +
// its DE 7 + 22 zeros (no acquirer or forwarding institution).
func cancelMessage(spec *iso8583.MessageSpec, s sale, stan string, now time.Time, opts terminal.Options) (*iso8583.Message, error) {
	m := iso8583.NewMessage(spec)
	m.MTI(specs.MTIReversal)
	fields := []struct {
		id  int
		val string
	}{
		{specs.PAN, s.card},
		{specs.ProcessingCode, s.proc},
		{specs.Amount, fmt.Sprintf("%012d", s.amount)},
		{specs.TransmissionDateTime, now.UTC().Format("0102150405")},
		{specs.STAN, terminal.NormalizeSTAN(stan)},
		{specs.LocalTime, now.Format("150405")},
		{specs.LocalDate, now.Format("0102")},
		{specs.POSEntryMode, terminal.DefaultPOSEntryMode},
		{specs.RRN, s.rrn},
		{specs.ApprovalCode, s.auth},
		{specs.TerminalID, opts.TerminalID},
		{specs.MerchantID, opts.MerchantID},
		{specs.Currency, s.currency},
		{specs.OriginalData, specs.MTIFinancialRequest + s.stan + s.txTime + strings.Repeat("0", 22)},
	}
	for _, f := range fields {
		if f.val == "" {
			continue
		}
		if err := m.Field(f.id, f.val); err != nil {
			// moov's error names the field, not its value; DE 2 stays private.
			return nil, fmt.Errorf("building 0400 STAN %s: setting DE %d: %w", stan, f.id, err)
		}
	}
	return m, nil
}
