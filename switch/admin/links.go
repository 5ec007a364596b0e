package admin

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/kbpay/switch/switch/upstream"
)

// linkAPI adds GET /v1/links (each route's endpoints: links signed on,
// circuit breaker, requests; each listener's connections and sign-ons) and POST /v1/reload (re-read the
// configuration file and apply it as a diff), both behind the bearer token.
func (a *Server) linkAPI(mux *http.ServeMux, bearer string) {
	mux.Handle("GET /v1/links", requireBearer(bearer, http.HandlerFunc(a.links)))
	mux.Handle("POST /v1/reload", requireBearer(bearer, http.HandlerFunc(a.reloadConfig)))
}

// RouteLinks is one route's state in GET /v1/links.
type RouteLinks struct {
	Route     string                    `json:"route"`
	Active    bool                      `json:"active"` // in the BIN table (false: removed by a reload, link kept for give-backs)
	Policy    string                    `json:"policy"`
	LinksUp   int                       `json:"links_up"`
	Endpoints []upstream.EndpointStatus `json:"endpoints"`
}

// routeLinks reports every route's endpoints, sorted by route.
func (a *Server) routeLinks() []RouteLinks {
	active := map[string]bool{}
	for _, r := range a.sw.ActiveRoutes() {
		active[r.Name] = true
	}
	var out []RouteLinks
	for name, l := range a.sw.Links() {
		out = append(out, RouteLinks{Route: name, Active: active[name], Policy: l.Policy(),
			LinksUp: l.Up(), Endpoints: l.Endpoints()})
	}
	slices.SortFunc(out, func(a, b RouteLinks) int {
		if a.Route < b.Route {
			return -1
		}
		if a.Route > b.Route {
			return 1
		}
		return 0
	})
	return out
}

func (a *Server) links(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Routes    []RouteLinks `json:"routes"`
		Listeners any          `json:"listeners"`
	}{a.routeLinks(), a.sw.ListenerLinks()})
}

func (a *Server) reloadConfig(w http.ResponseWriter, r *http.Request) {
	sum, err := a.sw.ReloadFile(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(sum)
}
