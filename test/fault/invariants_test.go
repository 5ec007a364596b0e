package fault

import (
	"context"
	"fmt"
	"testing"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/store"
)

// checkMoney checks, once the load settled, that every card was charged
// exactly what its terminals were told (per card and per sale: amounts
// are distinct, so each issuer approval names its sale) and that every
// approval a terminal saw is journaled approved in j. balances and
// approvals are the issuers' ledgers; it returns how many approvals it
// found in the journal.
func checkMoney(t *testing.T, sales []*sale, cards []card, balances map[string]int64, approvals map[string][]issuer.Approval,
	j store.Store) (found int) {
	t.Helper()
	jctx := context.Background()
	// Invariant 1, per card: the issuer charged exactly what the
	// terminals were told.
	want := map[string]int64{}
	for _, s := range sales {
		want[s.card.pan] += s.charged()
	}
	for _, cd := range cards {
		if got := bigBalance - balances[cd.pan]; got != want[cd.pan] {
			t.Errorf("%s %s: issuer charged %d in total, terminals were told %d (difference %+d)",
				cd.route, pan.Mask(cd.pan), got, want[cd.pan], got-want[cd.pan])
		}
	}

	// Invariant 1, per sale (amounts are distinct, so each issuer approval
	// names its sale): explains any difference above.
	bySale := map[string][]issuer.Approval{}
	key := func(route string, amount int64) string { return fmt.Sprintf("%s/%d", route, amount) }
	for route, list := range approvals {
		for _, a := range list {
			bySale[key(route, a.Amount)] = append(bySale[key(route, a.Amount)], a)
		}
	}
	for _, s := range sales {
		list := bySale[key(s.card.route, s.amount)]
		delete(bySale, key(s.card.route, s.amount))
		var charged int64
		for _, a := range list {
			charged += a.Remaining
			if a.PAN != s.card.pan {
				t.Errorf("%s: issuer approval on another card %s", s, a.MaskedPAN)
			}
		}
		if len(list) > 1 {
			t.Errorf("%s: the issuer approved it %d times", s, len(list))
		}
		if charged != s.charged() {
			t.Errorf("%s\n\tthe customer is charged %d, the terminal was told %d\n\tissuer: %s\n\tjournal: %s",
				s, charged, s.charged(), describeApprovals(list), describeJournal(jctx, j, s))
		}
	}
	for k, list := range bySale {
		t.Errorf("issuer approval %s matches no sale: %s", k, describeApprovals(list))
	}

	// Invariant 2: every approval a terminal saw is journaled as approved.
	for _, s := range sales {
		if !s.approved() {
			continue
		}
		row, err := j.Sales().FindByKey(jctx, store.Key{TerminalID: s.terminal, STAN: s.stan, TxTime: s.de7, MTI: specs.MTIFinancialRequest})
		if err != nil {
			t.Errorf("%s: not in the journal: %v", s, err)
			continue
		}
		found++
		if row.State != store.Approved || row.RC != "00" || row.Amount != s.amount {
			t.Errorf("%s: journal has state %s rc %q amount %d; want approved 00 %d", s, row.State, row.RC, row.Amount, s.amount)
		}
		if row.Remaining != s.charged() {
			// Not asserted: a kill between journaling a cancel and taking
			// its amount off the sale leaves the sale's remainder high.
			t.Logf("note: %s: journal remaining %d, terminal expects %d", s, row.Remaining, s.charged())
		}
	}
	return found
}
