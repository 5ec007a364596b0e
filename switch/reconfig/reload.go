package reconfig

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/route"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/tlsconf"
	"github.com/kbpay/switch/switch/upstream"
)

// ErrRefused wraps every reason a reload changed nothing.
var ErrRefused = errors.New("configuration reload refused; the running configuration stays")

// Summary says what a reload changed.
type Summary struct {
	Added     []string `json:"routes_added,omitempty"`
	Removed   []string `json:"routes_removed,omitempty"`
	Replaced  []string `json:"routes_relinked,omitempty"`
	Endpoints []string `json:"routes_endpoints_changed,omitempty"`
	Listeners []string `json:"listeners_changed,omitempty"`
	// GroupHold is the journal's group hold when a reload changed it
	// ("group_wait 1ms, group_size 16", or that the store ignores it).
	GroupHold string `json:"journal_group_hold,omitempty"`
}

// ReloadFile re-reads the configuration file (Deps.File) and reloads it.
func (r *Running) ReloadFile(ctx context.Context) (Summary, error) {
	if r.d.File == "" {
		err := fmt.Errorf("%w: the switch runs on the built-in configuration (no --config file)", ErrRefused)
		r.outcome(err)
		return Summary{}, err
	}
	cfg, err := config.Load(r.d.File)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrRefused, err)
		r.outcome(err)
		return Summary{}, err
	}
	return r.Reload(ctx, cfg)
}

// Reload applies cfg as a diff of the running configuration, without
// dropping a connection or a transaction in flight:
//
//   - routes: added (linked and signed on before they take traffic),
//     removed (out of the BIN table at once; the link stays for the
//     cancels and give-backs of earlier transactions), BIN prefixes,
//     PIN key and settle codes changed; endpoints added, changed or
//     removed on the running link (a removed endpoint closes once its
//     requests are answered); other link settings (dialect, framing,
//     timeouts, policy, breaker) relink the route: a new link sharing the
//     route's STANs takes over, the old one closes once drained;
//   - listeners: limits (max_connections, max_in_flight) and TLS material
//     change in place; a listener is added (bound while planning, so a
//     port in use refuses the reload; its keys checked in the HSM) or
//     removed (it stops accepting at once; its connections close once
//     their requests in flight are answered, a signed-on VAN link signed
//     off first); any other change of a listener replaces it (remove and
//     add under the same name);
//   - journal.group_wait and journal.group_size: the journal's next
//     groups are held by them.
//
// Everything else (stores and the rest of journal, HSM, tokens, admin, a
// route's give-back kind) needs a restart; a configuration
// that changes any of it, or is invalid, is refused whole with
// ErrRefused and the running one stays.
func (r *Running) Reload(ctx context.Context, cfg config.Config) (sum Summary, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { r.outcome(err) }()
	if r.d.Ctx.Err() != nil {
		return sum, fmt.Errorf("%w: the switch is shutting down", ErrRefused)
	}
	p, err := r.plan(cfg)
	if err != nil {
		return sum, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return r.apply(ctx, cfg, p), nil
}

// outcome counts and logs a reload's result (payswitch_config_reloads_total
// and the last-reload gauges, switch/opsmetrics).
func (r *Running) outcome(err error) {
	r.d.Ops.Reloaded(err)
	if err != nil {
		r.d.Log.Error("configuration reload refused; the running configuration stays", zap.Error(err))
	}
}

// plan is a checked reload with everything that can fail prepared.
type plan struct {
	table     *route.Table
	newLinks  map[string]*upstream.Link // added or relinked routes, not started
	endpoints map[string]*upstream.EndpointChange
	listeners listenerPlan
	removed   []config.IssuerRoute
}

func (p *plan) abort() {
	p.listeners.abort()
	for _, l := range p.newLinks {
		_ = l.Close(context.Background())
	}
	for _, ch := range p.endpoints {
		ch.Abort()
	}
}

func (r *Running) plan(cfg config.Config) (_ *plan, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.CheckProduction(os.Getenv); err != nil {
		return nil, err
	}
	if err := restartOnly(r.d.Config, cfg); err != nil {
		return nil, err
	}
	p := &plan{newLinks: map[string]*upstream.Link{}, endpoints: map[string]*upstream.EndpointChange{},
		listeners: listenerPlan{tls: map[*terminalserver.Listener]*tlsconf.Server{}, limits: map[*terminalserver.Listener]config.Listener{}}}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := r.planListeners(cfg, &p.listeners); err != nil {
		return nil, err
	}
	bins := map[string][]string{}
	links := r.Links()
	for _, rc := range cfg.Routes {
		bins[rc.Name] = rc.BINs
		old, ok := links[rc.Name]
		switch {
		case !ok:
			if p.newLinks[rc.Name], err = r.d.Switch.NewLink(rc); err != nil {
				return nil, err
			}
		case old.Config().WithLinkDefaults().GiveBack != rc.WithLinkDefaults().GiveBack && rc.GiveBack != "":
			return nil, fmt.Errorf("route %s: changing give_back needs a restart (give-backs of earlier sales are pending under the old kind)", rc.Name)
		case !upstream.SameLinkSettings(old.Config(), rc):
			if p.newLinks[rc.Name], err = r.d.Switch.NewLink(rc, upstream.WithSTANsOf(old)); err != nil {
				return nil, err
			}
		default:
			ch, err := old.PrepareEndpoints(rc.EndpointList(), rc.Policy)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", rc.Name, err)
			}
			p.endpoints[rc.Name] = ch
		}
	}
	for _, rc := range r.ActiveRoutes() {
		if _, kept := bins[rc.Name]; !kept {
			p.removed = append(p.removed, rc)
		}
	}
	if p.table, err = route.NewTable(bins); err != nil {
		return nil, err
	}
	if err := r.checkKeys(cfg, func(where string) bool { return strings.HasPrefix(where, "route ") }); err != nil {
		return nil, err
	}
	return p, nil
}

