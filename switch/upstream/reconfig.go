package upstream

import (
	"context"
	"reflect"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
)

// WithSTANsOf makes the link share old's STAN ownership: a reload that
// replaces a route's link keeps one STAN space per route, so a request of
// the old link in flight, a quarantined STAN and a pending give-back's
// STAN are never handed out by the new one.
func WithSTANsOf(old *Link) Option {
	return func(l *Link) { l.stans = old.stans }
}

// Config is the route configuration the link was built with (its
// endpoints and policy as built: see Endpoints and Policy).
func (l *Link) Config() config.IssuerRoute { return l.cfg }

// Policy is the endpoint selection policy in force.
func (l *Link) Policy() string { return *l.policy.Load() }

// SameLinkSettings reports whether a running link for a serves b as it
// is, its endpoints and policy aside (PrepareEndpoints changes them in
// place): only BINs, addresses and endpoints, policy, PIN key, give-back
// and settle codes differ.
func SameLinkSettings(a, b config.IssuerRoute) bool {
	strip := func(r config.IssuerRoute) config.IssuerRoute {
		r = r.WithLinkDefaults()
		r.BINs, r.Addrs, r.Endpoints, r.PIN, r.GiveBack, r.SettleCodes, r.Policy = nil, nil, nil, nil, "", nil, ""
		r.Mapping = config.Mapping{} // applied per request (the switch's route mappings)
		return r
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// EndpointChange is a prepared change of a link's endpoints: Commit
// applies it (connecting the new ones, then retiring the removed ones
// once their requests are answered), Abort drops it.
type EndpointChange struct {
	l              *Link
	policy         string
	next           []*endpoint
	added, removed []*endpoint
}

// PrepareEndpoints builds the endpoints of list that the link does not
// have yet (an endpoint whose address, priority, links or TLS changed is
// a new one) without connecting them. Nothing changes until Commit.
func (l *Link) PrepareEndpoints(list []config.Endpoint, policy string) (*EndpointChange, error) {
	cur := *l.eps.Load()
	if policy == "" {
		policy = config.PolicyPriority
	}
	ch := &EndpointChange{l: l, policy: policy}
	kept := map[*endpoint]bool{}
	for _, ec := range list {
		ec.Links = max(ec.Links, 1)
		var same *endpoint
		for _, e := range cur {
			if !kept[e] && reflect.DeepEqual(e.cfg, ec) {
				same = e
				break
			}
		}
		if same != nil {
			kept[same] = true
			ch.next = append(ch.next, same)
			continue
		}
		e, err := l.newEndpoint(ec)
		if err != nil {
			ch.Abort()
			return nil, err
		}
		ch.added = append(ch.added, e)
		ch.next = append(ch.next, e)
	}
	for _, e := range cur {
		if !kept[e] {
			ch.removed = append(ch.removed, e)
		}
	}
	return ch, nil
}

// Empty reports a change that changes nothing.
func (ch *EndpointChange) Empty() bool {
	return len(ch.added) == 0 && len(ch.removed) == 0 && ch.policy == ch.l.Policy()
}

// Abort drops the endpoints the change built.
func (ch *EndpointChange) Abort() {
	for _, e := range ch.added {
		_ = e.pool().CloseCtx(context.Background())
	}
}

// Commit connects the new endpoints (waiting up to the connect timeout
// for their sign-on), makes the new list the link's, and retires the
// removed endpoints in the background: no new request goes to them, and
// their links close once the requests on them are answered or timed out.
func (ch *EndpointChange) Commit(ctx context.Context) {
	l := ch.l
	for _, e := range ch.added {
		_ = e.pool().ConnectCtx(ctx) // with no minimum, only a closed pool fails
	}
	waitUp(ctx, ch.added, l.cfg.ConnectTimeout)
	l.eps.Store(&ch.next)
	l.policy.Store(&ch.policy)
	for _, e := range ch.removed {
		e.retired.Store(true)
		go l.retireEndpoint(e)
	}
	if !ch.Empty() {
		l.log.Info("issuer endpoints changed", zap.Int("added", len(ch.added)), zap.Int("removed", len(ch.removed)), zap.Int("endpoints", len(ch.next)))
	}
}

// waitUp waits until every endpoint has a signed-on link, or up to d.
func waitUp(ctx context.Context, eps []*endpoint, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, e := range eps {
		for e.up() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// retireEndpoint closes e's links once no request is on them (at most a
// timeout and a margin later: a request still waiting then is answered
// 91 and reversed, as on any link loss).
func (l *Link) retireEndpoint(e *endpoint) {
	deadline := time.Now().Add(l.cfg.Timeout + 5*time.Second)
	for e.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.pool().CloseCtx(ctx); err != nil {
		l.log.Warn("closing a removed issuer endpoint", zap.String("addr", e.cfg.Addr), zap.Error(err))
	}
}

// WaitUp waits until the link has a signed-on connection on each
// endpoint, or up to the connect timeout; false when one is still down.
func (l *Link) WaitUp(ctx context.Context) bool {
	eps := *l.eps.Load()
	waitUp(ctx, eps, l.cfg.ConnectTimeout)
	for _, e := range eps {
		if e.up() == 0 {
			return false
		}
	}
	return true
}

// Retire closes a link a reload replaced, in the background, once every
// request on it is answered or timed out (late takers of the old link
// still find it connected meanwhile). done, if not nil, is called after.
func (l *Link) Retire(done func(error)) {
	go func() {
		time.Sleep(time.Second) // requests that took the old link just before the swap
		deadline := time.Now().Add(l.cfg.Timeout + 5*time.Second)
		for l.inFlight() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := l.Close(ctx)
		if done != nil {
			done(err)
		}
	}()
}

func (l *Link) inFlight() int64 {
	var n int64
	for _, e := range *l.eps.Load() {
		n += e.inflight.Load()
	}
	return n
}
