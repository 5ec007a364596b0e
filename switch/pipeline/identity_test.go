package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
)

// TestCancelFindsOnlyItsOwnSale: a 0400 acts only on a sale made on the
// same listener, terminal and merchant, in the same currency; anything else
// is 25 and changes nothing.
func TestCancelFindsOnlyItsOwnSale(t *testing.T) {
	e := newLedgerEnv(t)
	s := e.sale(testCard, 10000)
	orig := e.approvedSale(s)
	tests := []struct {
		name string
		c    msg
		want codes.Code
	}{
		{"another listener", e.cancelOf(s, 6000).on("van"), codes.OriginalNotFound},
		{"another merchant", e.cancelOf(s, 6000).edit(specs.MerchantID, otherMID), codes.OriginalNotFound},
		{"no merchant", e.cancelOf(s, 6000).edit(specs.MerchantID, ""), codes.OriginalNotFound},
		{"another terminal", e.cancelOf(s, 6000).edit(specs.TerminalID, "TERM0002"), codes.OriginalNotFound},
		{"another currency", e.cancelOf(s, 6000).edit(specs.Currency, "840"), codes.OriginalNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.issuer.received()
			if rc := e.send(tt.c); rc != tt.want {
				t.Fatalf("DE 39 %s, want %s", rc, tt.want)
			}
			if e.issuer.received() != before || e.remaining(orig.ID) != 10000 {
				t.Fatalf("a refused cancel reached the issuer or changed what remains (%d)", e.remaining(orig.ID))
			}
		})
	}
	if rc := e.send(e.cancelOf(s, 6000)); rc != codes.Approved || e.remaining(orig.ID) != 6000 {
		t.Fatalf("the sale's own cancel: %s, %d remains", rc, e.remaining(orig.ID))
	}
	if rc := e.send(e.cancelOf(s, 2000).edit(specs.Currency, "")); rc != codes.Approved || e.remaining(orig.ID) != 2000 {
		t.Fatalf("a cancel without DE 49: %s, %d remains", rc, e.remaining(orig.ID))
	}
}

// TestKeyedTerminalActsOnlyUnderItsKey: a sale made on a keyed listener
// under one MAC key is not found by a cancel or refund from that listener
// once it verifies another key.
func TestKeyedTerminalActsOnlyUnderItsKey(t *testing.T) {
	e := newLedgerEnv(t)
	s := e.sale(testCard, 10000).on(keyedLn)
	orig := e.approvedSale(s)
	if orig.AuthKey != "mac-a" {
		t.Fatalf("sale journaled under key %q", orig.AuthKey)
	}
	e.keys[keyedLn] = "mac-b"
	before := e.issuer.received()
	if rc := e.send(e.cancelOf(s, 6000)); rc != codes.OriginalNotFound {
		t.Fatalf("cancel under another key: %s, want 25", rc)
	}
	if rc := e.send(e.refundOf(orig, testCard, 1000)); rc != codes.OriginalNotFound {
		t.Fatalf("refund under another key: %s, want 25", rc)
	}
	if e.issuer.received() != before || e.remaining(orig.ID) != 10000 {
		t.Fatal("a cancel under another key gave money back")
	}
	e.keys[keyedLn] = "mac-a"
	if rc := e.send(e.cancelOf(s, 6000)); rc != codes.Approved || e.remaining(orig.ID) != 6000 {
		t.Fatalf("cancel under the sale's key: %s, %d remains", rc, e.remaining(orig.ID))
	}
}

