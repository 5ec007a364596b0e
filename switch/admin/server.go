// Package admin is the switch's admin HTTP endpoint: metrics, health, the operators' API and console.
package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kbpay/switch/specs/codes"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp"
	"github.com/kbpay/switch/switch/upstream"
)

// Switch is what the admin endpoint needs from the running switch.
type Switch interface {
	// Draining reports whether the switch stopped taking transactions.
	Draining() bool
	// Accepting reports whether every terminal listener is bound and
	// accepting (false until Start has bound them all).
	Accepting() bool
	// Journal reports whether the journal takes writes, and its state in words.
	Journal() (ok bool, state string)
	// ActiveRoutes are the routes in the BIN table.
	ActiveRoutes() []config.IssuerRoute
	// Links are the running issuer links by route, those a reload removed
	// from the BIN table (kept for give-backs) included.
	Links() map[string]*upstream.Link
	// Listeners are the terminal listeners now.
	Listeners() []Listener
	// ListenerLinks is each listener's connections and sign-ons, as GET
	// /v1/links shows them (JSON).
	ListenerLinks() any
	// ReloadFile re-reads the configuration file and applies it; the
	// result is the JSON body of an applied reload.
	ReloadFile(ctx context.Context) (any, error)
	// RetrySAF and ResolveSAF are the operators' SAF actions.
	RetrySAF(ctx context.Context, id int64, who string) (store.SAFItem, error)
	ResolveSAF(ctx context.Context, id int64, who, reason string) (store.SAFItem, error)
}

// Listener is one terminal listener's state.
type Listener struct {
	Name        string
	Addr        string // bound address (configured until bound)
	Connections int64
}

// Store is the part of the store the admin endpoint reads.
type Store interface {
	Instance() store.Instance
	Lookup() store.Lookup
	SAFDesk() store.SAFDesk
}

// Deps are the admin endpoint's parts besides the switch.
type Deps struct {
	Config  config.Config
	Log     *zap.Logger
	Metrics prometheus.Gatherer // served on /metrics, read by the console
	Store   Store
	Tokens  *tsp.Service
}

// Server serves /metrics, /healthz and /readyz, and the bearer-token
// guarded provisioning, SAF and reconciliation APIs; over HTTPS when
// admin.tls is configured.
type Server struct {
	srv *http.Server
	ln  net.Listener
	sw  Switch
	Deps
	tls *tls.Config // nil: plain HTTP
}

// New builds the admin endpoint (Listen binds it).
func New(sw Switch, d Deps) (*Server, error) {
	bearer, err := Bearer(d.Config, os.Getenv, d.Log)
	if err != nil {
		return nil, err
	}
	tlsConf, err := TLSConfig(d.Config.Admin)
	if err != nil {
		return nil, err
	}
	a := &Server{sw: sw, Deps: d, tls: tlsConf}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("/v1/tokens", d.Tokens.API(bearer))
	mux.Handle("/v1/tokens/", d.Tokens.API(bearer))
	a.registerOperations(mux, bearer) // ops.go: transactions, SAF
	mux.Handle("GET /v1/reconciliations", requireBearer(bearer, http.HandlerFunc(a.reconciliations)))
	a.linkAPI(mux, bearer)           // GET /v1/links, POST /v1/reload (links.go)
	con, err := a.newConsole(bearer) // the operator console (console.go)
	if err != nil {
		return nil, err
	}
	mux.Handle("/console/", con)
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusSeeOther))
	a.srv = &http.Server{Addr: d.Config.Admin.Addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConf}
	return a, nil
}

// LogMode says which mode the switch runs in, and warns about an admin
// endpoint that serves plain HTTP off loopback.
func LogMode(cfg config.Config, log *zap.Logger) {
	dev, reason := cfg.DevelopmentMode(os.Getenv)
	if dev {
		log.Warn("DEVELOPMENT mode: the demo admin token and the public demo keys are allowed; binding anything off loopback or configuring a master key switches them off",
			zap.String("reason", reason))
		return
	}
	log.Info("production mode: no demo token or demo keys", zap.String("reason", reason))
	if cfg.Admin.TLS == nil && !config.IsLoopback(cfg.Admin.Addr) {
		log.Warn("admin API serves plain HTTP off loopback: its bearer token crosses the network in clear; configure admin.tls",
			zap.String("addr", cfg.Admin.Addr))
	}
}

