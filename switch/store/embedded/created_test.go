package embedded

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// TestTimeWindowsByIDRange: Between and Search's time window find exactly
// the rows created in it through the id range (no created_at index), a
// row stamped earlier than the one before it (the clock set back) included.
func TestTimeWindowsByIDRange(t *testing.T) {
	s := open(t, false)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	// Minutes after t0 of each row, in the order recorded: the clock goes
	// back 20 minutes after the fourth row.
	minutes := []int{0, 30, 60, 90, 70, 120, 180, 24 * 60, 24*60 + 1}
	created := map[int64]time.Time{}
	for i, m := range minutes {
		at := t0.Add(time.Duration(m) * time.Minute)
		s.j.now = func() time.Time { return at }
		row, err := s.Sales().Begin(ctx, sale(fmt.Sprintf("%06d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		created[row.ID] = at
	}
	for _, tc := range []struct{ from, to int }{
		{0, 24 * 60}, {60, 90}, {65, 95}, {75, 121}, {24 * 60, 48 * 60}, {-60, 0}, {-600, 5000}, {181, 24 * 60},
	} {
		from, to := t0.Add(time.Duration(tc.from)*time.Minute), t0.Add(time.Duration(tc.to)*time.Minute)
		var want []int64
		for id, at := range created {
			if !at.Before(from) && at.Before(to) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		rows, err := s.Lookup().Between(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rows); !slices.Equal(got, want) {
			t.Errorf("Between %d..%d min: ids %v, want %v", tc.from, tc.to, got, want)
		}
		found, err := s.Lookup().Search(ctx, store.TxnFilter{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		got := ids(found)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("Search %d..%d min: ids %v, want %v", tc.from, tc.to, got, want)
		}
	}
}

// TestTimeWindowReadsItsIDRange: a time window is read through the
// table's id (rowid) range, not by reading the whole journal.
func TestTimeWindowReadsItsIDRange(t *testing.T) {
	s := open(t, false)
	conds, err := s.j.idsCreated(context.Background(), time.Now().Add(-time.Hour), time.Now())
	if err != nil || len(conds) != 2 {
		t.Fatalf("conditions %+v, %v", conds, err)
	}
	q, args := searchStatement(store.TxnFilter{From: time.Now().Add(-time.Hour), To: time.Now()}, conds)
	if plan := queryPlan(t, s.j.db.R, q, args...); !strings.Contains(plan, "rowid>") || !strings.Contains(plan, "rowid<") {
		t.Fatalf("plan %q does not read an id range", plan)
	}
}

func ids(rows []store.Txn) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// TestClockSetBackBeyondTheSlack: rows stamped after the wall clock went
// back further than clockSlack are still in every time window that holds
// them (the journal notes the step and reads windows by created_at from
// then on), in this handle and in a handle opened afterwards.
func TestClockSetBackBeyondTheSlack(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, false)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	stamps := []time.Duration{0, time.Minute, 2 * time.Minute, -3 * time.Hour, -3*time.Hour + time.Minute}
	for i, d := range stamps {
		at := t0.Add(d)
		s.j.now = func() time.Time { return at }
		if _, err := s.Sales().Begin(ctx, sale(fmt.Sprintf("%06d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	from, to := t0.Add(-3*time.Hour-time.Minute), t0.Add(-2*time.Hour)
	check := func(who string, s *Store) {
		t.Helper()
		rows, err := s.Lookup().Between(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Errorf("%s: Between found %d rows created after the clock went back 3 h, want 2", who, len(rows))
		}
	}
	check("the handle that saw the step", s)
	check("a handle opened afterwards", openAt(t, dir, false))
}

// TestClockSetBackWithinOneGroup: the clock going back further than the
// slack between two rows of one commit group is noticed as well as between
// groups (the mark compares against the group's own stamps too).
func TestClockSetBackWithinOneGroup(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixMilli()
	for _, tc := range []struct {
		name   string
		stamps []time.Duration
		mark   bool
	}{
		{"forward", []time.Duration{0, time.Minute}, false},
		{"back within the slack", []time.Duration{0, -30 * time.Minute}, false},
		{"back beyond the slack", []time.Duration{0, -2 * time.Hour}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j journal
			for _, d := range tc.stamps {
				j.stamp(t0 + d.Milliseconds())
			}
			if j.clock.mark != tc.mark {
				t.Fatalf("stamps %v in one group: mark %v, want %v", tc.stamps, j.clock.mark, tc.mark)
			}
		})
	}
}
