package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// attacker sends identity attacks on the fleet's approved sales while the
// load runs: cancels naming a sale from another listener, from another
// merchant, in another currency, and a replay of a sale's duplicate key
// with another card and amount. None may be approved; the per-card
// invariant then shows none gave money back or charged anybody.
type attacker struct {
	f          *fleet
	termAddr   string
	attackAddr string
	rng        *rand.Rand
	stans      *terminal.STANGenerator
	spec       *iso8583.MessageSpec

	mu      sync.Mutex
	answers map[string]map[string]int // attack -> DE 39 -> count
	errs    []string
}

func newAttacker(f *fleet, termAddr, attackAddr string) *attacker {
	return &attacker{f: f, termAddr: termAddr, attackAddr: attackAddr, rng: rand.New(rand.NewPCG(f.seed, 99)),
		stans: terminal.NewSTANGenerator(900_001), spec: specs.MustLoad(specs.TerminalDialect),
		answers: map[string]map[string]int{}}
}

// attack is one identity attack on sale s: where it is sent and the
// message (built with the attacker's own STAN and DE 7).
type attack struct {
	name string
	addr string
	msg  func(a *attacker, s *sale) (*iso8583.Message, error)
}

func (a *attacker) attacks() []attack {
	cancelOf := func(merchant string, edit func(*iso8583.Message) error) func(*attacker, *sale) (*iso8583.Message, error) {
		return func(a *attacker, s *sale) (*iso8583.Message, error) {
			g := &giveBack{remaining: -1, stan: a.stans.Next(), de7: time.Now().UTC().Format("0102150405")}
			m, err := giveBackMessage(a.spec, s.terminal, merchant, s, g)
			if err == nil && edit != nil {
				err = edit(m)
			}
			return m, err
		}
	}
	return []attack{
		{"cancel from another listener", a.attackAddr, cancelOf(terminal.DefaultMerchantID, nil)},
		{"cancel from another merchant", a.termAddr, cancelOf("EVILMERCHANT001", nil)},
		{"cancel in another currency", a.termAddr, cancelOf(terminal.DefaultMerchantID, func(m *iso8583.Message) error {
			return m.Field(specs.Currency, "840")
		})},
		{"replay of a sale's key with another card and amount", a.termAddr, func(a *attacker, s *sale) (*iso8583.Message, error) {
			other := a.f.cards[a.rng.IntN(len(a.f.cards))]
			opts := terminal.DefaultOptions()
			opts.TerminalID = s.terminal
			m, err := terminal.NewPurchaseMessage(a.spec, terminal.Purchase{PAN: other.pan, Amount: s.amount + 500_000}, s.stan, time.Now(), opts)
			if err == nil {
				err = m.Field(specs.TransmissionDateTime, s.de7)
			}
			return m, err
		}},
	}
}

// run attacks until ctx ends.
func (a *attacker) run(ctx context.Context) {
	clients := map[string]*terminal.Client{}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		s := a.approvedSale()
		if s == nil {
			continue
		}
		at := a.attacks()[a.rng.IntN(len(a.attacks()))]
		m, err := at.msg(a, s)
		if err != nil {
			a.errorf("%s: building: %v", at.name, err)
			continue
		}
		c := clients[at.addr]
		if c == nil {
			opts := terminal.DefaultOptions()
			opts.Addr, opts.Timeout = at.addr, posTimeout
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err = terminal.Dial(dctx, opts)
			cancel()
			if err != nil {
				continue // switchd restarting
			}
			clients[at.addr] = c
		}
		resp, err := c.Send(ctx, m)
		if err != nil {
			_ = c.Close()
			delete(clients, at.addr)
			continue
		}
		rc, _ := resp.GetString(specs.ResponseCode)
		a.mu.Lock()
		if a.answers[at.name] == nil {
			a.answers[at.name] = map[string]int{}
		}
		a.answers[at.name][rc]++
		a.mu.Unlock()
		if rc == "00" {
			a.errorf("%s on %s was APPROVED", at.name, s)
		}
	}
}

// approvedSale picks an approved sale of the load at random (nil when
// there is none yet).
func (a *attacker) approvedSale() *sale {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	if len(a.f.approved) == 0 {
		return nil
	}
	s := a.f.approved[a.rng.IntN(len(a.f.approved))]
	return &s
}

func (a *attacker) errorf(format string, args ...any) {
	a.mu.Lock()
	a.errs = append(a.errs, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

// report is the answers by attack, for the log.
func (a *attacker) report() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var lines []string
	for name, rcs := range a.answers {
		lines = append(lines, fmt.Sprintf("%s: %v", name, rcs))
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