// TestRefundMatchesTheSale: a refund names its sale by RRN and approval
// code within its listener, terminal and merchant, in the sale's currency,
// to the sale's card (its token when it was paid with one); an
// authorisation hold is not refundable; an ambiguous RRN is refused.
func TestRefundMatchesTheSale(t *testing.T) {
	e := newLedgerEnv(t)
	orig := e.approvedSale(e.sale(testCard, 9000))
	tokenSale := e.approvedSale(e.sale(testToken, 5000))
	auth := e.sale(testCard, 3000)
	auth.mti = "0100"
	hold := e.approvedSale(auth)
	tests := []struct {
		name string
		r    msg
		sale store.Txn
		want codes.Code
	}{
		{"another currency", e.refundOf(orig, testCard, 1000).edit(specs.Currency, "840"), orig, codes.OriginalNotFound},
		{"another card", e.refundOf(orig, otherCard, 1000), orig, codes.OriginalNotFound},
		{"another merchant", e.refundOf(orig, testCard, 1000).edit(specs.MerchantID, otherMID), orig, codes.OriginalNotFound},
		{"another terminal", e.refundOf(orig, testCard, 1000).edit(specs.TerminalID, "TERM0002"), orig, codes.OriginalNotFound},
		{"another listener", e.refundOf(orig, testCard, 1000).on("van"), orig, codes.OriginalNotFound},
		{"wrong approval code", e.refundOf(orig, testCard, 1000).edit(specs.ApprovalCode, "XXXXXX"), orig, codes.OriginalNotFound},
		{"token sale refunded to the card behind it", e.refundOf(tokenSale, tokenCard, 1000), tokenSale, codes.OriginalNotFound},
		{"authorisation hold", e.refundOf(hold, testCard, 1000), hold, codes.InvalidTxn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.issuer.received()
			if rc := e.send(tt.r); rc != tt.want {
				t.Fatalf("DE 39 %s, want %s", rc, tt.want)
			}
			if e.issuer.received() != before || e.remaining(tt.sale.ID) != tt.sale.Amount {
				t.Fatalf("a refused refund reached the issuer or changed what remains (%d)", e.remaining(tt.sale.ID))
			}
		})
	}
	if rc := e.send(e.refundOf(orig, testCard, 4000)); rc != codes.Approved || e.remaining(orig.ID) != 5000 {
		t.Fatalf("refund of the sale: %s, %d remains", rc, e.remaining(orig.ID))
	}
	if rc := e.send(e.refundOf(tokenSale, testToken, 5000)); rc != codes.Approved || e.remaining(tokenSale.ID) != 0 {
		t.Fatalf("refund of a token sale to its token: %s, %d remains", rc, e.remaining(tokenSale.ID))
	}
}

// TestRefundOfAnAmbiguousSaleIsRefused: two approved sales of one terminal
// with the same RRN and approval code: a refund naming them is 25.
func TestRefundOfAnAmbiguousSaleIsRefused(t *testing.T) {
	e := newLedgerEnv(t)
	e.issuer.fixedRRN = "512345000001"
	a := e.approvedSale(e.sale(testCard, 9000))
	b := e.approvedSale(e.sale(testCard, 7000))
	if a.RRN != b.RRN || a.ApprovalCode != b.ApprovalCode {
		t.Fatalf("setup: RRNs %s %s", a.RRN, b.RRN)
	}
	before := e.issuer.received()
	if rc := e.send(e.refundOf(a, testCard, 1000)); rc != codes.OriginalNotFound {
		t.Fatalf("refund naming two sales: %s, want 25", rc)
	}
	if e.issuer.received() != before || e.remaining(a.ID) != 9000 || e.remaining(b.ID) != 7000 {
		t.Fatal("an ambiguous refund gave money back")
	}
}

