package payswitch_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/store"
)

var errDiskFull = errors.New("no space left on device")

// diskFull is a journal fault: once armed, the next request is journaled
// as forwarded and then the disk "fills" while the issuer answers: every
// write fails until heal.
type diskFull struct{ armed, full atomic.Bool }

func (d *diskFull) fault(op string) error {
	if d.full.Load() {
		return errDiskFull
	}
	if op == store.OpBegin && d.armed.CompareAndSwap(true, false) {
		d.full.Store(true) // this write still goes through
	}
	return nil
}

func (d *diskFull) heal() { d.full.Store(false) }

type readiness struct {
	Ready    bool   `json:"ready"`
	Instance string `json:"instance"`
	Journal  string `json:"journal"`
}

func (h *harness) readiness(t *testing.T) readiness {
	t.Helper()
	var r readiness
	body := h.adminGet(t, "/readyz")
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz answered %q: %v", body, err)
	}
	return r
}

func received(is *issuer.Issuer, mtis ...string) int {
	n := 0
	for _, r := range is.Received() {
		for _, m := range mtis {
			if r.MTI == m {
				n++
			}
		}
	}
	return n
}

// TestJournalFailsWhileIssuerApproves: the journal stops taking writes
// after a sale left for the issuer, which approves it. The terminal must
// not hear an approval, the switch must stop taking sales (and say so on
// /readyz) without bothering the issuer, and once the journal heals the
// approval is reversed and the switch is ready again.
func TestJournalFailsWhileIssuerApproves(t *testing.T) {
	var disk diskFull
	h := newHarnessWith(t, []payswitch.Option{payswitch.WithStoreFault(disk.fault)}, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	iss := h.issuers["card-a"]
	term := h.terminal()
	ctx := context.Background()
	if r := h.readiness(t); !r.Ready {
		t.Fatalf("not ready before the failure: %+v", r)
	}

	disk.armed.Store(true)
	res, err := term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 15000})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResponseCode != "91" {
		t.Fatalf("a sale whose approval could not be journaled: DE 39 = %s, want 91", res.ResponseCode)
	}
	if got := iss.Balance(cardA); got != openToBuy-15000 {
		t.Fatalf("the issuer should have approved the sale: balance %d", got)
	}

	r := h.readiness(t)
	if r.Ready || !strings.Contains(r.Journal, "not accepting writes") {
		t.Fatalf("/readyz while the journal fails: %+v", r)
	}
	if m := h.adminGet(t, "/metrics"); !strings.Contains(m, "payswitch_journal_healthy 0") {
		t.Errorf("payswitch_journal_healthy while the journal fails:\n%s", grepLines(m, "payswitch_journal"))
	}
	sales := received(iss, specs.MTIFinancialRequest)
	res, err = term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResponseCode != "91" {
		t.Fatalf("a new sale while the journal fails: DE 39 = %s, want 91", res.ResponseCode)
	}
	if got := received(iss, specs.MTIFinancialRequest); got != sales {
		t.Fatalf("a sale reached the issuer while the journal failed (%d sales, %d before)", got, sales)
	}
	if got := received(iss, specs.MTIReversalAdvice, specs.MTIReversalRepeat); got != 0 {
		t.Fatalf("%d reversals sent before the journal could record them", got)
	}

	disk.heal()
	waitFor(t, 20*time.Second, "the reversal to give the approval back", func() bool { return iss.Balance(cardA) == openToBuy })
	waitFor(t, 10*time.Second, "/readyz ready again", func() bool { return h.readiness(t).Ready })
	if got := received(iss, specs.MTIReversalAdvice, specs.MTIReversalRepeat); got < 1 {
		t.Errorf("balance restored but no reversal reached the issuer")
	}
	waitFor(t, 10*time.Second, "the reversal of 15000 acknowledged in the SAF queue", func() bool {
		return strings.Contains(h.adminGet(t, "/v1/saf?state=done"), `"amount":15000`)
	})
	waitFor(t, 10*time.Second, "payswitch_journal_healthy 1", func() bool {
		return strings.Contains(h.adminGet(t, "/metrics"), "payswitch_journal_healthy 1")
	})
	res, err = term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("a sale after the journal healed: %+v %v", res, err)
	}
}
