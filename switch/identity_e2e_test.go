package payswitch_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
)

// TestPlainListenerCannotCancelAKeyedTerminalsSale: a MAC'd sale on the
// keyed listener; un-MAC'd 0400s naming it on the plain listener (with the
// same terminal ID, from its merchant or another) are 25 and give nothing
// back.
func TestPlainListenerCannotCancelAKeyedTerminalsSale(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	sale := purchaseMsg(t, cardA, "000201", 10000)
	signMAC(t, sale)
	keyed := dialRaw(t, h.sw.ListenerAddr("keyed"))
	if _, err := keyed.Write(frameOf(t, sale)); err != nil {
		t.Fatal(err)
	}
	resp, err := keyed.read(t, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("keyed sale: %s", rc)
	}
	iss := h.issuers["card-a"]
	charged := iss.Balance(cardA)
	term := h.terminal()
	for name, merchant := range map[string]string{"its merchant": "", "another merchant": "OTHERMERCHANT01"} {
		c := cancelOf(t, term, sale, 4000)
		if merchant != "" {
			_ = c.Field(specs.MerchantID, merchant)
		}
		if rc := send(t, term, c); rc != "25" {
			t.Fatalf("plain-listener cancel from %s: %s, want 25", name, rc)
		}
	}
	if b := iss.Balance(cardA); b != charged {
		t.Fatalf("balance %d -> %d: a plain-listener cancel gave money back", charged, b)
	}
}

// TestSameKeyOtherCardIsNotApproved: a request with the terminal ID, STAN
// and DE 7 of an approved sale but another card and amount is 94, reaches
// no issuer and charges nobody.
func TestSameKeyOtherCardIsNotApproved(t *testing.T) {
	h := newHarness(t, "")
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	term := h.terminal()
	req, resp := sale(t, term, cardA, 10000)
	if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
		t.Fatalf("sale %s", rc)
	}
	iss := h.issuers["card-a"]
	received := len(iss.Received())
	other := purchaseMsg(t, cardA2, "000999", 2500)
	for _, id := range []int{specs.STAN, specs.TransmissionDateTime, specs.TerminalID} {
		v, _ := req.GetString(id)
		_ = other.Field(id, v)
	}
	if rc := send(t, term, other); rc != "94" {
		t.Fatalf("same key, another card and amount: %s, want 94", rc)
	}
	if len(iss.Received()) != received || iss.Balance(cardA2) != openToBuy {
		t.Fatal("the request with another card reached the issuer")
	}
	if rc := send(t, term, req); rc != "00" || len(iss.Received()) != received {
		t.Fatalf("the sale's own repeat: %s", rc)
	}
}

// TestRecoveryOfCancelsLeftInFlight: a cancel journaled (amount reserved)
// that never got its issuer STAN never left the switch: after a restart
// its amount is back on the sale and the cancel is failed, nothing queued.
// One that got its STAN may have reached the issuer: its repeat is queued.
func TestRecoveryOfCancelsLeftInFlight(t *testing.T) {
	dir := t.TempDir()
	files := config.Default()
	files.Journal.Path, files.Vault.Path = filepath.Join(dir, "journal.db"), filepath.Join(dir, "vault.db")
	j, err := storage.Open(files)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	begin := func(row store.Txn) store.Txn {
		t.Helper()
		r, err := j.Sales().Begin(ctx, row)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sale := begin(store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: "000001", TxTime: "1125101500", MTI: "0200"},
		Listener: "terminal", ProcCode: "000000", Amount: 10000, Currency: "410", Route: "card-a",
		IssuerSTAN: "000101", RRN: "512345000101", ApprovalCode: "A1B2C3", RC: "00", State: store.Approved, Remaining: 3000})
	cancel := func(stan, issuerSTAN string, amount int64) store.Txn {
		return begin(store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101600", MTI: "0400"},
			Listener: "terminal", ProcCode: "000000", Amount: amount, Currency: "410", Route: "card-a",
			IssuerSTAN: issuerSTAN, IssuerTxTime: "1125101600", State: store.Forwarded, OriginalID: sale.ID})
	}
	neverLeft := cancel("000002", "", 4000)
	mayHaveLeft := cancel("000003", "000102", 3000)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t, "", func(c *config.Config) {
		c.Journal.Path = files.Journal.Path
		c.Journal.SAFInterval = time.Hour // keep the queue as recovery left it
	})
	h.stopSwitch(h.sw)
	j, err = storage.Open(files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	get := func(id int64) store.Txn {
		t.Helper()
		r, err := j.Lookup().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := get(sale.ID).Remaining; got != 7000 {
		t.Fatalf("%d remains of the sale, want 7000 (the cancel that never left restored)", got)
	}
	if got := get(neverLeft.ID); got.State != store.Failed {
		t.Fatalf("cancel that never left: %s, want failed", got.State)
	}
	if got := get(mayHaveLeft.ID); got.State != store.Answered || got.RC != "00" {
		t.Fatalf("cancel that may have left: %s %s, want answered 00", got.State, got.RC)
	}
	due, err := j.Queue().Claim(ctx, "card-a", time.Now().Add(time.Minute), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].TxnID != mayHaveLeft.ID || due[0].STAN != "000102" || due[0].Amount != 3000 {
		t.Fatalf("SAF queue after recovery: %+v", due)
	}
}
