package issuer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kbpay/switch/switch/pan"
)

// AdminHandler serves the emulator's admin API for demos and field tests.
// It has no authentication: bind it to loopback. Card numbers appear only
// masked.
//
//	GET  /ledger                        {"issuer": {"masked PAN": balance}}
//	GET  /stats                         {"issuer": status}: mode, latency, fault, Stats
//	GET  /issuers/{name}/approvals      recorded approvals, PANs masked
//	POST /issuers/{name}/mode?mode=normal|silent
//	POST /issuers/{name}/latency?d=200ms
//	POST /issuers/{name}/fault?drop=10&late=1s&disconnect=true&charge_when_silent=true
//	                                    (parameters left out are off; no parameters clear the fault)
//
// The POST endpoints answer with the issuer's status.
func AdminHandler(issuers []*Issuer) http.Handler {
	a := &admin{byName: make(map[string]*Issuer, len(issuers)), order: issuers}
	for _, is := range issuers {
		a.byName[is.Name()] = is
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ledger", a.ledger)
	mux.HandleFunc("GET /stats", a.stats)
	mux.HandleFunc("GET /issuers/{name}/approvals", a.withIssuer(a.approvals))
	mux.HandleFunc("POST /issuers/{name}/mode", a.withIssuer(a.setMode))
	mux.HandleFunc("POST /issuers/{name}/latency", a.withIssuer(a.setLatency))
	mux.HandleFunc("POST /issuers/{name}/fault", a.withIssuer(a.setFault))
	return mux
}

type admin struct {
	byName map[string]*Issuer
	order  []*Issuer
}

// Status is an issuer's state as GET /stats shows it.
type Status struct {
	Name      string      `json:"name"`
	Addr      string      `json:"addr"`
	Mode      string      `json:"mode"`
	Latency   string      `json:"latency"`
	Reversals bool        `json:"reversals"`
	Fault     FaultStatus `json:"fault"`
	Stats     Stats       `json:"stats"`
}

// FaultStatus is Fault with its duration as text.
type FaultStatus struct {
	DropPercent      int    `json:"drop_percent"`
	LateBy           string `json:"late_by"`
	Disconnect       bool   `json:"disconnect"`
	ChargeWhenSilent bool   `json:"charge_when_silent"`
}

// Status returns the issuer's mode, latency, fault and counters.
func (is *Issuer) Status() Status {
	f := is.Fault()
	return Status{
		Name: is.Name(), Addr: is.Addr(), Mode: is.Mode().String(), Latency: is.Latency().String(),
		Reversals: is.reversals,
		Fault: FaultStatus{DropPercent: f.DropPercent, LateBy: f.LateBy.String(),
			Disconnect: f.Disconnect, ChargeWhenSilent: f.ChargeWhenSilent},
		Stats: is.Stats(),
	}
}

// MaskedLedger returns Ledger with masked PANs as keys. Two accounts with
// the same mask get " #2", " #3"... after it, in PAN order.
func (is *Issuer) MaskedLedger() map[string]int64 {
	l := is.Ledger()
	pans := make([]string, 0, len(l))
	for p := range l {
		pans = append(pans, p)
	}
	slices.Sort(pans)
	out := make(map[string]int64, len(l))
	seen := make(map[string]int, len(l))
	for _, p := range pans {
		k := pan.Mask(p)
		seen[k]++
		if n := seen[k]; n > 1 {
			k = fmt.Sprintf("%s #%d", k, n)
		}
		out[k] = l[p]
	}
	return out
}

func (a *admin) ledger(w http.ResponseWriter, _ *http.Request) {
	out := make(map[string]map[string]int64, len(a.order))
	for _, is := range a.order {
		out[is.Name()] = is.MaskedLedger()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) stats(w http.ResponseWriter, _ *http.Request) {
	out := make(map[string]Status, len(a.order))
	for _, is := range a.order {
		out[is.Name()] = is.Status()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) approvals(w http.ResponseWriter, _ *http.Request, is *Issuer) {
	list := is.Approvals()
	for i := range list {
		list[i].PAN = "" // json:"-" already; belt and braces
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *admin) setMode(w http.ResponseWriter, r *http.Request, is *Issuer) {
	m, err := ParseMode(r.URL.Query().Get("mode"))
	if err != nil || !r.URL.Query().Has("mode") {
		writeError(w, http.StatusBadRequest, "mode must be normal or silent")
		return
	}
	is.SetMode(m)
	writeJSON(w, http.StatusOK, is.Status())
}

func (a *admin) setLatency(w http.ResponseWriter, r *http.Request, is *Issuer) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 {
		writeError(w, http.StatusBadRequest, "d must be a non-negative duration such as 200ms")
		return
	}
	is.SetLatency(d)
	writeJSON(w, http.StatusOK, is.Status())
}

func (a *admin) setFault(w http.ResponseWriter, r *http.Request, is *Issuer) {
	q := r.URL.Query()
	var f Fault
	var err error
	if v := q.Get("drop"); v != "" {
		if f.DropPercent, err = strconv.Atoi(v); err != nil || f.DropPercent < 0 || f.DropPercent > 100 {
			writeError(w, http.StatusBadRequest, "drop must be a percentage 0-100")
			return
		}
	}
	if v := q.Get("late"); v != "" {
		if f.LateBy, err = time.ParseDuration(v); err != nil || f.LateBy < 0 {
			writeError(w, http.StatusBadRequest, "late must be a non-negative duration such as 2s")
			return
		}
	}
	for name, dst := range map[string]*bool{"disconnect": &f.Disconnect, "charge_when_silent": &f.ChargeWhenSilent} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				writeError(w, http.StatusBadRequest, name+" must be true or false")
				return
			}
		}
	}
	is.SetFault(f)
	writeJSON(w, http.StatusOK, is.Status())
}

// withIssuer resolves {name} or answers 404.
func (a *admin) withIssuer(h func(http.ResponseWriter, *http.Request, *Issuer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		is, ok := a.byName[r.PathValue("name")]
		if !ok {
			writeError(w, http.StatusNotFound, "no issuer named "+strconv.Quote(r.PathValue("name")))
			return
		}
		h(w, r, is)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
