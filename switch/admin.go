package payswitch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/config"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves /metrics, /healthz and /readyz.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
	sw  *Switch
}

func newAdminServer(addr string, sw *Switch) *adminServer {
	a := &adminServer{sw: sw}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(sw.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.ready)
	bearer := os.Getenv(sw.cfg.Admin.BearerTokenEnv)
	if bearer == "" {
		bearer = config.DemoAdminToken
		sw.log.Warn("provisioning API uses the documented DEMO bearer token; set the variable to change it",
			zap.String("variable", sw.cfg.Admin.BearerTokenEnv))
	}
	mux.Handle("/v1/", sw.tokens.API(bearer))
	a.srv = &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return a
}

// ready is 200 while the switch accepts traffic (listeners open, not
// draining) and lists each route's signed-on links; a route that is down
// does not make the instance unready, since other issuers still work.
func (a *adminServer) ready(w http.ResponseWriter, _ *http.Request) {
	type routeState struct {
		Name    string `json:"name"`
		LinksUp int    `json:"links_up"`
	}
	body := struct {
		Ready    bool         `json:"ready"`
		Draining bool         `json:"draining"`
		Routes   []routeState `json:"routes"`
	}{Draining: a.sw.txns.isDraining()}
	for _, rc := range a.sw.cfg.Routes {
		body.Routes = append(body.Routes, routeState{Name: rc.Name, LinksUp: a.sw.links[rc.Name].Up()})
	}
	body.Ready = !body.Draining
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (a *adminServer) listen() error {
	ln, err := net.Listen("tcp", a.srv.Addr)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	a.ln = ln
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.sw.log.Sugar().Errorw("admin endpoint stopped", "error", err)
		}
	}()
	return nil
}

func (a *adminServer) addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

func (a *adminServer) close(ctx context.Context) error {
	if a.ln == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}