// restartOnly refuses a change to any section a reload does not apply.
func restartOnly(old, cur config.Config) error {
	var errs []error
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(cur)
	for i := range ov.NumField() {
		f := ov.Type().Field(i)
		if f.Name == "Listeners" || f.Name == "Routes" {
			continue
		}
		o, n := ov.Field(i).Interface(), nv.Field(i).Interface()
		if f.Name == "Journal" {
			// The group hold applies live (apply); the rest does not.
			oj, nj := old.Journal, cur.Journal
			nj.GroupWait, nj.GroupSize = oj.GroupWait, oj.GroupSize
			o, n = oj, nj
		}
		if !reflect.DeepEqual(o, n) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			errs = append(errs, fmt.Errorf("%s changed: needs a restart", name))
		}
	}
	return errors.Join(errs...)
}

// checkKeys refuses the PIN/MAC keys of cfg at the places picked (a
// route's, an added listener's) that the PIN/MAC HSM lacks or holds with
// the wrong usage or cipher (the same check as at start).
func (r *Running) checkKeys(cfg config.Config, at func(where string) bool) error {
	var needs []keyring.Need
	for _, n := range keyring.ForRole(keyring.Needs(cfg), false) {
		if at(n.Where) {
			needs = append(needs, n)
		}
	}
	return r.d.Switch.CheckKeys(needs)
}

// apply commits a plan; nothing in it fails.
func (r *Running) apply(ctx context.Context, cfg config.Config, p *plan) Summary {
	var sum Summary
	sum.Listeners = r.applyListeners(&p.listeners) // before the routes: an added route's series cover added listeners
	old := r.Links()
	// New links sign on before they take traffic.
	for name, l := range p.newLinks {
		if err := l.Start(ctx); err == nil && !l.WaitUp(ctx) {
			r.d.Log.Warn("reloaded route not signed on yet on every endpoint; it keeps reconnecting", zap.String("route", name))
		}
	}
	for name, ch := range p.endpoints {
		if !ch.Empty() {
			sum.Endpoints = append(sum.Endpoints, name)
		}
		ch.Commit(ctx)
	}
	links := maps.Clone(old)
	for name, l := range p.newLinks {
		if prev, ok := old[name]; ok {
			sum.Replaced = append(sum.Replaced, name)
			r.retired = append(r.retired, prev)
			prev.Retire(func(err error) {
				if err != nil {
					r.d.Log.Warn("closing a relinked route's old link", zap.String("route", name), zap.Error(err))
				}
			})
		} else {
			sum.Added = append(sum.Added, name)
			r.d.Series.PreinitRoute(r.listenerNames(), name)
			r.d.Switch.StartSAF(name)
		}
		links[name] = l
	}
	r.links.Store(&links)
	// Removed routes stay known (their give-backs) unless re-added.
	kept := r.removed[:0]
	for _, rc := range r.removed {
		if !slices.ContainsFunc(cfg.Routes, func(n config.IssuerRoute) bool { return n.Name == rc.Name }) {
			kept = append(kept, rc)
		}
	}
	for _, rc := range p.removed {
		sum.Removed = append(sum.Removed, rc.Name)
		kept = append(kept, rc)
	}
	r.removed = kept
	routes := slices.Clone(cfg.Routes)
	r.routes.Store(&routes)
	r.storeMappings(cfg.Routes)
	// Copy on write: requests in flight keep the chain and keys they started with.
	keys := maps.Clone(*r.zoneKeys.Load())
	for _, rc := range cfg.Routes {
		delete(keys, rc.Name)
		if rc.PIN != nil {
			keys[rc.Name] = pipeline.PINDest{Key: rc.PIN.Key, Format: hsm.PINFormat(rc.PIN.Format)}
		}
	}
	r.zoneKeys.Store(&keys)
	r.table.Store(p.table)
	if !sameGroupHold(r.journal, cfg.Journal) {
		wait, size := cfg.Journal.HeldGroupWait(), cfg.Journal.GroupSize
		sum.GroupHold = fmt.Sprintf("group_wait %v, group_size %d", wait, size)
		if !r.d.Switch.HoldGroups(wait, size) {
			sum.GroupHold = "ignored: the " + cfg.Store.Backend + " store groups its commits its own way"
		}
		r.journal = cfg.Journal
	}
	fields := []zap.Field{zap.Strings("routes_added", sum.Added), zap.Strings("routes_removed", sum.Removed),
		zap.Strings("routes_relinked", sum.Replaced), zap.Strings("routes_endpoints_changed", sum.Endpoints),
		zap.Strings("listeners_changed", sum.Listeners)}
	if sum.GroupHold != "" {
		fields = append(fields, zap.String("journal_group_hold", sum.GroupHold))
	}
	r.d.Log.Info("configuration reloaded", fields...)
	return sum
}

// sameGroupHold reports whether a and b hold the journal's groups alike.
func sameGroupHold(a, b config.Journal) bool {
	return a.HeldGroupWait() == b.HeldGroupWait() && a.GroupSize == b.GroupSize
}
