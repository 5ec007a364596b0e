package payswitch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
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

// ErrReloadRefused wraps every reason a reload changed nothing.
var ErrReloadRefused = errors.New("configuration reload refused; the running configuration stays")

// WithConfigFile names the configuration file POST /v1/reload re-reads
// (switchd passes its --config).
func WithConfigFile(path string) Option {
	return func(o *options) { o.configFile = path }
}

// reloadState is what a reload swaps, and what it keeps.
type reloadState struct {
	mu          sync.Mutex // one reload at a time
	routes      atomic.Pointer[[]config.IssuerRoute]
	mappings    atomic.Pointer[map[string]config.Mapping] // per route, removed routes' kept (their give-backs)
	removed     []config.IssuerRoute                      // routes taken out of the BIN table; their links stay (under mu)
	retired     []*upstream.Link                          // links a reload replaced, closing (under mu)
	linkMetrics *upstream.Metrics
	configFile  string
	instance    int // this instance's number: the STAN partition of every link (store.stan_partitions)
}

func (s *Switch) initReload(cfg config.Config, reg prometheus.Registerer, o options) {
	r := &s.reload
	r.linkMetrics = upstream.NewMetrics(reg)
	r.configFile = o.configFile
	routes := slices.Clone(cfg.Routes)
	r.routes.Store(&routes)
	s.storeMappings(cfg.Routes)
	reg.MustRegister(s.listeners.SignedOnCollector())
}

