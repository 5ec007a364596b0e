package sqlstore

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

var (
	question = Dialect{Param: func(int, string) string { return "?" }, Column: func(c string) string { return c }}
	dollar   = Dialect{Param: func(n int, typ string) string {
		if typ != "" {
			return "$" + strconv.Itoa(n) + "::" + typ
		}
		return "$" + strconv.Itoa(n)
	}, Column: func(c string) string { return c }}
)

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		d       Dialect
		q, want string
	}{
		{question, "a = ? AND b IN (?, '')", "a = ? AND b IN (?, '')"},
		{dollar, "a = ? AND b IN (?, '')", "a = $1 AND b IN ($2, '')"},
		{dollar, "SELECT 1", "SELECT 1"},
	} {
		if got := tc.d.Bind(tc.q); got != tc.want {
			t.Errorf("Bind(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestSearch(t *testing.T) {
	from := time.UnixMilli(1000)
	conds := TxnConditions(store.TxnFilter{RRN: "512345000001", State: store.Approved, From: from})
	for _, tc := range []struct {
		name  string
		d     Dialect
		conds []Condition
		extra string
		want  string
		args  []any
	}{
		{"no conditions", dollar, nil, "", "SELECT c FROM t ORDER BY id LIMIT $1", []any{10}},
		{"only extra", question, nil, " AND rrn <> ''", "SELECT c FROM t WHERE rrn <> '' ORDER BY id LIMIT ?", []any{10}},
		{"dollar", dollar, conds, "", "SELECT c FROM t WHERE rrn = $1 AND state = $2 AND created_at >= $3 ORDER BY id LIMIT $4",
			[]any{"512345000001", "approved", int64(1000), 10}},
		{"question with extra", question, conds, " AND rrn <> ''",
			"SELECT c FROM t WHERE rrn = ? AND state = ? AND created_at >= ? AND rrn <> '' ORDER BY id LIMIT ?",
			[]any{"512345000001", "approved", int64(1000), 10}},
	} {
		q, args := tc.d.Search("c", "t", tc.conds, tc.extra, "id", 10)
		if q != tc.want || !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s: %q %v, want %q %v", tc.name, q, args, tc.want, tc.args)
		}
	}
}

func TestOpenBatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closed map[string]int64
		after  string
		args   []any
	}{
		{"never closed", map[string]int64{}, "$2::bigint", []any{"T1", int64(0)}},
		{"closed without currency", map[string]int64{"": 7}, "$2::bigint", []any{"T1", int64(7)}},
		{"closed per currency after a close of all", map[string]int64{"": 7, "840": 5},
			"CASE currency WHEN $2::text THEN $3::bigint ELSE $4::bigint END", []any{"T1", "840", int64(7), int64(7)}},
	} {
		q, args := dollar.OpenBatches("T1", tc.closed)
		want := "SELECT " + TxnColumns + " FROM txns WHERE terminal_id = $1 AND id > " + tc.after + " ORDER BY id"
		if q != want || !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s: %q %v, want ... id > %s %v", tc.name, q, args, tc.after, tc.args)
		}
	}
}

func TestDecisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  error
		want error
	}{
		{"no row", NotOwned(1, "", false, "a", store.ErrNotFound), store.ErrNotFound},
		{"row from before instances", NotOwned(1, "", true, "a", store.ErrNotReserved), store.ErrNotReserved},
		{"own row", NotOwned(1, "a", true, "a", store.ErrNotReserved), store.ErrNotReserved},
		{"taken over", NotOwned(1, "b", true, "a", store.ErrNotFound), store.ErrLeaseLost},
		{"cancel of nothing", CheckReserve(store.Txn{OriginalID: 1}), store.ErrExceeds},
		{"cancel of no sale", CheckReserve(store.Txn{Amount: 1}), store.ErrExceeds},
	} {
		if !errors.Is(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if err := CheckReserve(store.Txn{OriginalID: 1, Amount: 1}); err != nil {
		t.Errorf("CheckReserve of a cancel: %v", err)
	}
	stored := store.Txn{ID: 9}
	if got, err := RefusedCancel(store.Txn{}, stored, nil); got.ID != 9 || !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("RefusedCancel of a repeat: %v %v", got, err)
	}
	if _, err := RefusedCancel(store.Txn{}, store.Txn{}, store.ErrNotFound); !errors.Is(err, store.ErrExceeds) {
		t.Errorf("RefusedCancel of a new key: %v", err)
	}
	if _, err := RefusedCancel(store.Txn{}, store.Txn{}, store.ErrUnavailable); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("RefusedCancel with the look-up failing: %v", err)
	}
	for n, want := range map[int]error{0: store.ErrNotFound, 1: nil, 2: store.ErrAmbiguous} {
		if _, err := OneSale(make([]store.Txn, n)); !errors.Is(err, want) {
			t.Errorf("OneSale of %d: %v, want %v", n, err, want)
		}
	}
}

