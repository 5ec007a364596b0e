package admin

import (
	"context"
	"errors"
	"fmt"
	"github.com/kbpay/switch/specs/codes"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/console"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp"
	"github.com/kbpay/switch/switch/upstream"
)

// consoleSource is the switch as the operator console (switch/console)
// reads it: state from the listeners, links and the metrics registry,
// transactions and SAF items from the store, tokens from the token
// service.
type consoleSource struct{ a *Server }

var _ console.Source = consoleSource{}

// newConsole builds the console served at /console/ on the admin port.
func (a *Server) newConsole(bearer string) (*console.Console, error) {
	return console.New(consoleSource{a}, console.Config{Bearer: bearer, Secure: a.tls != nil},
		a.Log.Named("console"))
}

func (c consoleSource) Overview(ctx context.Context) (console.Overview, error) {
	a := c.a
	journalOK, journalState := a.sw.Journal()
	ov := console.Overview{Instance: a.Store.Instance().Name, Draining: a.sw.Draining(), Journal: journalState}
	ov.Ready = journalOK && !ov.Draining
	fams, err := a.Metrics.Gather()
	if err != nil {
		return ov, fmt.Errorf("gathering metrics: %w", err)
	}
	m := indexMetrics(fams)
	for _, l := range a.sw.Listeners() {
		st := console.ListenerState{Name: l.Name, Addr: l.Addr, Connections: l.Connections}
		for _, x := range m["payswitch_in_flight"] {
			if label(x, "listener") == l.Name {
				st.InFlight += int64(x.GetGauge().GetValue())
			}
		}
		for _, x := range m["payswitch_requests_total"] {
			if label(x, "listener") == l.Name {
				st.Requests += uint64(x.GetCounter().GetValue())
			}
		}
		st.Latency = mergeHistograms(m["payswitch_request_duration_seconds"], "listener", l.Name)
		ov.Listeners = append(ov.Listeners, st)
	}
	links := a.sw.Links()
	for _, rc := range a.sw.ActiveRoutes() {
		st := console.RouteState{Name: rc.Name, BINs: rc.BINs}
		st.Endpoints, st.LinksUp, st.Links = routeEndpoints(rc, links[rc.Name])
		for _, x := range m["payswitch_requests_total"] {
			if label(x, "route") != rc.Name {
				continue
			}
			n := uint64(x.GetCounter().GetValue())
			st.Requests += n
			if mti := label(x, "mti"); mti == specs.MTIAuthRequest || mti == specs.MTIFinancialRequest {
				st.Sales += n
				if label(x, "rc") == string(codes.Approved) {
					st.Approved += n
				}
			}
		}
		st.Latency = mergeHistograms(m["payswitch_issuer_duration_seconds"], "route", rc.Name)
		ov.Routes = append(ov.Routes, st)
	}
	if ov.SAF, err = a.Store.SAFDesk().Counts(ctx); err != nil {
		return ov, fmt.Errorf("counting SAF items: %w", err)
	}
	return ov, nil
}

// routeEndpoints is the state of each endpoint of a route's running link
// (as configured, state unknown, when the route has no link), with the
// signed-on and configured links over all of them.
func routeEndpoints(rc config.IssuerRoute, l *upstream.Link) (eps []console.EndpointState, up, links int) {
	if l == nil {
		for _, ec := range rc.EndpointList() {
			eps = append(eps, console.EndpointState{Addr: ec.Addr, LinksUp: -1, Links: max(ec.Links, 1)})
			links += max(ec.Links, 1)
		}
		return eps, 0, links
	}
	for _, e := range l.Endpoints() {
		eps = append(eps, console.EndpointState{Addr: e.Addr, LinksUp: e.LinksUp, Links: e.Links, Breaker: e.Breaker})
		links += e.Links
	}
	return eps, l.Up(), links
}

func indexMetrics(fams []*dto.MetricFamily) map[string][]*dto.Metric {
	m := map[string][]*dto.Metric{}
	for _, f := range fams {
		m[f.GetName()] = f.GetMetric()
	}
	return m
}

func label(x *dto.Metric, name string) string {
	for _, l := range x.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// mergeHistograms adds the histograms whose label key is value (they share
// their buckets).
func mergeHistograms(xs []*dto.Metric, key, value string) console.Histogram {
	var h console.Histogram
	for _, x := range xs {
		if label(x, key) != value || x.GetHistogram() == nil {
			continue
		}
		hist := x.GetHistogram()
		if h.Bounds == nil {
			for _, b := range hist.GetBucket() {
				h.Bounds = append(h.Bounds, b.GetUpperBound())
			}
			h.Counts = make([]uint64, len(h.Bounds))
		}
		if len(hist.GetBucket()) != len(h.Bounds) {
			continue
		}
		for i, b := range hist.GetBucket() {
			h.Counts[i] += b.GetCumulativeCount()
		}
		h.Count += hist.GetSampleCount()
	}
	return h
}

func (c consoleSource) Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error) {
	return c.a.Store.Lookup().Search(ctx, f)
}

func (c consoleSource) Transaction(ctx context.Context, id int64) (console.Transaction, error) {
	look := c.a.Store.Lookup()
	t, err := look.Get(ctx, id)
	if err != nil {
		return console.Transaction{}, err
	}
	out := console.Transaction{Txn: t}
	if out.History, err = look.History(ctx, id); err != nil {
		return out, err
	}
	if out.SAF, err = c.a.Store.SAFDesk().Search(ctx, store.SAFFilter{TxnID: id}); err != nil {
		return out, err
	}
	out.Cancels, err = look.Search(ctx, store.TxnFilter{OriginalID: id, Limit: store.MaxSearch})
	return out, err
}

func (c consoleSource) SAF(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, map[string]int, error) {
	desk := c.a.Store.SAFDesk()
	items, err := desk.Search(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	counts, err := desk.Counts(ctx)
	return items, counts, err
}

// Retry and Resolve are the admin API's SAF actions.
func (c consoleSource) Retry(ctx context.Context, id int64, who string) (store.SAFItem, error) {
	return c.a.sw.RetrySAF(ctx, id, who)
}

func (c consoleSource) Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error) {
	return c.a.sw.ResolveSAF(ctx, id, who, reason)
}

func (c consoleSource) Token(ctx context.Context, token string) (store.TokenRecord, error) {
	rec, err := c.a.Tokens.Get(ctx, token)
	return rec, tokenErr(err)
}

func (c consoleSource) SetTokenStatus(ctx context.Context, token string, to store.TokenStatus) (store.TokenRecord, error) {
	if !slices.Contains([]store.TokenStatus{store.TokenActive, store.TokenSuspended}, to) {
		return store.TokenRecord{}, fmt.Errorf("console: token status %q: %w", to, tsp.ErrInvalid)
	}
	rec, err := c.a.Tokens.SetStatus(ctx, token, to)
	return rec, tokenErr(err)
}

// tokenErr maps the token service's errors to the store's sentinels the
// console decides on.
func tokenErr(err error) error {
	switch {
	case errors.Is(err, tsp.ErrUnknownToken):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, tsp.ErrFinal):
		return fmt.Errorf("%w: %w", store.ErrFinal, err)
	}
	return err
}