// TestRepeatIsAnsweredOnlyWhenItsContentEquals: a request with the key of a
// journaled one (terminal, STAN, DE 7, MTI) gets the stored answer only
// when it is the same request; otherwise 94, and nothing reaches the issuer.
func TestRepeatIsAnsweredOnlyWhenItsContentEquals(t *testing.T) {
	e := newLedgerEnv(t)
	s := e.sale(testCard, 10000)
	orig := e.approvedSale(s)
	tokenSale := e.sale(testToken, 3000)
	e.approvedSale(tokenSale)
	c := e.cancelOf(s, 6000)
	if rc := e.send(c); rc != codes.Approved {
		t.Fatalf("cancel %s", rc)
	}
	r := e.refundOf(orig, testCard, 1000)
	if rc := e.send(r); rc != codes.Approved {
		t.Fatalf("refund %s", rc)
	}
	tests := []struct {
		name string
		m    msg
		want codes.Code
	}{
		{"sale repeated", s, codes.Approved},
		{"sale key, another card", s.edit(specs.PAN, otherCard), codes.Duplicate},
		{"sale key, another amount", s.edit(specs.Amount, "000000000100"), codes.Duplicate},
		{"sale key, another processing code", s.edit(specs.ProcessingCode, "010000"), codes.Duplicate},
		{"sale key, refund processing code", s.edit(specs.ProcessingCode, "200000"), codes.Duplicate},
		{"sale key, another currency", s.edit(specs.Currency, "840"), codes.Duplicate},
		{"sale key, another merchant", s.edit(specs.MerchantID, otherMID), codes.Duplicate},
		{"sale key, another listener", s.on("van"), codes.Duplicate},
		{"token sale repeated", tokenSale, codes.Approved},
		{"token sale key, the card behind the token", tokenSale.edit(specs.PAN, tokenCard), codes.Duplicate},
		{"cancel repeated", c, codes.Approved},
		{"cancel key, another DE 95", c.edit(specs.ReplacementAmounts, "000000002000"+strings.Repeat("0", 30)), codes.Duplicate},
		{"cancel key, another DE 90", c.edit(specs.OriginalData, "0200"+"999999"+"1125101500"+strings.Repeat("0", 22)), codes.Duplicate},
		{"refund repeated", r, codes.Approved},
		{"refund key, another card", r.edit(specs.PAN, otherCard), codes.Duplicate},
		{"refund key, another amount", r.edit(specs.Amount, "000000000999"), codes.Duplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.issuer.received()
			if rc := e.send(tt.m); rc != tt.want {
				t.Fatalf("DE 39 %s, want %s", rc, tt.want)
			}
			if e.issuer.received() != before {
				t.Fatal("a repeat reached the issuer")
			}
		})
	}
	if e.remaining(orig.ID) != 5000 {
		t.Fatalf("%d remains, want 5000", e.remaining(orig.ID))
	}
}

// TestCancelErrorsReleaseTheReservation: a cancel that cannot be sent gives
// the reserved amount back to the sale and is journaled with the answer the
// terminal got, in one step; an issuer refusal does the same.
func TestCancelErrorsReleaseTheReservation(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(e *ledgerEnv)
		want    codes.Code
	}{
		{"route gone", func(e *ledgerEnv) { e.noRoute = true }, codes.SystemError},
		{"PAN decrypt fails", func(e *ledgerEnv) { e.cipher.failDecrypt = true }, codes.SystemError},
		{"no issuer STAN", func(e *ledgerEnv) { e.issuer.failAssgn = true }, codes.SystemError},
		{"issuer refuses", func(e *ledgerEnv) { e.issuer.rc = "05" }, "05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLedgerEnv(t)
			s := e.sale(testCard, 10000)
			orig := e.approvedSale(s)
			tt.breakIt(e)
			c := e.cancelOf(s, 4000)
			if rc := e.send(c); rc != tt.want {
				t.Fatalf("DE 39 %s, want %s", rc, tt.want)
			}
			if got := e.remaining(orig.ID); got != 10000 {
				t.Fatalf("%d remains after a cancel that gave nothing back", got)
			}
			row := e.row(c)
			if row.State != store.Answered || row.RC != string(tt.want) {
				t.Fatalf("cancel row %s rc %q, want answered %s", row.State, row.RC, tt.want)
			}
			// Its repeat gets the same answer and reserves nothing.
			if rc := e.send(c); rc != tt.want || e.remaining(orig.ID) != 10000 {
				t.Fatalf("repeat: %s, %d remains", rc, e.remaining(orig.ID))
			}
		})
	}
}

