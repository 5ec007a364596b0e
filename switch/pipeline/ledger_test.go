package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
)

// Cards of the ledger tests (Luhn-valid; the token is in the fake token
// range 9990).
const (
	testCard   = "9410000000000005"
	otherCard  = "9410000000000013"
	testToken  = "9990000000000003"
	tokenCard  = "9410000000000021"
	testTID    = "TERM0001"
	testMID    = "MERCHANT0000001"
	otherMID   = "MERCHANT0000002"
	plainLn    = "terminal"
	keyedLn    = "keyed"
	approvalAB = "A1B2C3"
)

// xorCipher stands in for the HSM's PAN encryption; decrypt fails on
// demand.
type xorCipher struct {
	mu          sync.Mutex
	failDecrypt bool
	decrypts    int
	encrypts    int
}

func xorBytes(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ 0x5a
	}
	return out
}

func (c *xorCipher) EncryptPAN(_ context.Context, key hsm.KeyRef, p string) (hsm.EncryptedPAN, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.encrypts++
	return hsm.EncryptedPAN{Key: hsm.KeyRef{Label: key.Label, Version: 1}, Ciphertext: xorBytes([]byte(p))}, nil
}

func (c *xorCipher) DecryptPAN(_ context.Context, enc hsm.EncryptedPAN) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decrypts++
	if c.failDecrypt {
		return "", errors.New("hsm: decrypt refused")
	}
	return string(xorBytes(enc.Ciphertext)), nil
}

// ledgerIssuer is an issuer link with a STAN and RRN per request, answering
// 00 with approvalAB (or rc when set), counting what reached it.
type ledgerIssuer struct {
	mu        sync.Mutex
	spec      *iso8583.MessageSpec
	seq       int
	fixedRRN  string
	failAssgn bool
	rc        string
	got       []*iso8583.Message
}

func (f *ledgerIssuer) Spec() *iso8583.MessageSpec { return f.spec }

func (f *ledgerIssuer) Assign(req *iso8583.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAssgn {
		return errors.New("link: no STAN available")
	}
	f.seq++
	rrn := f.fixedRRN
	if rrn == "" {
		rrn = fmt.Sprintf("5123450%05d", f.seq)
	}
	if err := req.Field(specs.STAN, fmt.Sprintf("%06d", f.seq)); err != nil {
		return err
	}
	return req.Field(specs.RRN, rrn)
}

func (f *ledgerIssuer) Abandon(*iso8583.Message) {}

func (f *ledgerIssuer) Exchange(_ context.Context, req *iso8583.Message) (*iso8583.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, req)
	resp := iso8583.NewMessage(f.spec)
	mti, _ := req.GetMTI()
	rmti, _ := specs.ResponseMTI(mti)
	resp.MTI(rmti)
	for _, id := range []int{specs.STAN, specs.RRN} {
		v, _ := req.GetString(id)
		_ = resp.Field(id, v)
	}
	rc := f.rc
	if rc == "" {
		rc = "00"
	}
	_ = resp.Field(specs.ResponseCode, rc)
	if rc == "00" {
		_ = resp.Field(specs.ApprovalCode, approvalAB)
	}
	return resp, nil
}

func (f *ledgerIssuer) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// fakeTokens detokenizes testToken to tokenCard.
type fakeTokens struct{}

func (fakeTokens) IsToken(n string) bool { return strings.HasPrefix(n, "9990") }

func (fakeTokens) Detokenize(_ context.Context, tok, _, _ string) (string, string, error) {
	if tok != testToken {
		return "", "", errors.New("unknown token")
	}
	return tokenCard, "3012", nil
}

// ledgerEnv is the journal stages on a real journal in a temporary folder,
// with an in-process issuer on route card-a.
type ledgerEnv struct {
	t       testing.TB
	j       store.Store
	ledger  Ledger
	cipher  *xorCipher
	issuer  *ledgerIssuer
	noRoute bool
	// keys are the listeners' MAC key labels (AuthKey).
	keys map[string]string
	h    Handler
	stan int
}

func newLedgerEnv(t testing.TB, mutate ...func(*Ledger)) *ledgerEnv {
	t.Helper()
	j := embeddedtest.Open(t)
	e := &ledgerEnv{t: t, j: j, cipher: &xorCipher{}, issuer: &ledgerIssuer{spec: specs.MustLoad(specs.IssuerDialect)},
		keys: map[string]string{keyedLn: "mac-a"}}
	e.ledger = LedgerOn(j)
	e.ledger.Cipher, e.ledger.DataKey = e.cipher, "data-key"
	e.ledger.ReversalExpiry = time.Hour
	e.ledger.Routes = testRoutes{up: e.issuer, gone: func() bool { return e.noRoute }}
	for _, m := range mutate {
		m(&e.ledger)
	}
	e.h = testLists(t, e.ledger, testRoutes{up: e.issuer, gone: func() bool { return e.noRoute }}, "mac")
	return e
}

