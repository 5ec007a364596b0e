package terminalserver

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// series are the metric children one listener counts every request in,
// looked up once each: WithLabelValues checks, hashes and looks up its
// label values under the vector's lock on every call, several times per
// request, from every connection at once.
type series struct {
	listener string
	m        *Metrics
	inFlight prometheus.Gauge
	requests sync.Map // requestLabels -> prometheus.Counter
	duration sync.Map // MTI label -> prometheus.Observer
}

// requestLabels are a request series' labels besides the listener.
type requestLabels struct{ mti, route, rc string }

func newSeries(m *Metrics, listener string) *series {
	return &series{listener: listener, m: m, inFlight: m.InFlight.WithLabelValues(listener)}
}

// request is the payswitch_requests_total child of (mti, route, rc).
func (s *series) request(mti, route, rc string) prometheus.Counter {
	k := requestLabels{mti, route, rc}
	if c, ok := s.requests.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := s.requests.LoadOrStore(k, s.m.Requests.WithLabelValues(s.listener, mti, route, rc))
	return c.(prometheus.Counter)
}

// latency is the request duration child of mti (a label: MTILabel).
func (s *series) latency(mti string) prometheus.Observer {
	if o, ok := s.duration.Load(mti); ok {
		return o.(prometheus.Observer)
	}
	o, _ := s.duration.LoadOrStore(mti, s.m.Duration.WithLabelValues(s.listener, mti))
	return o.(prometheus.Observer)
}
