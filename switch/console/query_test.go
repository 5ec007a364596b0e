package console

import (
	"math"
	"net/url"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	for _, tt := range []struct {
		q, shown      string
		card          bool
		first6, last4 string
		unchanged     bool
	}{
		{"600000000001", "600000000001", false, "", "", true},
		{" TERM0001 ", "TERM0001", false, "", "", true},
		{"9410000000000005", "941000******0005", true, "941000", "0005", false},
		{"9410 0000 0000 0005", "941000******0005", true, "941000", "0005", false},
		{"4111-1111-1111-1111", "411111******1111", true, "411111", "1111", false},
		{"4111111111111111111", "411111*********1111", true, "411111", "1111", false},
		{"941000******0005", "941000******0005", true, "941000", "0005", true},
		{"941000...0005", "941000******0005", true, "941000", "0005", false},
		{"941000xx0005", "941000******0005", true, "941000", "0005", false},
		{"card 4111 1111 1111 1111 please", "card 411111******1111 please", false, "", "", false},
		{"", "", false, "", "", true},
	} {
		t.Run(tt.q, func(t *testing.T) {
			q := parseQuery(url.Values{"q": {tt.q}})
			if q.Q != tt.shown || q.card != tt.card || q.first6 != tt.first6 || q.last4 != tt.last4 || q.unchanged != tt.unchanged {
				t.Fatalf("got %+v", q)
			}
		})
	}
}

func TestQuantileOverTheWindow(t *testing.T) {
	bounds := []float64{0.01, 0.1, 1}
	base := Histogram{Bounds: bounds, Counts: []uint64{100, 100, 100}, Count: 100}
	now := Histogram{Bounds: bounds, Counts: []uint64{100, 190, 200}, Count: 200} // 90 in (0.01,0.1], 10 in (0.1,1]
	for _, tt := range []struct {
		q    float64
		h, b Histogram
		want float64
	}{
		{0.5, now, base, 0.01 + 0.09*50/90},
		{0.99, now, base, 0.1 + 0.9*9/10},
		{0.99, base, base, math.NaN()},
		{0.5, Histogram{Bounds: bounds, Counts: []uint64{0, 0, 0}, Count: 4}, Histogram{}, 1}, // all above the last bound
	} {
		got := quantile(tt.q, tt.h, tt.b)
		if !(math.Abs(got-tt.want) < 1e-9 || (math.IsNaN(got) && math.IsNaN(tt.want))) {
			t.Errorf("q%.2f = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestSamplerComparesWithAMinuteAgo(t *testing.T) {
	s := newSampler(time.Minute)
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	if _, ok := s.add(t0, Overview{Instance: "0"}); ok {
		t.Fatal("a first sample has a base")
	}
	for i := 1; i <= 20; i++ {
		base, ok := s.add(t0.Add(time.Duration(i)*5*time.Second), Overview{})
		wantAge := min(time.Duration(i)*5*time.Second, time.Minute+5*time.Second)
		if !ok || t0.Add(time.Duration(i)*5*time.Second).Sub(base.at) > wantAge {
			t.Fatalf("sample %d: base %v %v", i, base.at, ok)
		}
	}
	if len(s.samples) > 14 {
		t.Fatalf("%d samples kept", len(s.samples))
	}
}