// msg is one terminal request: its MTI, listener and fields.
type msg struct {
	mti      string
	listener string
	fields   map[int]string
}

// send runs m through the stages and returns DE 39.
func (e *ledgerEnv) send(m msg) codes.Code {
	e.t.Helper()
	txn := &Txn{Request: request(e.t, m.mti, m.fields), MTI: m.mti, Listener: m.listener, Received: time.Now()}
	if key := e.keys[m.listener]; key != "" {
		txn.Policy.MAC = &MACKey{Key: key}
	}
	_ = Process(context.Background(), e.h, txn)
	return txn.Code
}

func (e *ledgerEnv) nextSTAN() string {
	e.stan++
	return fmt.Sprintf("%06d", e.stan)
}

// sale is a purchase of amount with card on the plain listener.
func (e *ledgerEnv) sale(card string, amount int64) msg {
	f := purchase(card, fmt.Sprintf("%012d", amount))
	f[specs.STAN] = e.nextSTAN()
	f[specs.TransmissionDateTime] = "1125101500"
	return msg{mti: "0200", listener: plainLn, fields: f}
}

// approvedSale sends s and returns its journal row (approved).
func (e *ledgerEnv) approvedSale(s msg) store.Txn {
	e.t.Helper()
	if rc := e.send(s); rc != codes.Approved {
		e.t.Fatalf("sale answered %s", rc)
	}
	return e.row(s)
}

// row reads the journal row of request m.
func (e *ledgerEnv) row(m msg) store.Txn {
	e.t.Helper()
	k := store.Key{TerminalID: m.fields[specs.TerminalID], STAN: m.fields[specs.STAN], TxTime: m.fields[specs.TransmissionDateTime], MTI: m.mti}
	r, err := e.j.Sales().FindByKey(context.Background(), k)
	if err != nil {
		e.t.Fatalf("journal row of %+v: %v", k, err)
	}
	return r
}

func (e *ledgerEnv) remaining(id int64) int64 {
	e.t.Helper()
	r, err := e.j.Lookup().Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Remaining
}

// cancelOf is a 0400 naming sale s in DE 90 on the same listener, terminal
// and merchant; actual >= 0 adds DE 95 (a partial cancel down to actual).
func (e *ledgerEnv) cancelOf(s msg, actual int64) msg {
	f := map[int]string{}
	for _, id := range []int{specs.ProcessingCode, specs.Amount, specs.TerminalID, specs.MerchantID, specs.Currency} {
		if v, ok := s.fields[id]; ok {
			f[id] = v
		}
	}
	f[specs.STAN] = e.nextSTAN()
	f[specs.TransmissionDateTime] = "1125101600"
	f[specs.OriginalData] = s.mti + s.fields[specs.STAN] + s.fields[specs.TransmissionDateTime] + strings.Repeat("0", 22)
	if actual >= 0 {
		f[specs.ReplacementAmounts] = fmt.Sprintf("%012d", actual) + strings.Repeat("0", 30)
	}
	return msg{mti: "0400", listener: s.listener, fields: f}
}

// refundOf is a 0200 refund of amount naming sale row orig by RRN and
// approval code, paid back to card.
func (e *ledgerEnv) refundOf(orig store.Txn, card string, amount int64) msg {
	f := purchase(card, fmt.Sprintf("%012d", amount))
	f[specs.ProcessingCode] = "200000"
	f[specs.STAN] = e.nextSTAN()
	f[specs.TransmissionDateTime] = "1125101700"
	f[specs.RRN] = orig.RRN
	f[specs.ApprovalCode] = orig.ApprovalCode
	f[specs.MerchantID] = orig.MerchantID
	return msg{mti: "0200", listener: orig.Listener, fields: f}
}

// edit returns m with field id set to v ("" removes it).
func (m msg) edit(id int, v string) msg {
	m.fields = with(m.fields, id, v)
	return m
}

func (m msg) on(listener string) msg {
	m.listener = listener
	return m
}

// BenchmarkSaleJournaled measures a sale down the card sale list on a
// real journal (embedded store, group commit, no fsync): the switch's
// per-transaction work apart from its sockets, allocations included.
func BenchmarkSaleJournaled(b *testing.B) {
	e := newLedgerEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if rc := e.send(e.sale(testCard, 1000)); rc != codes.Approved {
			b.Fatalf("sale answered %s", rc)
		}
	}
}
