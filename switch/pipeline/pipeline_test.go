package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/route"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/upstream"
)

// fakeIssuer answers like an issuer would, from the request's amount.
type fakeIssuer struct {
	spec *iso8583.MessageSpec
	err  error
	got  *iso8583.Message
}

func (f *fakeIssuer) Spec() *iso8583.MessageSpec { return f.spec }

func (f *fakeIssuer) Assign(req *iso8583.Message) error { return req.Field(specs.STAN, "000777") }

func (f *fakeIssuer) Abandon(*iso8583.Message) {}

func (f *fakeIssuer) Exchange(_ context.Context, req *iso8583.Message) (*iso8583.Message, error) {
	f.got = req
	if f.err != nil {
		return nil, f.err
	}
	_ = req.Field(specs.STAN, "000777")
	_ = req.Field(specs.RRN, "512345000777")
	resp := iso8583.NewMessage(f.spec)
	mti, _ := req.GetMTI()
	rmti, _ := specs.ResponseMTI(mti)
	resp.MTI(rmti)
	_ = resp.Field(specs.STAN, "000777")
	_ = resp.Field(specs.RRN, "512345000777")
	amount, _ := req.GetString(specs.Amount)
	if amount == "000000005100" {
		_ = resp.Field(specs.ResponseCode, "51")
	} else {
		_ = resp.Field(specs.ResponseCode, "00")
		_ = resp.Field(specs.ApprovalCode, "A1B2C3")
	}
	return resp, nil
}

var errUpstreamDown = fmt.Errorf("down: %w", upstream.ErrUnavailable)

// testRoutes routes BIN 9410 to route card-a on link up (no route while
// gone reports true).
type testRoutes struct {
	up   Upstream
	gone func() bool
}

var testTable = func() *route.Table {
	tbl, err := route.NewTable(map[string][]string{"card-a": {"9410"}})
	if err != nil {
		panic(err)
	}
	return tbl
}()

func (r testRoutes) Lookup(pan string) (string, error) { return testTable.Lookup(pan) }

func (r testRoutes) Route(name string) (IssuerRoute, bool) {
	ok := name == "card-a" && (r.gone == nil || !r.gone())
	return IssuerRoute{Name: name, Link: r.up, GiveBack: store.KindReversal}, ok
}

// testLists is the dispatcher over the card stage lists without the
// stages named in skip (the tests' terminals send no MACs).
func testLists(t testing.TB, l Ledger, routes Routes, skip ...string) Handler {
	t.Helper()
	return testListsWith(t, l, fakeTokens{}, routes, skip...)
}

// testListsWith is testLists with another token service.
func testListsWith(t testing.TB, l Ledger, tokens Detokenizer, routes Routes, skip ...string) Handler {
	t.Helper()
	l.Routes = routes
	lists := CardLists(Deps{Ledger: l, Tokens: tokens})
	for k, stages := range lists {
		lists[k] = slices.DeleteFunc(slices.Clone(stages), func(s Stage) bool { return slices.Contains(skip, s.Name) })
	}
	d, err := NewDispatcher(lists, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// newChain is the sale path without the journal.
func newChain(t testing.TB, up *fakeIssuer) Handler {
	return Chain([]Stage{
		NetworkManagement(),
		Validate(),
		Route(testRoutes{up: up}),
		MapRequest(), AssignIDs(), Forward(), TakeAnswer(),
	}, Done)
}

func request(t testing.TB, mti string, fields map[int]string) *iso8583.Message {
	m := iso8583.NewMessage(specs.MustLoad(specs.TerminalDialect))
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func purchase(pan, amount string) map[int]string {
	return map[int]string{
		specs.PAN: pan, specs.ProcessingCode: "000000", specs.Amount: amount,
		specs.TransmissionDateTime: "1125101500", specs.STAN: "000001", specs.TerminalID: "TERM0001",
		specs.MerchantID: "MERCHANT0000001", specs.Currency: "410",
	}
}

func with(m map[int]string, id int, v string) map[int]string {
	out := map[int]string{}
	for k, val := range m {
		out[k] = val
	}
	if v == "" {
		delete(out, id)
	} else {
		out[id] = v
	}
	return out
}

func TestPipelineOutcomes(t *testing.T) {
	good := purchase("9410000000000005", "000000015000")
	tests := []struct {
		name     string
		mti      string
		fields   map[int]string
		upErr    error
		wantCode codes.Code
		wantSent bool
	}{
		{"approved", "0200", good, nil, codes.Approved, true},
		{"issuer decline passes through", "0200", with(good, specs.Amount, "000000005100"), nil, "51", true},
		{"authorisation", "0100", good, nil, codes.Approved, true},
		{"no route", "0200", with(good, specs.PAN, "4111111111111111"), nil, codes.NoRoute, false},
		{"luhn failure", "0200", with(good, specs.PAN, "9410000000000006"), nil, codes.InvalidCard, false},
		{"amount zero", "0200", with(good, specs.Amount, "000000000000"), nil, codes.InvalidAmount, false},
		{"amount not numeric", "0200", with(good, specs.Amount, "0000000012AB"), nil, codes.FormatError, false},
		{"missing STAN", "0200", with(good, specs.STAN, ""), nil, codes.FormatError, false},
		{"missing card", "0200", with(good, specs.PAN, ""), nil, codes.FormatError, false},
		{"bad currency", "0200", with(good, specs.Currency, "KRW"), nil, codes.FormatError, false},
		{"track 2 only", "0200", with(with(good, specs.PAN, ""), specs.Track2, "9410000000000005=28121010000"), nil, codes.Approved, true},
		{"track 2 and DE 2 disagree", "0200", with(good, specs.Track2, "9420000000000003=28121010000"), nil, codes.FormatError, false},
		{"unsupported MTI", "0600", good, nil, codes.InvalidTxn, false},
		{"issuer down", "0200", good, errUpstreamDown, codes.IssuerUnavailable, true},
		{"echo", "0800", map[int]string{specs.STAN: "000001", specs.NetworkMgmtCode: "301"}, nil, codes.Approved, false},
		{"unknown network code", "0800", map[int]string{specs.STAN: "000001", specs.NetworkMgmtCode: "999"}, nil, codes.InvalidTxn, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect), err: tt.upErr}
			h := newChain(t, up)
			txn := &Txn{Request: request(t, tt.mti, tt.fields), MTI: tt.mti, Received: time.Now()}
			_ = Process(context.Background(), h, txn)
			if txn.Code != tt.wantCode {
				t.Fatalf("code = %s (%s), want %s", txn.Code, txn.Reason, tt.wantCode)
			}
			if (up.got != nil) != tt.wantSent {
				t.Fatalf("sent to issuer = %v, want %v", up.got != nil, tt.wantSent)
			}
			resp, err := Respond(txn)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := resp.Pack(); err != nil {
				t.Fatalf("response does not pack: %v", err)
			}
			if rc, _ := resp.GetString(specs.ResponseCode); rc != string(tt.wantCode) {
				t.Errorf("DE 39 = %s", rc)
			}
			if stan, _ := resp.GetString(specs.STAN); stan != tt.fields[specs.STAN] {
				t.Errorf("response STAN %q is not the terminal's", stan)
			}
		})
	}
}

