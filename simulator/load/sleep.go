package load

import (
	"context"
	"time"
)

// napSlice bounds one nap so that an interrupt is noticed quickly.
const napSlice = 50 * time.Millisecond

// sleepUntil waits until at and reports whether ctx is still live.
func sleepUntil(ctx context.Context, at time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(at)
		if d <= 0 {
			return true
		}
		nap(min(d, napSlice))
	}
}
