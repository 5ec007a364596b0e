package config

import (
	"fmt"
	"time"
)

// Endpoint is one issuer host of a route.
type Endpoint struct {
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Priority orders endpoints under the priority policy: the lowest
	// number that is healthy takes the traffic. Default 0.
	Priority int `yaml:"priority"`
	// Links is how many pooled, signed-on connections are kept to it.
	// Default 1.
	Links int `yaml:"links"`
	// TLS, when set, connects over TLS (mutual TLS with cert_file and
	// key_file).
	TLS *ClientTLS `yaml:"tls"`
}

// ClientTLS is how the switch connects to an issuer endpoint over TLS.
type ClientTLS struct {
	// CAFile is the PEM bundle the issuer's certificate must chain to.
	// Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the switch's client certificate (mutual
	// TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked in the issuer's certificate. Default:
	// the host of Addr.
	ServerName string `yaml:"server_name"`
}

// ServerTLS is a listener's TLS: its certificate and, for mutual TLS, the
// CA its clients' certificates must chain to.
type ServerTLS struct {
	// CertFile and KeyFile are the listener's certificate chain and key
	// (PEM). Both required. They are re-read when they change on disk.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires a client certificate chaining to
	// one of its CAs.
	ClientCAFile string `yaml:"client_ca_file"`
	// AllowedClients, when set, admits only client certificates whose
	// subject CN or a DNS SAN is in the list (needs client_ca_file).
	AllowedClients []string `yaml:"allowed_clients"`
}

// Breaker is the circuit breaker kept per issuer endpoint.
type Breaker struct {
	// Failures is how many consecutive timeouts or connect failures open
	// it. Default 5.
	Failures int `yaml:"failures"`
	// OpenFor is how long it stays open before half-open probes. Default 10s.
	OpenFor time.Duration `yaml:"open_for"`
	// Probes is how many requests a half-open breaker lets through; that
	// many successes close it. Default 1.
	Probes int `yaml:"probes"`
}

// Route selection policies over a route's healthy endpoints.
const (
	PolicyPriority   = "priority"
	PolicyRoundRobin = "round_robin"
)

// EndpointList is the route's endpoints: Endpoints when set, else one
// equal-priority endpoint per distinct address of Addrs (an address
// repeated gets that many links).
func (r IssuerRoute) EndpointList() []Endpoint {
	if len(r.Endpoints) > 0 {
		return r.Endpoints
	}
	var eps []Endpoint
	index := map[string]int{}
	for _, a := range r.Addrs {
		if i, ok := index[a]; ok {
			eps[i].Links++
			continue
		}
		index[a] = len(eps)
		eps = append(eps, Endpoint{Addr: a, Links: 1})
	}
	return eps
}

// WithLinkDefaults is r with the defaults of its link settings (policy,
// breaker, links per endpoint) filled in, for a route that did not come
// through Parse.
func (r IssuerRoute) WithLinkDefaults() IssuerRoute {
	r.Endpoints = append([]Endpoint(nil), r.Endpoints...)
	applyRouteLinkDefaults(&r)
	return r
}

func applyRouteLinkDefaults(r *IssuerRoute) {
	r.Policy = orDefault(r.Policy, PolicyPriority)
	for i := range r.Endpoints {
		r.Endpoints[i].Links = orDefaultInt(r.Endpoints[i].Links, 1)
	}
	r.Breaker.Failures = orDefaultInt(r.Breaker.Failures, 5)
	setDuration(&r.Breaker.OpenFor, 10*time.Second)
	r.Breaker.Probes = orDefaultInt(r.Breaker.Probes, 1)
}

func checkRouteLinks(bad func(string, ...any), where string, r IssuerRoute) {
	if len(r.Addrs) > 0 && len(r.Endpoints) > 0 {
		bad("%s: set addrs or endpoints, not both", where)
	}
	eps := r.EndpointList()
	if len(eps) == 0 {
		bad("%s: at least one issuer address (addrs or endpoints) is required", where)
	}
	seen := map[string]bool{}
	for i, e := range eps {
		ew := fmt.Sprintf("%s endpoints[%d]", where, i)
		checkAddr(bad, ew, e.Addr)
		if seen[e.Addr] && len(r.Endpoints) > 0 {
			bad("%s: duplicate address %s (use links: for more connections)", ew, e.Addr)
		}
		seen[e.Addr] = true
		if e.Links < 0 || e.Links > 64 {
			bad("%s: links %d outside 1..64 (0: default 1)", ew, e.Links)
		}
		if t := e.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			bad("%s: tls.cert_file and tls.key_file go together", ew)
		}
	}
	if r.Policy != "" && r.Policy != PolicyPriority && r.Policy != PolicyRoundRobin {
		bad("%s: policy %q: want %s or %s", where, r.Policy, PolicyPriority, PolicyRoundRobin)
	}
	if b := r.Breaker; b.Failures < 0 || b.OpenFor < 0 || b.Probes < 0 {
		bad("%s: breaker failures, open_for and probes must be positive (0: default)", where)
	}
}

func checkServerTLS(bad func(string, ...any), where string, t *ServerTLS) {
	if t == nil {
		return
	}
	if t.CertFile == "" || t.KeyFile == "" {
		bad("%s: tls.cert_file and tls.key_file are both required", where)
	}
	if len(t.AllowedClients) > 0 && t.ClientCAFile == "" {
		bad("%s: tls.allowed_clients needs tls.client_ca_file", where)
	}
}
