package payswitch_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// TestReconciliationPerCurrency: a terminal sells in KRW (410) and USD
// (840). Its batch balances per currency (DE 50 names it), never against
// the sum; agreeing the KRW batch leaves the USD batch open; the
// settlement file has one total line per currency.
func TestReconciliationPerCurrency(t *testing.T) {
	h := newHarness(t, "")
	term := h.linkedTerminal("card-a")
	for _, p := range []terminal.Purchase{
		{PAN: cardA, Amount: 10_000, Currency: "410"},
		{PAN: cardA, Amount: 10, Currency: "840"},
	} {
		m, err := terminal.NewPurchaseMessage(specs.MustLoad(specs.TerminalDialect), p, term.NextSTAN(), time.Now(), terminal.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if rc := send(t, term, m); rc != "00" {
			t.Fatalf("sale of %d in %s answered %s", p.Amount, p.Currency, rc)
		}
	}
	steps := []struct {
		name     string
		currency string // DE 50; "" sends none
		sales    int64
		amount   int64
		want     string
	}{
		{"the sum of two currencies, no currency named", "", 2, 10_010, "95"},
		{"the sum of two currencies as KRW", "410", 2, 10_010, "95"},
		{"KRW while USD sales exist", "410", 1, 10_000, "00"},
		{"USD after the KRW batch closed", "840", 1, 10, "00"},
		{"next KRW batch starts empty", "410", 0, 0, "00"},
		{"next batch without a currency is empty", "", 0, 0, "00"},
	}
	for _, s := range steps {
		m := batchTotals(t, term, s.sales, s.amount, 0, 0, 0, 0)
		if s.currency != "" {
			withField(t, m, 50, s.currency)
		}
		if rc := send(t, term, m); rc != s.want {
			t.Fatalf("%s: answered %s, want %s", s.name, rc, s.want)
		}
	}

	_, paths := settlement(t, h)
	if len(paths) != 1 {
		t.Fatalf("settlement files %v", paths)
	}
	b, _ := os.ReadFile(paths[0])
	totals := grepLines(string(b), "total,")
	for _, want := range []string{"sales=1 cancels=0 refunds=0,410,10000", "sales=1 cancels=0 refunds=0,840,10"} {
		if !strings.Contains(totals, want) {
			t.Errorf("settlement totals lack %q:\n%s", want, b)
		}
	}
}
