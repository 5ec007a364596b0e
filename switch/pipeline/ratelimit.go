package pipeline

import (
	"context"
	"sync"

	"golang.org/x/time/rate"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// TerminalLimits rate-limits requests per terminal ID (DE 41), so one
// runaway terminal cannot take the switch from the others. The zero value
// is not usable; see NewTerminalLimits.
type TerminalLimits struct {
	perSecond int
	mu        sync.Mutex
	m         map[string]*rate.Limiter
}

// maxLimiters bounds the table; past it, it starts afresh (a flood of
// invented terminal IDs cannot grow memory without end).
const maxLimiters = 200_000

// NewTerminalLimits allows perSecond requests a second per terminal, in
// bursts of twice that; perSecond < 0 allows everything.
func NewTerminalLimits(perSecond int) *TerminalLimits {
	return &TerminalLimits{perSecond: perSecond}
}

// Allow reports whether terminalID may send one more request now, and
// counts it when so.
func (tl *TerminalLimits) Allow(terminalID string) bool {
	if tl.perSecond < 0 {
		return true
	}
	tl.mu.Lock()
	lim, ok := tl.m[terminalID]
	if !ok {
		if tl.m == nil || len(tl.m) >= maxLimiters {
			tl.m = make(map[string]*rate.Limiter)
		}
		lim = rate.NewLimiter(rate.Limit(tl.perSecond), 2*tl.perSecond)
		tl.m[terminalID] = lim
	}
	tl.mu.Unlock()
	return lim.Allow()
}

// RateLimit applies a listener's per-terminal limit inside the pipeline:
// placed right after VerifyMAC, a keyed listener counts only requests whose
// MAC verified, so a sender without the key cannot spend a keyed terminal's
// allowance by putting its terminal ID in DE 41. The limits are the
// listener policy's (nil: the request goes on; an unkeyed listener limits
// before the pipeline instead). A request over the limit is answered 91
// and refused is called with its listener.
func RateLimit(refused func(listener string)) Stage {
	return Stage{Name: "ratelimit", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			lim := t.Policy.Limits
			if lim == nil {
				return next.Handle(ctx, t)
			}
			if tid, _ := t.Request.GetString(specs.TerminalID); !lim.Allow(tid) {
				refused(t.Listener)
				t.Code, t.Reason = codes.IssuerUnavailable, ReasonRateLimit
				return nil
			}
			return next.Handle(ctx, t)
		})
	}}
}

// ReasonRateLimit is Txn.Reason for a request refused by a per-terminal
// rate limit.
const ReasonRateLimit = "terminal over its rate limit"
