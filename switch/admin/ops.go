package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/switch/store"
)

// The operators' look-up and SAF actions on the admin API (bearer token):
//
//	GET  /v1/transactions?rrn=&stan=&terminal=&merchant=&from=&to=&state=&limit=
//	GET  /v1/transactions/{id}
//	GET  /v1/saf?state=&route=&kind=&txn=&limit=
//	POST /v1/saf/{id}/retry    {"operator": "..."}
//	POST /v1/saf/{id}/resolve  {"operator": "...", "reason": "..."}
//
// Cards appear masked (6+4) only; times are RFC 3339 UTC.

// registerOperations adds the look-up and SAF action routes to mux.
func (a *Server) registerOperations(mux *http.ServeMux, bearer string) {
	guard := func(h http.HandlerFunc) http.Handler { return requireBearer(bearer, h) }
	mux.Handle("GET /v1/transactions", guard(a.txnSearch))
	mux.Handle("GET /v1/transactions/{id}", guard(a.txnGet))
	mux.Handle("GET /v1/saf", guard(a.safSearch))
	mux.Handle("POST /v1/saf/{id}/retry", guard(a.safRetry))
	mux.Handle("POST /v1/saf/{id}/resolve", guard(a.safResolve))
}

// txnView is one journal row as the API shows it.
type txnView struct {
	ID           int64       `json:"id"`
	Listener     string      `json:"listener"`
	MTI          string      `json:"mti"`
	ProcCode     string      `json:"processing_code"`
	TerminalID   string      `json:"terminal_id"`
	MerchantID   string      `json:"merchant_id"`
	STAN         string      `json:"stan"`
	TxTime       string      `json:"transmission_time"`
	Card         string      `json:"card"`
	Amount       int64       `json:"amount"`
	Currency     string      `json:"currency"`
	Remaining    int64       `json:"remaining"`
	Route        string      `json:"route,omitempty"`
	IssuerSTAN   string      `json:"issuer_stan,omitempty"`
	RRN          string      `json:"rrn,omitempty"`
	ApprovalCode string      `json:"approval_code,omitempty"`
	RC           string      `json:"response_code,omitempty"`
	State        string      `json:"state"`
	OriginalID   int64       `json:"original_id,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	ElapsedMS    int64       `json:"elapsed_ms"`
	Events       []eventView `json:"events"`
	SAF          []safView   `json:"saf,omitempty"`
}

type eventView struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

type safView struct {
	ID        int64     `json:"id"`
	TxnID     int64     `json:"txn_id"`
	Route     string    `json:"route"`
	Kind      string    `json:"kind"`
	Amount    int64     `json:"amount"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	LastError string    `json:"last_error,omitempty"`
	// Owner is the instance holding the item (its claim or retry lease).
	Owner string `json:"owner,omitempty"`
}

func viewSAF(it store.SAFItem) safView {
	return safView{it.ID, it.TxnID, it.Route, it.Kind, it.Amount, it.State, it.Attempts, it.NextAt.UTC(), it.ExpiresAt.UTC(), it.CreatedAt.UTC(), it.LastError,
		it.Owner}
}

// view builds a row's view with its history and SAF items.
func (a *Server) view(r *http.Request, t store.Txn) (txnView, error) {
	v := txnView{ID: t.ID, Listener: t.Listener, MTI: t.MTI, ProcCode: t.ProcCode, TerminalID: t.TerminalID,
		MerchantID: t.MerchantID, STAN: t.STAN, TxTime: t.TxTime, Card: t.MaskedPAN, Amount: t.Amount, Currency: t.Currency,
		Remaining: t.Remaining, Route: t.Route, IssuerSTAN: t.IssuerSTAN, RRN: t.RRN, ApprovalCode: t.ApprovalCode, RC: t.RC,
		State: string(t.State), OriginalID: t.OriginalID, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
		ElapsedMS: t.UpdatedAt.Sub(t.CreatedAt).Milliseconds(), Events: []eventView{}}
	events, err := a.Store.Lookup().History(r.Context(), t.ID)
	if err != nil {
		return v, err
	}
	for _, e := range events {
		v.Events = append(v.Events, eventView{e.At.UTC(), e.Kind, e.Detail})
	}
	items, err := a.Store.SAFDesk().Search(r.Context(), store.SAFFilter{TxnID: t.ID})
	if err != nil {
		return v, err
	}
	for _, it := range items {
		v.SAF = append(v.SAF, viewSAF(it))
	}
	return v, nil
}

var txnStates = []store.State{store.Forwarded, store.Approved, store.Declined, store.TimedOut, store.Failed, store.Answered}

