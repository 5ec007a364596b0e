package groupcommit

import (
	"slices"
	"testing"
)

func TestTakeAndDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		waiting int
		max     int
		want    []int
	}{
		{"nothing waiting", 0, 8, []int{0}},
		{"all that waits", 3, 8, []int{0, 1, 2, 3}},
		{"up to max in all", 10, 4, []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan int, 16)
			for i := range tc.waiting {
				ch <- i + 1
			}
			if got := Take(ch, []int{0}, tc.max); !slices.Equal(got, tc.want) {
				t.Errorf("Take: %v, want %v", got, tc.want)
			}
			left := max(0, tc.waiting-(tc.max-1))
			if len(ch) != left {
				t.Errorf("%d left waiting, want %d", len(ch), left)
			}
			if got := Drain(ch, nil, 16); len(got) != left || len(ch) != 0 {
				t.Errorf("Drain took %d and left %d, want %d and none", len(got), len(ch), left)
			}
		})
	}
}