// newLink builds a route's link in this instance's STAN partition (New
// sets the partition once the store has told the instance number; a
// relinked route's link shares the old one's STANs, partition included).
func (s *Switch) newLink(rc config.IssuerRoute, opts ...upstream.Option) (*upstream.Link, error) {
	l, err := upstream.New(rc, s.log, s.reload.linkMetrics, append([]upstream.Option{
		upstream.WithLateResponseHandler(func(route string, msg *iso8583.Message) { s.recovery.LateAnswer(route, msg) }),
		upstream.WithRRNs(func() (string, error) { return s.rrns.Next() }),
		upstream.WithKeyExchange(func() hsm.HSM { return s.hsms.PINMAC }),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	l.PartitionSTANs(s.reload.instance, s.cfg.Store.STANPartitions)
	return l, nil
}

// linkMap is the issuer link of every route, including routes a reload
// removed from the BIN table (their cancels and give-backs still go out).
// Never modified: a reload stores a new map.
func (s *Switch) linkMap() map[string]*upstream.Link {
	if m := s.linkSet.Load(); m != nil {
		return *m
	}
	return nil
}

// activeRoutes are the routes of the running configuration (before New
// set them: the configuration's).
func (s *Switch) activeRoutes() []config.IssuerRoute {
	if r := s.reload.routes.Load(); r != nil {
		return *r
	}
	return s.cfg.Routes
}

// routeList is activeRoutes and the routes removed since start (whose
// give-back settings still apply to what they left behind).
func (s *Switch) routeList() []config.IssuerRoute {
	s.reload.mu.Lock()
	removed := s.reload.removed
	s.reload.mu.Unlock()
	return append(slices.Clone(s.activeRoutes()), removed...)
}

// storeMappings puts the mapping rules of routes in force for the next
// request (a removed route's stay, for its give-backs).
func (s *Switch) storeMappings(routes []config.IssuerRoute) {
	m := map[string]config.Mapping{}
	if old := s.reload.mappings.Load(); old != nil {
		m = maps.Clone(*old)
	}
	for _, r := range routes {
		m[r.Name] = r.Mapping
	}
	s.reload.mappings.Store(&m)
}

// mapped is link l of route with the route's mapping rules.
func (s *Switch) mapped(route string, l pipeline.Upstream) pipeline.Upstream {
	var m config.Mapping
	if ms := s.reload.mappings.Load(); ms != nil {
		m = (*ms)[route]
	}
	return pipeline.MappedUpstream{Upstream: l, Mapping: m}
}

// closeLinks signs off every link, retired ones included.
func (s *Switch) closeLinks(ctx context.Context) []error {
	var errs []error
	s.reload.mu.Lock()
	links := append(slices.Collect(maps.Values(s.linkMap())), s.reload.retired...)
	s.reload.mu.Unlock()
	for _, l := range links {
		if err := l.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ReloadSummary says what a reload changed.
type ReloadSummary struct {
	Added     []string `json:"routes_added,omitempty"`
	Removed   []string `json:"routes_removed,omitempty"`
	Replaced  []string `json:"routes_relinked,omitempty"`
	Endpoints []string `json:"routes_endpoints_changed,omitempty"`
	Listeners []string `json:"listeners_changed,omitempty"`
}

// ReloadFile re-reads the configuration file (WithConfigFile) and
// reloads it.
func (s *Switch) ReloadFile(ctx context.Context) (ReloadSummary, error) {
	if s.reload.configFile == "" {
		err := fmt.Errorf("%w: the switch runs on the built-in configuration (no --config file)", ErrReloadRefused)
		s.reloadOutcome(err)
		return ReloadSummary{}, err
	}
	cfg, err := config.Load(s.reload.configFile)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrReloadRefused, err)
		s.reloadOutcome(err)
		return ReloadSummary{}, err
	}
	return s.Reload(ctx, cfg)
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
//     add under the same name).
//
// Everything else (stores, HSM, tokens, admin, a route's give-back
// kind) needs a restart; a configuration
// that changes any of it, or is invalid, is refused whole with
// ErrReloadRefused and the running one stays.
func (s *Switch) Reload(ctx context.Context, cfg config.Config) (sum ReloadSummary, err error) {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	defer func() { s.reloadOutcome(err) }()
	if s.ctx.Err() != nil {
		return sum, fmt.Errorf("%w: the switch is shutting down", ErrReloadRefused)
	}
	plan, err := s.planReload(cfg)
	if err != nil {
		return sum, fmt.Errorf("%w: %w", ErrReloadRefused, err)
	}
	return s.applyReload(ctx, cfg, plan), nil
}

// reloadOutcome counts and logs a reload's result (payswitch_config_reloads_total
// and the last-reload gauges, opsmetrics.go).
func (s *Switch) reloadOutcome(err error) {
	s.metrics.ops.Reloaded(err)
	if err != nil {
		s.log.Error("configuration reload refused; the running configuration stays", zap.Error(err))
	}
}

// reloadPlan is a checked reload with everything that can fail prepared.
type reloadPlan struct {
	table     *route.Table
	newLinks  map[string]*upstream.Link // added or relinked routes, not started
	endpoints map[string]*upstream.EndpointChange
	listeners listenerPlan
	removed   []config.IssuerRoute
}

func (p *reloadPlan) abort() {
	p.listeners.abort()
	for _, l := range p.newLinks {
		_ = l.Close(context.Background())
	}
	for _, ch := range p.endpoints {
		ch.Abort()
	}
}

func (s *Switch) planReload(cfg config.Config) (_ *reloadPlan, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.CheckProduction(os.Getenv); err != nil {
		return nil, err
	}
	if err := restartOnly(s.cfg, cfg); err != nil {
		return nil, err
	}
	p := &reloadPlan{newLinks: map[string]*upstream.Link{}, endpoints: map[string]*upstream.EndpointChange{},
		listeners: listenerPlan{tls: map[*terminalserver.Listener]*tlsconf.Server{}, limits: map[*terminalserver.Listener]config.Listener{}}}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := s.planListeners(cfg, &p.listeners); err != nil {
		return nil, err
	}
	bins := map[string][]string{}
	links := s.linkMap()
	for _, rc := range cfg.Routes {
		bins[rc.Name] = rc.BINs
		old, ok := links[rc.Name]
		switch {
		case !ok:
			if p.newLinks[rc.Name], err = s.newLink(rc); err != nil {
				return nil, err
			}
		case old.Config().WithLinkDefaults().GiveBack != rc.WithLinkDefaults().GiveBack && rc.GiveBack != "":
			return nil, fmt.Errorf("route %s: changing give_back needs a restart (give-backs of earlier sales are pending under the old kind)", rc.Name)
		case !upstream.SameLinkSettings(old.Config(), rc):
			if p.newLinks[rc.Name], err = s.newLink(rc, upstream.WithSTANsOf(old)); err != nil {
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
	for _, r := range s.activeRoutes() {
		if _, kept := bins[r.Name]; !kept {
			p.removed = append(p.removed, r)
		}
	}
	if p.table, err = route.NewTable(bins); err != nil {
		return nil, err
	}
	if err := s.checkRouteKeys(cfg); err != nil {
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
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			errs = append(errs, fmt.Errorf("%s changed: needs a restart", name))
		}
	}
	return errors.Join(errs...)
}

// checkRouteKeys refuses route PIN keys the PIN/MAC HSM lacks or holds
// with the wrong usage or cipher (the same check as at start).
func (s *Switch) checkRouteKeys(cfg config.Config) error {
	var needs []keyring.Need
	for _, n := range keyring.ForRole(keyring.Needs(cfg), false) {
		if strings.HasPrefix(n.Where, "route ") {
			needs = append(needs, n)
		}
	}
	return keyring.Missing(s.ctx, s.hsms.PINMAC, needs)
}

// applyReload commits a plan; nothing in it fails.
func (s *Switch) applyReload(ctx context.Context, cfg config.Config, p *reloadPlan) ReloadSummary {
	var sum ReloadSummary
	sum.Listeners = s.applyListeners(&p.listeners) // before the routes: an added route's series cover added listeners
	old := s.linkMap()
	// New links sign on before they take traffic.
	for name, l := range p.newLinks {
		if err := l.Start(ctx); err == nil && !l.WaitUp(ctx) {
			s.log.Warn("reloaded route not signed on yet on every endpoint; it keeps reconnecting", zap.String("route", name))
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
			s.reload.retired = append(s.reload.retired, prev)
			prev.Retire(func(err error) {
				if err != nil {
					s.log.Warn("closing a relinked route's old link", zap.String("route", name), zap.Error(err))
				}
			})
		} else {
			sum.Added = append(sum.Added, name)
			s.metrics.preinitRoute(s.listenerNames(), name)
			s.saf.AddRoute(s.ctx, name)
		}
		links[name] = l
	}
	s.linkSet.Store(&links)
	// Removed routes stay known (their give-backs) unless re-added.
	kept := s.reload.removed[:0]
	for _, r := range s.reload.removed {
		if !slices.ContainsFunc(cfg.Routes, func(n config.IssuerRoute) bool { return n.Name == r.Name }) {
			kept = append(kept, r)
		}
	}
	for _, r := range p.removed {
		sum.Removed = append(sum.Removed, r.Name)
		kept = append(kept, r)
	}
	s.reload.removed = kept
	routes := slices.Clone(cfg.Routes)
	s.reload.routes.Store(&routes)
	s.storeMappings(cfg.Routes)
	// Copy on write: requests in flight keep the chain and keys they started with.
	dst := maps.Clone(s.pinDst)
	for _, r := range cfg.Routes {
		delete(dst, r.Name)
		if r.PIN != nil {
			dst[r.Name] = pipeline.PINDest{Key: r.PIN.Key, Format: hsm.PINFormat(r.PIN.Format)}
		}
	}
	s.pinDst = dst
	s.publishZoneKeys()
	s.routes.Store(p.table)
	s.log.Info("configuration reloaded", zap.Strings("routes_added", sum.Added), zap.Strings("routes_removed", sum.Removed),
		zap.Strings("routes_relinked", sum.Replaced), zap.Strings("routes_endpoints_changed", sum.Endpoints),
		zap.Strings("listeners_changed", sum.Listeners))
	return sum
}