// Bearer is the admin APIs' bearer token: the variable named by
// admin.bearer_token_env, or the public demo token in development mode
// only (config.CheckProduction has already refused anything else).
func Bearer(cfg config.Config, getenv func(string) string, log *zap.Logger) (string, error) {
	if bearer := getenv(cfg.Admin.BearerTokenEnv); bearer != "" {
		return bearer, nil
	}
	if dev, reason := cfg.DevelopmentMode(getenv); !dev {
		return "", fmt.Errorf("admin.bearer_token_env %s is unset: required outside development mode (%s)", cfg.Admin.BearerTokenEnv, reason)
	}
	log.Warn("admin API uses the documented DEMO bearer token (development mode only); set the variable to change it",
		zap.String("variable", cfg.Admin.BearerTokenEnv))
	return config.DemoAdminToken, nil
}

// TLSConfig loads admin.tls's certificate and key; nil without admin.tls.
// switchd -t runs it too, so a bad certificate is reported before start.
func TLSConfig(cfg config.Admin) (*tls.Config, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls: loading certificate %s and key %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ready is 200 while the switch accepts traffic (listeners open, not
// draining, the journal accepting writes) and lists each route's
// signed-on links; a route that is down does not make the instance
// unready, since other issuers still work. While the journal fails, sales
// are refused (91), so the instance is unready and "journal" says why.
func (a *Server) ready(w http.ResponseWriter, _ *http.Request) {
	type routeState struct {
		Name    string `json:"name"`
		LinksUp int    `json:"links_up"`
	}
	body := struct {
		Ready     bool         `json:"ready"`
		Draining  bool         `json:"draining"`
		Accepting bool         `json:"accepting"`
		Instance  string       `json:"instance"`
		Journal   string       `json:"journal"`
		Routes    []routeState `json:"routes"`
	}{Draining: a.sw.Draining(), Accepting: a.sw.Accepting(), Instance: a.Store.Instance().Name}
	journalOK, journalState := a.sw.Journal()
	body.Journal = journalState
	links := a.sw.Links()
	for _, rc := range a.sw.ActiveRoutes() {
		body.Routes = append(body.Routes, routeState{Name: rc.Name, LinksUp: links[rc.Name].Up()})
	}
	body.Ready = !body.Draining && body.Accepting && journalOK
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Listen binds the admin address and serves it in the background.
func (a *Server) Listen() error {
	ln, err := net.Listen("tcp", a.srv.Addr)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	if a.tls != nil {
		ln = tls.NewListener(ln, a.tls)
	}
	a.ln = ln
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Sugar().Errorw("admin endpoint stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the bound address ("" before Listen).
func (a *Server) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close stops serving (the server is not to be used again).
func (a *Server) Close(ctx context.Context) error {
	if a.ln == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}

// requireBearer lets a request through only with the bearer token,
// compared in constant time (tsp.BearerMatcher).
func requireBearer(bearer string, h http.Handler) http.Handler {
	authorized := tsp.BearerMatcher(bearer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r.Header.Get("Authorization")) {
			http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reconciliations lists terminal batches that did not agree with the
// journal (answered 95), newest first, with the recorded difference.
func (a *Server) reconciliations(w http.ResponseWriter, r *http.Request) {
	rows, err := a.Store.Lookup().Reconciliations(r.Context(), string(codes.ReconcileError), 100)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	type rec struct {
		TxnID      int64     `json:"txn_id"`
		TerminalID string    `json:"terminal_id"`
		At         time.Time `json:"at"`
		Difference []string  `json:"difference"`
	}
	out := []rec{}
	for _, t := range rows {
		ev, _ := a.Store.Lookup().Events(r.Context(), t.ID)
		out = append(out, rec{t.ID, t.TerminalID, t.CreatedAt.UTC(), ev})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
