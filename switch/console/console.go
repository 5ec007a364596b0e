// Package console is the operators' web console on the admin port
// (/console/): an overview of listeners, routes, the SAF backlog and
// readiness; the transaction look-up; the SAF desk; token suspend and
// resume. Pages are rendered on the server (html/template) from embedded
// templates and one stylesheet: no CDN, no script, nothing fetched from
// elsewhere. Read-only pages are plain links and GET forms; actions are POST
// forms with a per-session CSRF token.
//
// The console reads the switch through Source, which the switch implements
// (switch/console.go); it never sees a full card number: rows carry masked
// cards, and whatever card-like text an operator types is masked before it
// is searched, shown, put in a URL or logged.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// Source is what the console reads and acts on. Errors callers decide on
// are the store's sentinels: store.ErrNotFound, store.ErrSAFState,
// store.ErrNoReason, store.ErrFinal.
type Source interface {
	// Overview is the switch's state now, with cumulative counters the
	// console turns into rates.
	Overview(ctx context.Context) (Overview, error)
	// Search lists the transactions f selects, newest first.
	Search(ctx context.Context, f store.TxnFilter) ([]store.Txn, error)
	// Transaction reads one transaction with its history, SAF items and
	// cancels.
	Transaction(ctx context.Context, id int64) (Transaction, error)
	// SAF lists the items f selects and counts every state.
	SAF(ctx context.Context, f store.SAFFilter) ([]store.SAFItem, map[string]int, error)
	// Retry makes a SAF item due at once (store.SAFDesk.RetryNow).
	Retry(ctx context.Context, id int64, who string) (store.SAFItem, error)
	// Resolve closes a SAF item in review with a reason.
	Resolve(ctx context.Context, id int64, who, reason string) (store.SAFItem, error)
	// Token reads a token's vault record.
	Token(ctx context.Context, token string) (store.TokenRecord, error)
	// SetTokenStatus suspends or resumes a token.
	SetTokenStatus(ctx context.Context, token string, to store.TokenStatus) (store.TokenRecord, error)
}

// Overview is the switch's state at one moment. Counters are cumulative
// since start; the console samples them to show rates over the last minute.
type Overview struct {
	Instance  string
	Ready     bool
	Draining  bool
	Journal   string // the journal's state ("ok", or why it refuses)
	Listeners []ListenerState
	Routes    []RouteState
	SAF       map[string]int // items by state
}

// ListenerState is one terminal or VAN listener.
type ListenerState struct {
	Name        string
	Addr        string
	Connections int64
	InFlight    int64
	Requests    uint64    // requests answered
	Latency     Histogram // request to answer
}

// RouteState is one issuer route and its endpoints.
type RouteState struct {
	Name      string
	BINs      []string
	LinksUp   int // links signed on
	Links     int // links configured
	Endpoints []EndpointState
	Requests  uint64    // terminal requests routed here
	Sales     uint64    // of which authorisations and financial requests
	Approved  uint64    // of which answered 00
	Latency   Histogram // issuer round trips
}

// EndpointState is one issuer endpoint of a route: its signed-on links
// and circuit breaker (unknown, -1 and "", for a route without a running
// link).
type EndpointState struct {
	Addr    string
	LinksUp int // -1: unknown
	Links   int
	Breaker string // closed, half-open, open; "" unknown
}

// Histogram is a cumulative latency histogram (seconds): Counts[i] is the
// observations <= Bounds[i]; Count all of them.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
}

// Transaction is one journal row with what happened to it.
type Transaction struct {
	Txn     store.Txn
	History []store.Event
	SAF     []store.SAFItem
	Cancels []store.Txn // cancels, refunds and reversals of this sale
}

// Config configures the console.
type Config struct {
	// Bearer is the admin bearer token, the console's password.
	Bearer string
	// Secure marks the session cookie Secure (the admin port serves TLS).
	Secure bool
	// IdleTimeout ends a session not used for this long. Default 15m.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after login. Default 8h.
	MaxAge time.Duration
	// Refresh is how often the overview reloads itself. Default 5s.
	Refresh time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

//go:embed templates/*.html static/*
var assets embed.FS

// Console is the console's HTTP handler; mount it at Prefix.
type Console struct {
	src      Source
	cfg      Config
	log      *zap.Logger // the audit log: every login, logout and action
	pages    map[string]*template.Template
	sessions *sessions
	rates    *sampler
	mux      *http.ServeMux
}

// Prefix is where the console is served.
const Prefix = "/console/"

// New builds the console over src. log receives the audit records.
func New(src Source, cfg Config, log *zap.Logger) (*Console, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 8 * time.Hour
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{src: src, cfg: cfg, log: log, pages: pages,
		sessions: newSessions(cfg), rates: newSampler(time.Minute)}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	static, _ := fs.Sub(assets, "static")
	m := http.NewServeMux()
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.Handle("POST /console/logout", c.action(c.logout))
	m.Handle("GET /console/{$}", c.page(c.overview))
	m.Handle("GET /console/transactions", c.page(c.transactions))
	m.Handle("POST /console/transactions", c.action(c.searchPost))
	m.Handle("GET /console/transactions/{id}", c.page(c.transaction))
	m.Handle("GET /console/saf", c.page(c.saf))
	m.Handle("POST /console/saf/{id}/retry", c.action(c.safRetry))
	m.Handle("POST /console/saf/{id}/resolve", c.action(c.safResolve))
	m.Handle("GET /console/tokens", c.page(c.tokens))
	m.Handle("POST /console/tokens", c.action(c.tokenLookup))
	m.Handle("POST /console/tokens/status", c.action(c.tokenStatus))
	c.mux = m
}

// ServeHTTP serves the console; every answer forbids caching and framing
// and allows only the console's own stylesheet.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}
