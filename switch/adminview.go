package payswitch

import (
	"context"

	"github.com/kbpay/switch/switch/admin"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/upstream"
)

// adminView is the switch as the admin endpoint (switch/admin) sees it.
type adminView struct{ s *Switch }

var _ admin.Switch = adminView{}

func (v adminView) Draining() bool                     { return v.s.txns.Draining() }
func (v adminView) Accepting() bool                    { return v.s.accepting.Load() }
func (v adminView) Journal() (bool, string)            { return v.s.guard.Status() }
func (v adminView) ActiveRoutes() []config.IssuerRoute { return v.s.running.ActiveRoutes() }
func (v adminView) Links() map[string]*upstream.Link   { return v.s.running.Links() }
func (v adminView) ListenerLinks() any                 { return v.s.listeners.Links() }

func (v adminView) Listeners() []admin.Listener {
	var out []admin.Listener
	for _, l := range v.s.listeners.List() {
		st := admin.Listener{Name: l.Name(), Addr: l.Config().Addr, Connections: l.Connections()}
		if addr := l.Addr(); addr != "" {
			st.Addr = addr
		}
		out = append(out, st)
	}
	return out
}

func (v adminView) ReloadFile(ctx context.Context) (any, error) {
	sum, err := v.s.ReloadFile(ctx)
	return struct {
		Applied bool `json:"applied"`
		ReloadSummary
	}{true, sum}, err
}

func (v adminView) RetrySAF(ctx context.Context, id int64, who string) (store.SAFItem, error) {
	return v.s.saf.RetryNow(ctx, id, who)
}

func (v adminView) ResolveSAF(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	return v.s.saf.Resolve(ctx, id, who, reason)
}
