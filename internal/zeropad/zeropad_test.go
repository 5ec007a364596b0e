package zeropad

import (
	"fmt"
	"testing"
)

func TestPadIsSprintf(t *testing.T) {
	for _, tt := range []struct {
		n     uint64
		width int
	}{{0, 6}, {1, 6}, {999999, 6}, {1000000, 6}, {42, 10}, {9999999999, 10}, {7, 2}, {123, 2}, {5, 0}} {
		want := fmt.Sprintf("%0*d", tt.width, tt.n)
		if got := Pad(tt.n, tt.width); got != want {
			t.Errorf("Pad(%d, %d) = %q, want %q", tt.n, tt.width, got, want)
		}
	}
}

func TestPadAllocatesOnlyItsString(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Pad(123456, 12) }); n > 1 {
		t.Fatalf("%v allocations, want at most 1", n)
	}
}
