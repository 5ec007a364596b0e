package payswitch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/saf"
	"github.com/kbpay/switch/switch/store"
)

// newDispatcher builds the stage lists (pipeline.CardLists) over the
// switch's parts; the order of every list is checked here, at start.
func (s *Switch) newDispatcher(reg prometheus.Registerer) (*pipeline.Dispatcher, error) {
	return pipeline.NewDispatcher(pipeline.CardLists(pipeline.Deps{
		HSM:      s.pinmac,
		Ledger:   s.ledger,
		Tokens:   tokenPath{s.tokens},
		Routes:   issuerRoutes{s},
		Queue:    s.store.Queue(),
		OverRate: s.refusedOverRate,
	}), pipeline.NewStageTimer(reg))
}

// issuerRoutes resolves routes for the pipeline from the configuration in
// force (a reload swaps the table, links and keys it reads).
type issuerRoutes struct{ s *Switch }

func (r issuerRoutes) Lookup(pan string) (string, error) { return r.s.routes.Load().Lookup(pan) }

func (r issuerRoutes) Route(name string) (pipeline.IssuerRoute, bool) {
	l, ok := r.s.linkMap()[name]
	if !ok {
		return pipeline.IssuerRoute{}, false
	}
	rt := pipeline.IssuerRoute{Name: name, Link: r.s.mapped(name, l), GiveBack: store.KindReversal}
	if zpk, ok := (*r.s.zoneKeys.Load())[name]; ok {
		rt.PIN = &zpk
	}
	for _, rc := range r.s.routeList() {
		if rc.Name == name {
			rt.SettleCodes = rc.SettleCodes
			if rc.GiveBack == store.KindRefund {
				rt.GiveBack = store.KindRefund
			}
		}
	}
	return rt, true
}

// publishZoneKeys puts the routes' zone PIN keys in force for the next
// request (copy on write: requests in flight keep theirs).
func (s *Switch) publishZoneKeys() {
	m := s.pinDst
	s.zoneKeys.Store(&m)
}

// STANs is the STAN pool of route's link (the SAF worker holds the STANs
// of pending give-backs in it).
func (r issuerRoutes) STANs(name string) (saf.STANs, bool) {
	l, ok := r.s.linkMap()[name]
	return l, ok
}

// Timeout is route's issuer timeout (a removed route's included; 0 when
// unknown).
func (r issuerRoutes) Timeout(name string) time.Duration {
	var d time.Duration
	for _, rc := range r.s.routeList() {
		if rc.Name == name {
			d += rc.Timeout
		}
	}
	return d
}
