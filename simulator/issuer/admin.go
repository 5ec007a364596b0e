package issuer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kbpay/switch/card/pan"
)

// AdminHandler serves the emulator's admin API for demos and field tests.
// It has no authentication: bind it to loopback. Card numbers appear only
// masked.
//
//	GET  /ledger                        {"issuer": {"masked PAN": balance}}
//	GET  /stats                         {"issuer": status}: mode, latency, seed, fault,
//	                                    active fault, schedule, Stats
//	GET  /issuers/{name}/approvals      recorded approvals, PANs masked
//	POST /issuers/{name}/mode?mode=normal|silent
//	POST /issuers/{name}/latency?d=200ms                       (fixed)
//	POST /issuers/{name}/latency?dist=fixed&value=20ms
//	POST /issuers/{name}/latency?dist=uniform&min=5ms&max=50ms
//	POST /issuers/{name}/latency?dist=lognormal|pareto&median=20ms&p99=300ms[&min=..][&max=2s]
//	POST /issuers/{name}/fault?drop=10&garbage=5&wrong_stan=5&late=1s&late_percent=20
//	                          &disconnect=true&charge_when_silent=true
//	                                    (percentages 0-100, drop+garbage+wrong_stan <= 100;
//	                                    parameters left out are off; none clears the fault)
//	POST /issuers/{name}/schedule       JSON body, windows counting from now ([] clears):
//	                                    [{"from": "10s", "to": "15s", "fault": {"drop_percent": 100}},
//	                                     {"from": "30s", "to": "40s", "fault": {"garbage_percent": 20}}]
//	POST /issuers/{name}/keychange?zpk=<32 or 48 hex digits>[&wrong_kcv=true]
//	                                    sends an 0800/161 with the new ZPK under the
//	                                    configured zmk; {"rc": the switch's DE 39}
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
	mux.HandleFunc("POST /issuers/{name}/schedule", a.withIssuer(a.setSchedule))
	mux.HandleFunc("GET /issuers/{name}/endpoints", a.withIssuer(a.endpoints))
	mux.HandleFunc("POST /issuers/{name}/endpoints/{endpoint}/down", a.withIssuer(a.takeDown))
	mux.HandleFunc("POST /issuers/{name}/endpoints/{endpoint}/silent", a.withIssuer(a.setSilent))
	mux.HandleFunc("POST /issuers/{name}/keychange", a.withIssuer(a.keyChange))
	mux.HandleFunc("POST /reset", a.reset)
	mux.HandleFunc("POST /issuers/{name}/reset", a.reset)
	return mux
}

type admin struct {
	byName map[string]*Issuer
	order  []*Issuer
}

// Status is an issuer's state as GET /stats shows it.
type Status struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	Mode string `json:"mode"`
	// Latency is the fixed delay or a distribution's typical one;
	// LatencyDist the distribution in ParseLatencyDist's form.
	Latency     string `json:"latency"`
	LatencyDist string `json:"latency_dist"`
	// Seed of the issuer's random draws, as a string (JSON numbers lose
	// 64-bit precision).
	Seed      uint64 `json:"seed,string"`
	Reversals bool   `json:"reversals"`
	// Fault is the base fault (SetFault); ActiveFault the one in force,
	// a schedule window's when one covers this instant.
	Fault       Fault            `json:"fault"`
	ActiveFault Fault            `json:"active_fault"`
	Schedule    []ScheduledFault `json:"schedule,omitempty"`
	// ScheduleElapsed is how long the schedule has been running.
	ScheduleElapsed string `json:"schedule_elapsed,omitempty"`
	Stats           Stats  `json:"stats"`
}