// txnSearch: GET /v1/transactions.
func (a *Server) txnSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.TxnFilter{RRN: q.Get("rrn"), STAN: q.Get("stan"), TerminalID: q.Get("terminal"), MerchantID: q.Get("merchant"),
		State: store.State(q.Get("state"))}
	var errs []string
	if f.State != "" && !slices.Contains(txnStates, f.State) {
		errs = append(errs, fmt.Sprintf("state %q: want one of %v", f.State, txnStates))
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s %q: want RFC 3339 (2026-01-02T15:04:05Z)", p.name, s))
			}
			*p.to = t
		}
	}
	f.Limit, errs = intParam(q.Get("limit"), "limit", errs)
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, strings.Join(errs, "; "))
		return
	}
	rows, err := a.Store.Lookup().Search(r.Context(), f)
	if err != nil {
		a.internalError(w, "searching transactions", err)
		return
	}
	out := []txnView{}
	for _, t := range rows {
		v, err := a.view(r, t)
		if err != nil {
			a.internalError(w, "reading a transaction's history", err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// txnGet: GET /v1/transactions/{id}.
func (a *Server) txnGet(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "id must be a number")
		return
	}
	t, err := a.Store.Lookup().Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no transaction %d", id))
		return
	}
	if err != nil {
		a.internalError(w, "reading a transaction", err)
		return
	}
	v, err := a.view(r, t)
	if err != nil {
		a.internalError(w, "reading a transaction's history", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// safSearch: GET /v1/saf. state defaults to pending; "all" lists every state.
func (a *Server) safSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.SAFFilter{State: q.Get("state"), Route: q.Get("route"), Kind: q.Get("kind")}
	var errs []string
	switch f.State {
	case "":
		f.State = store.SAFPending
	case "all":
		f.State = ""
	default:
		if !slices.Contains(store.SAFStates, f.State) {
			errs = append(errs, fmt.Sprintf("state must be all or one of %v", store.SAFStates))
		}
	}
	if f.Kind != "" && f.Kind != store.KindReversal && f.Kind != store.KindRefund {
		errs = append(errs, "kind must be reversal or refund")
	}
	var txn int
	txn, errs = intParam(q.Get("txn"), "txn", errs)
	f.TxnID = int64(txn)
	f.Limit, errs = intParam(q.Get("limit"), "limit", errs)
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, strings.Join(errs, "; "))
		return
	}
	items, err := a.Store.SAFDesk().Search(r.Context(), f)
	if err != nil {
		a.internalError(w, "reading the SAF queue", err)
		return
	}
	out := []safView{}
	for _, it := range items {
		out = append(out, viewSAF(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// safAction is the body of the SAF action requests.
type safAction struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
}

// readSAFAction reads the item id and the body; "" operator means the
// request did not name one.
func readSAFAction(w http.ResponseWriter, r *http.Request) (int64, safAction, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "id must be a number")
		return 0, safAction{}, false
	}
	var body safAction
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "body must be JSON: {\"operator\": \"...\", \"reason\": \"...\"}")
			return 0, safAction{}, false
		}
	}
	body.Operator, body.Reason = strings.TrimSpace(body.Operator), strings.TrimSpace(body.Reason)
	return id, body, true
}

// who names the operator of an action, with the address it came from.
func who(r *http.Request, operator string) string {
	if operator == "" {
		operator = "unnamed operator"
	}
	return fmt.Sprintf("%s (admin API, %s)", operator, r.RemoteAddr)
}

// safRetry: POST /v1/saf/{id}/retry. A pending item is tried at once; an
// item in manual review goes back to pending with a fresh expiry.
func (a *Server) safRetry(w http.ResponseWriter, r *http.Request) {
	id, body, ok := readSAFAction(w, r)
	if !ok {
		return
	}
	it, err := a.sw.RetrySAF(r.Context(), id, who(r, body.Operator))
	if a.safActionFailed(w, id, err) {
		return
	}
	a.Log.Info("SAF item set to retry now", zap.Int64("saf_id", id), zap.Int64("txn", it.TxnID), zap.String("route", it.Route),
		zap.String("operator", body.Operator))
	writeJSON(w, http.StatusOK, viewSAF(it))
}

// safResolve: POST /v1/saf/{id}/resolve, for items in manual review; the
// operator and the reason are mandatory and recorded.
func (a *Server) safResolve(w http.ResponseWriter, r *http.Request) {
	id, body, ok := readSAFAction(w, r)
	if !ok {
		return
	}
	if body.Operator == "" || body.Reason == "" {
		writeError(w, http.StatusBadRequest, "operator and reason are both required to resolve a SAF item")
		return
	}
	it, err := a.sw.ResolveSAF(r.Context(), id, who(r, body.Operator), body.Reason)
	if a.safActionFailed(w, id, err) {
		return
	}
	a.Log.Info("SAF item resolved by an operator", zap.Int64("saf_id", id), zap.Int64("txn", it.TxnID), zap.String("route", it.Route),
		zap.String("operator", body.Operator), zap.String("reason", body.Reason))
	writeJSON(w, http.StatusOK, viewSAF(it))
}

// safActionFailed answers a failed action and reports whether it did.
func (a *Server) safActionFailed(w http.ResponseWriter, id int64, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no SAF item %d", id))
	case errors.Is(err, store.ErrSAFState):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNoReason):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		a.internalError(w, "SAF action", err)
	}
	return true
}

func (a *Server) internalError(w http.ResponseWriter, doing string, err error) {
	a.Log.Error("admin API: "+doing, zap.Error(err))
	writeError(w, http.StatusInternalServerError, "internal error")
}

func intParam(s, name string, errs []string) (int, []string) {
	if s == "" {
		return 0, errs
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, append(errs, name+" must be a non-negative number")
	}
	return n, errs
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
