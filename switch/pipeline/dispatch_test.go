package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// TestListOrderIsEnforced: a list that would send a request before it is
// journaled (or journal it before its STAN is assigned, or without a stage
// that journals the outcome) is refused when the dispatcher is built.
func TestListOrderIsEnforced(t *testing.T) {
	l := Ledger{}
	sale := []Stage{JournalSale(l, nil), MapRequest(), AssignIDs(), RecordSale(l), Forward(), TakeAnswer()}
	tests := []struct {
		name   string
		stages []Stage
		want   string // "" = accepted
	}{
		{"sale in order", sale, ""},
		{"forward before record", []Stage{JournalSale(l, nil), MapRequest(), AssignIDs(), Forward(), RecordSale(l)}, `"forward" comes before any stage that journals the request`},
		{"no record at all", []Stage{JournalSale(l, nil), MapRequest(), AssignIDs(), Forward()}, `"forward" comes before any stage that journals the request`},
		{"record before the STAN", []Stage{JournalSale(l, nil), MapRequest(), RecordSale(l), AssignIDs(), Forward()}, `"record" comes before any stage that assigns the issuer STAN`},
		{"outcome after the record", []Stage{MapRequest(), AssignIDs(), RecordSale(l), JournalSale(l, nil), Forward()}, `"record" comes before any stage that journals the outcome`},
		{"give-back in order", []Stage{GiveBack(l), AssignIDs(), RecordGiveBack(l), Forward()}, ""},
		{"give-back forward first", []Stage{GiveBack(l), Forward(), AssignIDs(), RecordGiveBack(l)}, `"forward" comes before`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDispatcher(map[ListKey][]Stage{{ClassSale, InstrumentCard}: tt.stages}, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A queued give-back has no terminal: no outcome stage is required,
	// the record before the send is.
	if _, err := NewDispatcher(map[ListKey][]Stage{{ClassQueued, InstrumentCard}: {AssignIDs(), Forward(), RecordQueued(nil)}}, nil); err == nil {
		t.Fatal("queued list forwarding before its record accepted")
	}
	if _, err := NewDispatcher(CardLists(Deps{}), nil); err != nil {
		t.Fatalf("the card lists: %v", err)
	}
}

// TestDispatchByClass: each class goes down its own list; an instrument
// without lists is refused with 12.
func TestDispatchByClass(t *testing.T) {
	var ran []string
	mark := func(name string) Stage {
		return Stage{Name: name, Wrap: func(next Handler) Handler {
			return HandlerFunc(func(ctx context.Context, t *Txn) error {
				ran = append(ran, name)
				t.Code = codes.Approved
				return next.Handle(ctx, t)
			})
		}}
	}
	lists := map[ListKey][]Stage{}
	for _, c := range []Class{ClassSale, ClassGiveBack, ClassReconcile, ClassNetwork, ClassOther} {
		lists[ListKey{c, InstrumentCard}] = []Stage{mark(string(c))}
	}
	d, err := NewDispatcher(lists, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mti, proc, instrument string
		want                  string
	}{
		{"0100", "000000", "", "sale"},
		{"0200", "000000", InstrumentCard, "sale"},
		{"0200", "200000", "", "giveback"},
		{"0400", "000000", "", "giveback"},
		{"0500", "", "", "reconcile"},
		{"0800", "", "", "network"},
		{"0600", "", "", "other"},
		{"0200", "000000", "wallet", ""},
	}
	for _, tt := range tests {
		ran = nil
		fields := map[int]string{specs.STAN: "000001"}
		if tt.proc != "" {
			fields[specs.ProcessingCode] = tt.proc
		}
		txn := &Txn{MTI: tt.mti, Request: request(t, tt.mti, fields), Policy: ListenerPolicy{Instrument: tt.instrument}}
		_ = Process(context.Background(), d, txn)
		got := strings.Join(ran, ",")
		if got != tt.want {
			t.Errorf("%s %s by %q ran %q, want %q", tt.mti, tt.proc, tt.instrument, got, tt.want)
		}
		if tt.want == "" && txn.Code != codes.InvalidTxn {
			t.Errorf("unknown instrument answered %s, want 12", txn.Code)
		}
	}
}

// TestStageTimer: every stage of the lists has its series from the start,
// and a request observes each stage it passes once.
func TestStageTimer(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := &fakeIssuer{spec: specs.MustLoad(specs.IssuerDialect)}
	d, err := NewDispatcher(map[ListKey][]Stage{
		{ClassSale, InstrumentCard}: {Validate(), Route(testRoutes{up: up}), {Name: "refuse", Wrap: func(Handler) Handler {
			return HandlerFunc(func(context.Context, *Txn) error { return Declinef(ErrInvalidTxn, "refused") })
		}}, TakeAnswer()},
	}, NewStageTimer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if n := seriesCount(t, reg); n != 4 {
		t.Fatalf("%d series before any request, want 4", n)
	}
	txn := &Txn{MTI: "0200", Request: request(t, "0200", purchase("9410000000000005", "000000001000"))}
	_ = Process(context.Background(), d, txn)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			stage := m.GetLabel()[0].GetValue()
			want := uint64(1)
			if stage == "answer" {
				want = 0 // never reached: the request was refused before
			}
			if got := m.GetHistogram().GetSampleCount(); got != want {
				t.Errorf("stage %s observed %d times, want %d", stage, got, want)
			}
		}
	}
}

func seriesCount(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}
