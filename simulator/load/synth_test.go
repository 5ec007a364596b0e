package load

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
)

// synth is a synthetic ISO 8583 switch on loopback whose latency is known:
// it answers every request after a fixed delay (or, during a stall, not
// before the stall ends). It also checks the load generator's bookkeeping:
// every cancel (0400) and refund must name an approved sale of the same
// terminal that was not given back before, or a purchase it swallowed (a
// net cancel).
type synth struct {
	addr  string
	spec  *iso8583.MessageSpec
	delay time.Duration
	// drop, when set, swallows a purchase of that amount (no answer).
	drop func(amount int64) bool
	// decline, when set, answers a purchase of that amount 51.
	decline func(amount int64) bool
	// askRepeat answers the first net cancel of each swallowed purchase
	// 94 (original still in flight: repeat); the repeat must be identical.
	askRepeat bool

	stallFrom, stallUntil atomic.Int64 // UnixNano; answers wait until stallUntil
	rrn                   atomic.Int64

	mu         sync.Mutex
	holds      []time.Duration // actual time from receipt to reply
	sales      map[string]*synthSale
	byRRN      map[string]*synthSale
	dropped    map[string]bool   // tid|stan|de7 of swallowed purchases
	asked      map[string]string // swallowed purchase -> STAN|DE 7 of the 0400 asked to repeat
	netCancels int               // 0400s that named a swallowed purchase
	cancels    int               // 0400s that named an approved sale
	refunds    int               // refunds that named an approved sale
	violations []string
	mtis       map[string]int
	tids       map[string]int // requests by terminal ID (DE 41)
}

type synthSale struct {
	tid, auth string
	amount    int64
	approved  bool
	givenBack bool
}

func startSynth(t *testing.T, delay time.Duration) *synth {
	t.Helper()
	s := &synth{
		spec: specs.MustLoad(specs.TerminalDialect), delay: delay,
		sales: map[string]*synthSale{}, byRRN: map[string]*synthSale{}, dropped: map[string]bool{}, asked: map[string]string{}, mtis: map[string]int{}, tids: map[string]int{},
	}
	s.addr = isotest.Serve(t, s.spec, s.handle)
	return s
}

// stall holds every answer due in the next d until d has passed.
func (s *synth) stall(d time.Duration) {
	now := time.Now()
	s.stallFrom.Store(now.UnixNano())
	s.stallUntil.Store(now.Add(d).UnixNano())
}

func (s *synth) handle(c *connection.Connection, req *iso8583.Message) {
	recv := time.Now()
	get := func(id int) string { v, _ := req.GetString(id); return v }
	mti, _ := req.GetMTI()
	tid, stan, de7 := get(specs.TerminalID), get(specs.STAN), get(specs.TransmissionDateTime)
	amount, _ := strconv.ParseInt(get(specs.Amount), 10, 64)
	key := tid + "|" + stan + "|" + de7
	rc, auth, rrn := "00", "", ""

	s.mu.Lock()
	s.mtis[mti]++
	s.tids[tid]++
	switch {
	case mti == "0200" && strings.HasPrefix(get(specs.ProcessingCode), "20"):
		sale := s.byRRN[get(specs.RRN)]
		switch {
		case sale == nil || !sale.approved:
			s.violations = append(s.violations, "refund of an unknown or unapproved sale")
			rc = "25"
		case sale.tid != tid:
			s.violations = append(s.violations, "refund of another terminal's sale")
			rc = "25"
		case sale.auth != get(specs.ApprovalCode):
			s.violations = append(s.violations, "refund with the wrong approval code")
			rc = "25"
		case sale.givenBack:
			s.violations = append(s.violations, "refund of a sale already given back")
			rc = "13"
		case sale.amount != amount:
			s.violations = append(s.violations, fmt.Sprintf("refund of %d for a sale of %d", amount, sale.amount))
			rc = "13"
		default:
			sale.givenBack = true
			s.refunds++
		}
	case mti == "0200":
		if s.drop != nil && s.drop(amount) {
			s.dropped[key] = true
			s.mu.Unlock()
			return
		}
		sale := &synthSale{tid: tid, amount: amount}
		if s.decline != nil && s.decline(amount) {
			rc = "51"
		} else {
			sale.approved = true
			rrn = fmt.Sprintf("%012d", s.rrn.Add(1))
			auth = fmt.Sprintf("A%05d", s.rrn.Load()%100000)
			sale.auth = auth
			s.byRRN[rrn] = sale
		}
		s.sales[key] = sale
	case mti == "0400":
		de90 := get(specs.OriginalData)
		if len(de90) != 42 || de90[:4] != "0200" || strings.Trim(de90[20:], "0") != "" {
			s.violations = append(s.violations, "0400 with a malformed DE 90: "+de90)
			rc = "30"
			break
		}
		okey := tid + "|" + de90[4:10] + "|" + de90[10:20]
		if s.dropped[okey] {
			if s.askRepeat {
				first, asked := s.asked[okey]
				if !asked {
					s.asked[okey] = stan + "|" + de7
					rc = "94"
					break
				}
				if first != stan+"|"+de7 {
					s.violations = append(s.violations, "a repeated net cancel is not identical to the first")
				}
			}
			delete(s.dropped, okey)
			s.netCancels++
			break
		}
		sale := s.sales[okey]
		switch {
		case sale == nil:
			s.violations = append(s.violations, "0400 naming no sale of this terminal")
			rc = "25"
		case !sale.approved:
			s.violations = append(s.violations, "0400 naming a declined sale")
		case sale.givenBack:
			s.violations = append(s.violations, "0400 naming a sale already given back")
			rc = "13"
		case sale.amount != amount:
			s.violations = append(s.violations, "0400 with another amount than its sale")
		default:
			sale.givenBack = true
			s.cancels++
		}
	}
	s.mu.Unlock()

	due := recv.Add(s.delay)
	if from, until := s.stallFrom.Load(), s.stallUntil.Load(); recv.UnixNano() >= from && due.UnixNano() < until {
		due = time.Unix(0, until)
	}
	time.Sleep(time.Until(due))

	resp := iso8583.NewMessage(s.spec)
	rmti, _ := specs.ResponseMTI(mti)
	resp.MTI(rmti)
	for _, id := range []int{specs.PAN, specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime,
		specs.STAN, specs.TerminalID, specs.MerchantID, specs.Currency, specs.OriginalData} {
		if v := get(id); v != "" {
			_ = resp.Field(id, v)
		}
	}
	if rrn != "" {
		_ = resp.Field(specs.RRN, rrn)
		_ = resp.Field(specs.ApprovalCode, auth)
	}
	_ = resp.Field(specs.ResponseCode, rc)
	hold := time.Since(recv)
	_ = c.Reply(resp) // fails only when the test already closed the link
	s.mu.Lock()
	s.holds = append(s.holds, hold)
	s.mu.Unlock()
}

// holdP50 is the median of the server's actual time from receipt to reply.
func (s *synth) holdP50() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.holds) == 0 {
		return 0
	}
	h := append([]time.Duration(nil), s.holds...)
	sort.Slice(h, func(i, j int) bool { return h[i] < h[j] })
	return h[len(h)/2]
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