func TestSAFActions(t *testing.T) {
	pending := store.SAFItem{TxnID: 3, Kind: store.KindReversal, Amount: 500, Route: "card-a", State: store.SAFPending}
	review, done := pending, pending
	review.State, done.State = store.SAFReview, store.SAFDone
	retry := func(it store.SAFItem) SAFAction { return RetryNowAction(it, "alice") }
	resolve := func(it store.SAFItem) SAFAction { return ResolveAction(it, "bob", "refunded") }
	for _, tc := range []struct {
		name   string
		items  []store.SAFItem
		action func(store.SAFItem) SAFAction
		want   error
		detail string
	}{
		{"retry pending", []store.SAFItem{pending}, retry, nil, "reversal of 500 on card-a (was pending): retry now, by alice"},
		{"retry review", []store.SAFItem{review}, retry, nil, "reversal of 500 on card-a (was review): retry now, by alice"},
		{"retry done", []store.SAFItem{done}, retry, store.ErrSAFState, ""},
		{"resolve review", []store.SAFItem{review}, resolve, nil, "reversal of 500 on card-a resolved by bob: refunded"},
		{"resolve pending", []store.SAFItem{pending}, resolve, store.ErrSAFState, ""},
		{"no item", nil, retry, store.ErrNotFound, ""},
	} {
		it, a, err := DecideAction(tc.items, tc.action)
		if !errors.Is(err, tc.want) || (tc.want == nil && (a.Detail != tc.detail || it.TxnID != 3)) {
			t.Errorf("%s: %v %q, want %v %q", tc.name, err, a.Detail, tc.want, tc.detail)
		}
	}
}

func TestResultEvent(t *testing.T) {
	it := store.SAFItem{Kind: store.KindRefund, Amount: 700, Route: "prepaid", Attempts: 2}
	next := time.UnixMilli(10_000)
	for _, tc := range []struct {
		state, lastErr, kind, detail string
		lease                        int64
	}{
		{store.SAFDone, "", "reversal_acknowledged", "refund of 700 on prepaid, attempt 3", 0},
		{store.SAFPending, "timeout", "reversal_retry", "refund of 700 on prepaid, attempt 3: timeout", 15_000},
		{store.SAFReview, "expired", "reversal_manual_review", "refund of 700 on prepaid, attempt 3: expired", 0},
	} {
		kind, detail := ResultEvent(it, tc.state, tc.lastErr)
		if kind != tc.kind || detail != tc.detail {
			t.Errorf("%s: %q %q, want %q %q", tc.state, kind, detail, tc.kind, tc.detail)
		}
		if got := ResultLease(tc.state, next, 5*time.Second); got != tc.lease {
			t.Errorf("%s: lease %d, want %d", tc.state, got, tc.lease)
		}
	}
}

func TestSortClaimed(t *testing.T) {
	at := func(ms int64, id int64) store.SAFItem { return store.SAFItem{ID: id, NextAt: time.UnixMilli(ms)} }
	items := []store.SAFItem{at(20, 1), at(10, 3), at(10, 2), at(5, 9)}
	SortClaimed(items)
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	if !reflect.DeepEqual(ids, []int64{9, 2, 3, 1}) {
		t.Errorf("order %v, want [9 2 3 1]", ids)
	}
}

// fakeRows are rows of (key, value).
type fakeRows struct {
	keys []string
	vals []int64
	i    int
	err  error
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= len(r.keys) }
func (r *fakeRows) Err() error { return r.err }
func (r *fakeRows) Scan(dest ...any) error {
	*dest[0].(*string) = r.keys[r.i-1]
	switch v := dest[1].(type) {
	case *int:
		*v = int(r.vals[r.i-1])
	case *int64:
		*v = r.vals[r.i-1]
	}
	return nil
}

func TestCountsAndRows(t *testing.T) {
	counts, err := SAFCounts(&fakeRows{keys: []string{store.SAFReview}, vals: []int64{4}})
	want := map[string]int{store.SAFPending: 0, store.SAFReview: 4, store.SAFDone: 0, store.SAFResolved: 0}
	if err != nil || !reflect.DeepEqual(counts, want) {
		t.Errorf("SAFCounts: %v %v, want %v", counts, err, want)
	}
	lost := errors.New("connection lost")
	if _, err := ClosedBatches(&fakeRows{err: lost}); !errors.Is(err, lost) {
		t.Errorf("ClosedBatches with rows failing: %v", err)
	}
	scanKey := func(r Row) (string, error) {
		var k string
		var v int64
		return k, r.Scan(&k, &v)
	}
	if _, err := One(&fakeRows{}, scanKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("One of no rows: %v", err)
	}
	if _, err := One(&fakeRows{err: lost}, scanKey); !errors.Is(err, lost) {
		t.Errorf("One with rows failing: %v", err)
	}
	if got, err := All(&fakeRows{keys: []string{"a", "b"}, vals: []int64{1, 2}}, scanKey); err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("All: %v %v", got, err)
	}
}
