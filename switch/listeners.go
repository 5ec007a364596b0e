package payswitch

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/tlsconf"
)

// The wiring of the terminal and VAN listeners (switch/terminalserver):
// what they get from the switch, and how a reload changes their set.

// newListener builds the listener of lc over the switch's pipeline.
func (s *Switch) newListener(lc config.Listener) (*terminalserver.Listener, error) {
	return terminalserver.New(lc, terminalserver.Deps{
		Ctx: s.ctx, Handler: s.dispatch, PINMAC: s.pinmac, Txns: &s.txns,
		Metrics: s.metrics.server(), Log: s.log,
	})
}

// ListenerAddr returns the bound address of the named listener ("" when
// unknown or not started), for tests that listen on port 0.
func (s *Switch) ListenerAddr(name string) string {
	if l := s.listeners.Find(name); l != nil {
		return l.Addr()
	}
	return ""
}

func (s *Switch) stopListeners() { s.listeners.StopAccepting() }

// listenerNames are the names of the listeners in force.
func (s *Switch) listenerNames() []string {
	var names []string
	for _, l := range s.listeners.List() {
		names = append(names, l.Name())
	}
	return names
}

// listenerPlan is what a reload changes in the listener set, checked and
// bound: added listeners hold their sockets but accept nothing yet.
type listenerPlan struct {
	next    []*terminalserver.Listener // the set after the reload, in configuration order
	added   []*terminalserver.Listener // new, or replacing one of the same name
	removed []*terminalserver.Listener // gone, or replaced
	tls     map[*terminalserver.Listener]*tlsconf.Server
	limits  map[*terminalserver.Listener]config.Listener
}

func (p *listenerPlan) abort() {
	for _, l := range p.added {
		l.Discard()
	}
}

// planListeners builds, binds and key-checks the listeners cfg adds, and
// checks the changes of the running ones: limits and TLS material reload
// in place; any other change (address, framing, dialect, keys, TLS on or
// off, ...) replaces the listener: the old one is removed and a new one
// of the same name added. A port in use or a key the HSM lacks refuses
// the reload.
func (s *Switch) planListeners(cfg config.Config, p *listenerPlan) error {
	cur := s.listeners.List()
	var added []string
	for _, lc := range cfg.Listeners {
		old := s.listeners.Find(lc.Name)
		if old != nil && sameServing(old.Config(), lc) {
			if lc.TLS != nil {
				srv, err := tlsconf.NewServer(*lc.TLS)
				if err != nil {
					return fmt.Errorf("listener %s: %w", lc.Name, err)
				}
				p.tls[old] = srv
			}
			p.limits[old] = lc
			p.next = append(p.next, old)
			continue
		}
		l, err := s.newListener(lc)
		if err != nil {
			return err
		}
		if err := l.BindOrAdopt(s.socketOwner(cfg, lc, old)); err != nil {
			return err
		}
		p.added = append(p.added, l)
		p.next = append(p.next, l)
		added = append(added, lc.Name)
		if old != nil {
			p.removed = append(p.removed, old)
		}
	}
	for _, l := range cur {
		if !slices.ContainsFunc(cfg.Listeners, func(lc config.Listener) bool { return lc.Name == l.Name() }) {
			p.removed = append(p.removed, l)
		}
	}
	return s.checkListenerKeys(cfg, added)
}

// socketOwner is the running listener whose socket the listener lc takes
// over: the one of the same name it replaces, else one at the same address
// that cfg removes (a rename); nil when there is none.
func (s *Switch) socketOwner(cfg config.Config, lc config.Listener, old *terminalserver.Listener) *terminalserver.Listener {
	if old != nil {
		return old
	}
	for _, l := range s.listeners.List() {
		kept := slices.ContainsFunc(cfg.Listeners, func(c config.Listener) bool { return c.Name == l.Name() })
		if !kept && l.Config().Addr == lc.Addr {
			return l
		}
	}
	return nil
}

// sameServing reports two configurations of a listener that differ in
// what reloads in place alone (limits, TLS material).
func sameServing(a, b config.Listener) bool {
	if (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	a.TLS, b.TLS, a.MaxConnections, b.MaxConnections, a.MaxInFlight, b.MaxInFlight = nil, nil, 0, 0, 0, 0
	return reflect.DeepEqual(a, b)
}

// checkListenerKeys refuses PIN and MAC keys of the added listeners that
// the PIN/MAC HSM lacks or holds with the wrong usage (the check at start).
func (s *Switch) checkListenerKeys(cfg config.Config, names []string) error {
	var needs []keyring.Need
	for _, n := range keyring.ForRole(keyring.Needs(cfg), false) {
		for _, name := range names {
			if strings.HasPrefix(n.Where, "listener "+name+" ") {
				needs = append(needs, n)
			}
		}
	}
	return keyring.Missing(s.ctx, s.hsms.PINMAC, needs)
}

// applyListeners puts the planned set in force: added listeners start
// accepting (a replacing one takes over its predecessor's socket first),
// removed ones stop accepting at once and wind down in the background
// (terminalserver.Listener.Retire, bounded by drain_timeout). It returns
// the listeners changed.
func (s *Switch) applyListeners(p *listenerPlan) (changed []string) {
	for l, lc := range p.limits {
		if l.Reconfigure(lc, p.tls[l]) {
			changed = append(changed, lc.Name)
		}
	}
	routes := []string{"none"}
	for _, r := range s.activeRoutes() {
		routes = append(routes, r.Name)
	}
	for _, l := range p.added {
		s.metrics.preinitListener(l.Name(), routes)
		s.listeners.Serve(l)
		changed = append(changed, l.Name())
	}
	s.listeners.Replace(p.next)
	for _, l := range p.removed {
		s.listeners.Retire(l, s.cfg.DrainTimeout)
		if !slices.Contains(changed, l.Name()) {
			changed = append(changed, l.Name())
		}
	}
	slices.Sort(changed)
	return changed
}

// refusedOverRate counts a request refused by a per-terminal limit.
func (s *Switch) refusedOverRate(listener string) {
	s.metrics.refused.WithLabelValues(listener, "rate_limit").Inc()
}