// Status returns the issuer's mode, latency, faults and counters.
func (is *Issuer) Status() Status {
	st := Status{
		Name: is.Name(), Addr: is.Addr(), Mode: is.Mode().String(),
		Latency: is.Latency().String(), LatencyDist: is.LatencyDist().String(), Seed: is.Seed(),
		Reversals: is.reversals, Fault: is.Fault(), ActiveFault: is.ActiveFault(),
		Stats: is.Stats(),
	}
	if sched, elapsed := is.Schedule(); len(sched) > 0 {
		st.Schedule, st.ScheduleElapsed = sched, elapsed.String()
	}
	return st
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

func (a *admin) keyChange(w http.ResponseWriter, r *http.Request, is *Issuer) {
	zpk, err := hex.DecodeString(r.URL.Query().Get("zpk"))
	if err != nil || (len(zpk) != 16 && len(zpk) != 24) {
		writeError(w, http.StatusBadRequest, "zpk must be 32 or 48 hex digits")
		return
	}
	rc, err := is.ChangeKey(zpk, r.URL.Query().Get("wrong_kcv") == "true")
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"rc": rc})
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
	q := r.URL.Query()
	if !q.Has("dist") {
		d, err := time.ParseDuration(q.Get("d"))
		if err != nil || d < 0 || len(q) != 1 {
			writeError(w, http.StatusBadRequest, "want d=<non-negative duration such as 200ms>, or dist=fixed|uniform|lognormal|pareto with its parameters")
			return
		}
		is.SetLatency(d)
		writeJSON(w, http.StatusOK, is.Status())
		return
	}
	params := make(map[string]string, len(q))
	for k, v := range q {
		if k != "dist" {
			params[k] = v[0]
		}
	}
	d, err := latencyDistFrom(q.Get("dist"), params)
	if err == nil {
		err = is.SetLatencyDist(d)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, is.Status())
}

func (a *admin) setFault(w http.ResponseWriter, r *http.Request, is *Issuer) {
	q := r.URL.Query()
	var f Fault
	var err error
	percents := []struct {
		name string
		dst  *int
	}{{"drop", &f.DropPercent}, {"garbage", &f.GarbagePercent}, {"wrong_stan", &f.WrongSTANPercent}, {"late_percent", &f.LatePercent}}
	for _, p := range percents {
		if v := q.Get(p.name); v != "" {
			if *p.dst, err = strconv.Atoi(v); err != nil || *p.dst < 0 || *p.dst > 100 {
				writeError(w, http.StatusBadRequest, p.name+" must be a percentage 0-100")
				return
			}
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
	if err := f.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	is.SetFault(f)
	writeJSON(w, http.StatusOK, is.Status())
}

// maxScheduleBody bounds POST /issuers/{name}/schedule bodies.
const maxScheduleBody = 1 << 20

func (a *admin) setSchedule(w http.ResponseWriter, r *http.Request, is *Issuer) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxScheduleBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	var sched []ScheduledFault
	if err := strictUnmarshal(body, &sched); err != nil || sched == nil { // [] decodes non-nil, null nil
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`body must be a JSON array of {"from": "10s", "to": "15s", "fault": {...}} windows: %v`, err))
		return
	}
	if err := is.SetSchedule(sched); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
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

// endpoints lists the issuer's endpoints (index, address, down, silent).
func (a *admin) endpoints(w http.ResponseWriter, _ *http.Request, is *Issuer) {
	writeJSON(w, http.StatusOK, is.Endpoints())
}

// takeDown closes one endpoint, named by index or address.
func (a *admin) takeDown(w http.ResponseWriter, r *http.Request, is *Issuer) {
	a.endpointAction(w, is, is.TakeDown(r.PathValue("endpoint")))
}

// setSilent makes one endpoint silent (on=true, the default) or answer
// again (on=false).
func (a *admin) setSilent(w http.ResponseWriter, r *http.Request, is *Issuer) {
	on := r.URL.Query().Get("on") != "false"
	a.endpointAction(w, is, is.SetSilent(r.PathValue("endpoint"), on))
}

func (a *admin) endpointAction(w http.ResponseWriter, is *Issuer, err error) {
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, is.Endpoints())
}