// TestRecoverCancel: a cancel left forwarded by a crash gets its amount
// back when it never got an issuer STAN (nothing was sent); with one, its
// repeat is queued and it stands.
func TestRecoverCancel(t *testing.T) {
	e := newLedgerEnv(t)
	ctx := context.Background()
	orig := e.approvedSale(e.sale(testCard, 10000))
	reserve := func(stan string, amount int64) store.Txn {
		t.Helper()
		c, err := e.j.GiveBacks().ReserveCancel(ctx, store.Txn{Key: store.Key{TerminalID: testTID, STAN: stan, TxTime: "1125101600", MTI: "0400"},
			Listener: plainLn, MerchantID: testMID, Route: "card-a", OriginalID: orig.ID, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	neverLeft, mayHaveLeft := reserve("000901", 4000), reserve("000902", 3000)
	if err := e.j.Sales().Set(ctx, mayHaveLeft.ID, store.Update{State: store.Forwarded, IssuerSTAN: "000555", IssuerTxT: "1125101601"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Txn{neverLeft, mayHaveLeft} {
		row, _ := e.j.Lookup().Get(ctx, c.ID)
		queued, err := e.ledger.RecoverCancel(ctx, row)
		if err != nil || queued != (row.IssuerSTAN != "") {
			t.Fatalf("cancel %d: queued %v, %v", c.ID, queued, err)
		}
	}
	if got := e.remaining(orig.ID); got != 7000 {
		t.Fatalf("%d remains, want 7000", got)
	}
	if row, _ := e.j.Lookup().Get(ctx, neverLeft.ID); row.State != store.Failed {
		t.Fatalf("cancel that never left: %s", row.State)
	}
	if row, _ := e.j.Lookup().Get(ctx, mayHaveLeft.ID); row.State != store.Answered || row.RC != "00" {
		t.Fatalf("cancel that may have left: %s %s", row.State, row.RC)
	}
	// Recovering again changes nothing.
	row, _ := e.j.Lookup().Get(ctx, neverLeft.ID)
	if _, err := e.ledger.RecoverCancel(ctx, row); err != nil || e.remaining(orig.ID) != 7000 {
		t.Fatalf("second recovery: %v, %d remains", err, e.remaining(orig.ID))
	}
	if n, _ := e.j.Queue().Depth(ctx); n != 1 {
		t.Fatalf("%d SAF items, want the one repeat", n)
	}
}

// TestRepeatIsAnsweredFromItsRow: a repeat is found by the journal's key
// when its request row is recorded, after the stages that prepare the
// issuer leg ran: it still gets the stored answer (a refusal journaled
// before the request left included), the stored RRN and route, and
// nothing reaches the issuer.
func TestRepeatIsAnsweredFromItsRow(t *testing.T) {
	e := newLedgerEnv(t)
	refused := e.sale(testCard, 2000)
	e.noRoute = true
	refusal := e.send(refused)
	if refusal == codes.Approved {
		t.Fatal("a sale without a route approved")
	}
	e.noRoute = false
	s := e.sale(testCard, 10000)
	orig := e.approvedSale(s)
	tests := []struct {
		name      string
		m         msg
		want      codes.Code
		rrn, rout string
	}{
		{"repeat of a refused sale, route back", refused, refusal, "", ""},
		{"repeat of an approved sale", s, codes.Approved, orig.RRN, orig.Route},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.issuer.received()
			txn := &Txn{Request: request(t, tt.m.mti, tt.m.fields), MTI: tt.m.mti, Listener: tt.m.listener, Received: time.Now()}
			_ = Process(context.Background(), e.h, txn)
			if txn.Code != tt.want || txn.RRN != tt.rrn || txn.Route != tt.rout {
				t.Fatalf("DE 39 %s RRN %q route %q, want %s %q %q", txn.Code, txn.RRN, txn.Route, tt.want, tt.rrn, tt.rout)
			}
			resp, err := Respond(txn)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := resp.GetString(specs.RRN); got != tt.rrn {
				t.Fatalf("answered RRN %q, want the stored %q", got, tt.rrn)
			}
			if e.issuer.received() != before {
				t.Fatal("a repeat reached the issuer")
			}
		})
	}
}

// TestContentHashIsStable: the hash a repeat is compared by is the one
// journaled rows already carry (its first definition, with fmt), so rows
// written before keep answering their repeats.
func TestContentHashIsStable(t *testing.T) {
	first := func(txn *Txn, authKey string) string {
		h := sha256.New()
		put := func(v string) { _, _ = fmt.Fprintf(h, "%d:%s;", len(v), v) }
		put("v1")
		put(txn.MTI)
		put(txn.Listener)
		put(authKey)
		for _, id := range contentFields {
			v, _ := txn.Request.GetString(id)
			put(strconv.Itoa(id))
			put(v)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	e := newLedgerEnv(t)
	for _, m := range []msg{e.sale(testCard, 10000), e.sale(testCard, 1).on("van"), e.cancelOf(e.sale(testCard, 500), 200)} {
		txn := &Txn{Request: request(t, m.mti, m.fields), MTI: m.mti, Listener: m.listener}
		for _, key := range []string{"", "mac-a"} {
			if got, want := contentHash(txn, key), first(txn, key); got != want {
				t.Fatalf("%s on %s, key %q: hash %s, journaled rows carry %s", m.mti, m.listener, key, got, want)
			}
		}
	}
}
