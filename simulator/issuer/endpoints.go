package issuer

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"go.uber.org/zap"
)

// ErrNoEndpoint is an endpoint index or address the issuer does not serve.
var ErrNoEndpoint = errors.New("no such endpoint")

// endpoint is one listen address of the issuer (Config.Addr is endpoint
// 0, Config.Addrs the next ones). All endpoints share the issuer's ledger.
type endpoint struct {
	index int
	addr  string // configured; bound once started
	ln    net.Listener
	// down: taken down (listener and connections closed) for good.
	down atomic.Bool
	// silent: requests on the endpoint's connections are read and never
	// answered nor applied, like a host that hangs.
	silent atomic.Bool
}

// EndpointStatus is one endpoint as Endpoints and the admin API show it.
type EndpointStatus struct {
	Index  int    `json:"index"`
	Addr   string `json:"addr"`
	Down   bool   `json:"down"`
	Silent bool   `json:"silent"`
}

// listenAll binds every endpoint; on an error it closes the ones bound.
func (is *Issuer) listenAll() error {
	addrs := append([]string{is.cfg.Addr}, is.cfg.Addrs...)
	eps := make([]*endpoint, 0, len(addrs))
	for i, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, ep := range eps {
				_ = ep.ln.Close()
			}
			return fmt.Errorf("issuer %q: listening on %s: %w", is.cfg.Name, a, err)
		}
		eps = append(eps, &endpoint{index: i, addr: ln.Addr().String(), ln: ln})
	}
	is.endpoints, is.ln = eps, eps[0].ln
	return nil
}

// Endpoints returns the issuer's endpoints, bound addresses once started.
func (is *Issuer) Endpoints() []EndpointStatus {
	is.mu.Lock()
	defer is.mu.Unlock()
	out := make([]EndpointStatus, 0, len(is.endpoints))
	for _, ep := range is.endpoints {
		out = append(out, EndpointStatus{Index: ep.index, Addr: ep.addr, Down: ep.down.Load(), Silent: ep.silent.Load()})
	}
	return out
}

// Addrs returns the bound address of every endpoint, in order.
func (is *Issuer) Addrs() []string {
	var out []string
	for _, ep := range is.Endpoints() {
		out = append(out, ep.Addr)
	}
	return out
}

// endpoint finds an endpoint by index ("1") or address.
func (is *Issuer) endpoint(which string) (*endpoint, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, ep := range is.endpoints {
		if which == ep.addr || which == fmt.Sprint(ep.index) {
			return ep, nil
		}
	}
	return nil, fmt.Errorf("issuer %q: endpoint %q: %w", is.cfg.Name, which, ErrNoEndpoint)
}

// TakeDown closes one endpoint (by index or address): its listener stops
// accepting and its open connections close. The other endpoints, and the
// ledger, carry on.
func (is *Issuer) TakeDown(which string) error {
	ep, err := is.endpoint(which)
	if err != nil {
		return err
	}
	if ep.down.Swap(true) {
		return nil
	}
	_ = ep.ln.Close()
	is.mu.Lock()
	var conns []net.Conn
	for s := range is.sessions {
		if s.ep == ep {
			conns = append(conns, s.conn)
		}
	}
	is.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	is.log.Info("endpoint taken down", zap.Int("endpoint", ep.index), zap.String("addr", ep.addr))
	return nil
}

// SetSilent makes one endpoint (by index or address) stop answering, or
// answer again: its connections stay open, requests on them are dropped.
func (is *Issuer) SetSilent(which string, silent bool) error {
	ep, err := is.endpoint(which)
	if err != nil {
		return err
	}
	ep.silent.Store(silent)
	is.log.Info("endpoint silence set", zap.Int("endpoint", ep.index), zap.String("addr", ep.addr), zap.Bool("silent", silent))
	return nil
}