func TestMappingToIssuer(t *testing.T) {
	up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}
	h := newChain(t, up)
	req := request(t, "0200", with(purchase("9410000000000005", "000000015000"), specs.MAC, ""))
	_ = req.BinaryField(specs.MAC, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	txn := &Txn{Request: req, MTI: "0200"}
	if err := Process(context.Background(), h, txn); err != nil {
		t.Fatal(err)
	}
	got := up.got
	for _, id := range []int{specs.PAN, specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime, specs.TerminalID, specs.MerchantID, specs.Currency} {
		a, _ := req.GetString(id)
		b, _ := got.GetString(id)
		if a != b {
			t.Errorf("DE %d: terminal %q, issuer %q", id, a, b)
		}
	}
	if got.GetField(specs.MAC) != nil {
		t.Error("terminal MAC forwarded to the issuer")
	}
	resp, _ := Respond(txn)
	for id, want := range map[int]string{specs.ApprovalCode: "A1B2C3", specs.RRN: "512345000777", specs.STAN: "000001", specs.ResponseCode: "00"} {
		if v, _ := resp.GetString(id); v != want {
			t.Errorf("response DE %d = %q, want %q", id, v, want)
		}
	}
	if mti, _ := resp.GetMTI(); mti != "0210" {
		t.Errorf("MTI %s", mti)
	}
}

func TestPanicIsAnswered96(t *testing.T) {
	boom := Stage{Name: "boom", Wrap: func(Handler) Handler {
		return HandlerFunc(func(context.Context, *Txn) error { panic("stage bug") })
	}}
	txn := &Txn{Request: request(t, "0200", purchase("9410000000000005", "000000000001")), MTI: "0200"}
	err := Process(context.Background(), Chain([]Stage{boom}, Done), txn)
	var pe *PanicError
	if !errors.As(err, &pe) || txn.Code != codes.SystemError {
		t.Fatalf("err %v code %s", err, txn.Code)
	}
}

// BenchmarkPipeline measures the switch's own per-message work: validate,
// route, map to the issuer dialect, take the answer and build the response
// (the issuer answers in-process, no network).
func BenchmarkPipeline(b *testing.B) {
	up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}
	h := newChain(b, up)
	fields := purchase("9410000000000005", "000000015000")
	b.ReportAllocs()
	for b.Loop() {
		txn := &Txn{Request: request(b, "0200", fields), MTI: "0200"}
		if err := Process(context.Background(), h, txn); err != nil || txn.Code != codes.Approved {
			b.Fatal(err, txn.Code)
		}
		resp, err := Respond(txn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := resp.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}
