// Package reconfig is the switch's running configuration (routes, issuer links, BIN table, zone PIN keys) and its reload as a diff of routes, endpoints and listeners.
package reconfig

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/opsmetrics"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/route"
	"github.com/kbpay/switch/switch/saf"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/upstream"
)

// Switch is what a reload needs from the switch it reconfigures.
type Switch interface {
	// NewLink builds (does not start) the link of a route a reload adds
	// or relinks, in the instance's STAN partition.
	NewLink(rc config.IssuerRoute, opts ...upstream.Option) (*upstream.Link, error)
	// NewListener builds (does not bind) a listener a reload adds.
	NewListener(lc config.Listener) (*terminalserver.Listener, error)
	// CheckKeys refuses keys the PIN/MAC HSM lacks or holds with the
	// wrong usage or cipher (keyring.Missing).
	CheckKeys(needs []keyring.Need) error
	// StartSAF starts the store-and-forward sender of a route a reload adds.
	StartSAF(route string)
	// HoldGroups applies journal.group_wait and journal.group_size to the
	// running journal; false when the store ignores them (PostgreSQL).
	HoldGroups(wait time.Duration, size int) bool
}

// Series are the labelled series a reload creates at zero for what it adds.
type Series interface {
	PreinitListener(name string, routes []string)
	PreinitRoute(listeners []string, route string)
}

// Deps are what the running configuration is built on.
type Deps struct {
	// Ctx is the switch's lifetime: once it ends, reloads are refused.
	Ctx context.Context
	// Config is the configuration the switch started with: a reload that
	// changes any of it but the routes and listeners is refused.
	Config config.Config
	// File is the configuration file ReloadFile re-reads ("" when the
	// switch runs on a built-in configuration).
	File      string
	Log       *zap.Logger
	Listeners *terminalserver.Set // the listeners in force, started by the switch
	Switch    Switch
	Series    Series
	Ops       *opsmetrics.Ops // reload outcomes
}

// Running is the configuration in force. The route table, link map, route
// list and keys are immutable values swapped whole by a reload: requests
// in flight keep what they started with.
type Running struct {
	d        Deps
	mu       sync.Mutex // one reload at a time
	routes   atomic.Pointer[[]config.IssuerRoute]
	mappings atomic.Pointer[map[string]config.Mapping] // per route, removed routes' kept (their give-backs)
	links    atomic.Pointer[map[string]*upstream.Link] // by route; see Links
	table    atomic.Pointer[route.Table]
	zoneKeys atomic.Pointer[map[string]pipeline.PINDest] // by route
	removed  []config.IssuerRoute                        // routes taken out of the BIN table; their links stay (under mu)
	retired  []*upstream.Link                            // links a reload replaced, closing (under mu)
	journal  config.Journal                              // the journal settings in force (under mu)
}

// New is the running configuration of d.Config over links, the issuer
// link of every configured route (built, not started).
func New(d Deps, links map[string]*upstream.Link) (*Running, error) {
	r := &Running{d: d, journal: d.Config.Journal}
	bins := map[string][]string{}
	keys := map[string]pipeline.PINDest{}
	for _, rc := range d.Config.Routes {
		bins[rc.Name] = rc.BINs
		if rc.PIN != nil {
			keys[rc.Name] = pipeline.PINDest{Key: rc.PIN.Key, Format: hsm.PINFormat(rc.PIN.Format)}
		}
	}
	tbl, err := route.NewTable(bins)
	if err != nil {
		return nil, fmt.Errorf("building route table: %w", err)
	}
	r.table.Store(tbl)
	r.links.Store(&links)
	r.zoneKeys.Store(&keys)
	routes := slices.Clone(d.Config.Routes)
	r.routes.Store(&routes)
	r.storeMappings(d.Config.Routes)
	return r, nil
}

// Links is the issuer link of every route, including routes a reload
// removed from the BIN table (their cancels and give-backs still go out).
// Never modified: a reload stores a new map.
func (r *Running) Links() map[string]*upstream.Link { return *r.links.Load() }

// ActiveRoutes are the routes of the running configuration.
func (r *Running) ActiveRoutes() []config.IssuerRoute { return *r.routes.Load() }

// RouteList is ActiveRoutes and the routes removed since start (whose
// give-back settings still apply to what they left behind).
func (r *Running) RouteList() []config.IssuerRoute {
	r.mu.Lock()
	removed := r.removed
	r.mu.Unlock()
	return append(slices.Clone(r.ActiveRoutes()), removed...)
}

// storeMappings puts the mapping rules of routes in force for the next
// request (a removed route's stay, for its give-backs).
func (r *Running) storeMappings(routes []config.IssuerRoute) {
	m := map[string]config.Mapping{}
	if old := r.mappings.Load(); old != nil {
		m = maps.Clone(*old)
	}
	for _, rc := range routes {
		m[rc.Name] = rc.Mapping
	}
	r.mappings.Store(&m)
}

// Lookup is the route of a card by the longest BIN prefix (pipeline.Routes).
func (r *Running) Lookup(pan string) (string, error) { return r.table.Load().Lookup(pan) }

// Route is the named route as the pipeline and the SAF worker use it: its
// link with the route's mapping rules, zone PIN key, settle codes and
// give-back kind (pipeline.Routes, saf.Routes).
func (r *Running) Route(name string) (pipeline.IssuerRoute, bool) {
	l, ok := r.Links()[name]
	if !ok {
		return pipeline.IssuerRoute{}, false
	}
	m := (*r.mappings.Load())[name]
	rt := pipeline.IssuerRoute{Name: name, Link: pipeline.MappedUpstream{Upstream: l, Mapping: m}, GiveBack: store.KindReversal}
	if zpk, ok := (*r.zoneKeys.Load())[name]; ok {
		rt.PIN = &zpk
	}
	// RouteList's routes in its order (the last of a name wins), without
	// its copy: Route runs on every request.
	giveBackOf(&rt, r.ActiveRoutes())
	r.mu.Lock()
	giveBackOf(&rt, r.removed)
	r.mu.Unlock()
	return rt, true
}

// giveBackOf sets rt's settle codes and give-back kind from its route's
// configuration among routes.
func giveBackOf(rt *pipeline.IssuerRoute, routes []config.IssuerRoute) {
	for _, rc := range routes {
		if rc.Name == rt.Name {
			rt.SettleCodes = rc.SettleCodes
			if rc.GiveBack == store.KindRefund {
				rt.GiveBack = store.KindRefund
			}
		}
	}
}

// STANs is the STAN pool of route's link (the SAF worker holds the STANs
// of pending give-backs in it).
func (r *Running) STANs(name string) (saf.STANs, bool) {
	l, ok := r.Links()[name]
	return l, ok
}

// Timeout is route's issuer timeout (a removed route's included; 0 when
// unknown).
func (r *Running) Timeout(name string) time.Duration {
	var d time.Duration
	for _, rc := range r.RouteList() {
		if rc.Name == name {
			d += rc.Timeout
		}
	}
	return d
}

// CloseLinks signs off every link, retired ones included.
func (r *Running) CloseLinks(ctx context.Context) []error {
	var errs []error
	r.mu.Lock()
	links := append(slices.Collect(maps.Values(r.Links())), r.retired...)
	r.mu.Unlock()
	for _, l := range links {
		if err := l.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
