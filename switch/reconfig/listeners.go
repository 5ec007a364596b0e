package reconfig

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/tlsconf"
)

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
func (r *Running) planListeners(cfg config.Config, p *listenerPlan) error {
	set := r.d.Listeners
	cur := set.List()
	var added []string
	for _, lc := range cfg.Listeners {
		old := set.Find(lc.Name)
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
		l, err := r.d.Switch.NewListener(lc)
		if err != nil {
			return err
		}
		if err := l.BindOrAdopt(r.socketOwner(cfg, lc, old)); err != nil {
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
	return r.checkKeys(cfg, func(where string) bool {
		return slices.ContainsFunc(added, func(name string) bool { return strings.HasPrefix(where, "listener "+name+" ") })
	})
}

// socketOwner is the running listener whose socket the listener lc takes
// over: the one of the same name it replaces, else one at the same address
// that cfg removes (a rename); nil when there is none.
func (r *Running) socketOwner(cfg config.Config, lc config.Listener, old *terminalserver.Listener) *terminalserver.Listener {
	if old != nil {
		return old
	}
	for _, l := range r.d.Listeners.List() {
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

// listenerNames are the names of the listeners in force.
func (r *Running) listenerNames() []string {
	var names []string
	for _, l := range r.d.Listeners.List() {
		names = append(names, l.Name())
	}
	return names
}

// applyListeners puts the planned set in force: added listeners start
// accepting (a replacing one takes over its predecessor's socket first),
// removed ones stop accepting at once and wind down in the background
// (terminalserver.Listener.Retire, bounded by drain_timeout). It returns
// the listeners changed.
func (r *Running) applyListeners(p *listenerPlan) (changed []string) {
	set := r.d.Listeners
	for l, lc := range p.limits {
		if l.Reconfigure(lc, p.tls[l]) {
			changed = append(changed, lc.Name)
		}
	}
	routes := []string{"none"}
	for _, rc := range r.ActiveRoutes() {
		routes = append(routes, rc.Name)
	}
	for _, l := range p.added {
		r.d.Series.PreinitListener(l.Name(), routes)
		set.Serve(l)
		changed = append(changed, l.Name())
	}
	set.Replace(p.next)
	for _, l := range p.removed {
		set.Retire(l, r.d.Config.DrainTimeout)
		if !slices.Contains(changed, l.Name()) {
			changed = append(changed, l.Name())
		}
	}
	slices.Sort(changed)
	return changed
}
