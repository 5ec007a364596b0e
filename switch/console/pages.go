package console

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store"
)

// overviewView is the overview page: the switch's state with rates over
// Window (0: no rates yet).
type overviewView struct {
	Overview
	Window    time.Duration
	Listeners []listenerRow
	Routes    []routeRow
	SAFStates []string
}

type listenerRow struct {
	ListenerState
	TPS, P99 float64
}

type routeRow struct {
	RouteState
	TPS, Approval, P99 float64
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ov, err := c.src.Overview(r.Context())
	if err != nil {
		c.failed(w, r, s, "reading the switch's state", err)
		return
	}
	now := c.cfg.Now()
	base, ok := c.rates.add(now, ov)
	v := overviewView{Overview: ov, SAFStates: store.SAFStates}
	if ok {
		v.Window = now.Sub(base.at).Round(time.Second)
	}
	for _, l := range ov.Listeners {
		row := listenerRow{ListenerState: l, TPS: math.NaN(), P99: math.NaN()}
		if i := slices.IndexFunc(base.ov.Listeners, func(b ListenerState) bool { return b.Name == l.Name }); ok && i >= 0 {
			b := base.ov.Listeners[i]
			row.TPS, row.P99 = perSecond(l.Requests, b.Requests, v.Window), quantile(0.99, l.Latency, b.Latency)
		}
		v.Listeners = append(v.Listeners, row)
	}
	for _, rt := range ov.Routes {
		row := routeRow{RouteState: rt, TPS: math.NaN(), Approval: math.NaN(), P99: math.NaN()}
		if i := slices.IndexFunc(base.ov.Routes, func(b RouteState) bool { return b.Name == rt.Name }); ok && i >= 0 {
			b := base.ov.Routes[i]
			row.TPS = perSecond(rt.Requests, b.Requests, v.Window)
			row.Approval = ratio(rt.Approved, b.Approved, rt.Sales, b.Sales)
			row.P99 = quantile(0.99, rt.Latency, b.Latency)
		}
		v.Routes = append(v.Routes, row)
	}
	c.render(w, http.StatusOK, "overview", s, pageData{Title: "Overview", Nav: "overview",
		Refresh: int(c.cfg.Refresh.Seconds()), Data: v})
}

// txnList is the transactions page.
type txnList struct {
	Query   query
	Routes  []string
	Rows    []store.Txn
	Asked   bool
	Limited bool
}

// searchPost takes the search form (POST, so that a card number typed in
// never travels in a URL) and redirects to the masked search.
func (c *Console) searchPost(w http.ResponseWriter, r *http.Request, _ *session) {
	q := parseQuery(r.PostForm)
	http.Redirect(w, r, Prefix+"transactions?"+q.values().Encode(), http.StatusSeeOther)
}

func (c *Console) transactions(w http.ResponseWriter, r *http.Request, s *session) {
	q := parseQuery(r.URL.Query())
	if !q.unchanged {
		// A card number (or something card-like) in the URL: search by
		// the masked form, and show the masked URL only.
		http.Redirect(w, r, Prefix+"transactions?"+q.values().Encode(), http.StatusSeeOther)
		return
	}
	v := txnList{Query: q, Asked: !q.empty()}
	if ov, err := c.src.Overview(r.Context()); err == nil {
		for _, rt := range ov.Routes {
			v.Routes = append(v.Routes, rt.Name)
		}
	}
	d := pageData{Title: "Transactions", Nav: "transactions", Data: &v}
	if len(q.problems) > 0 {
		d.Error = strings.Join(q.problems, "; ")
		c.render(w, http.StatusBadRequest, "transactions", s, d)
		return
	}
	if v.Asked {
		seen := map[int64]bool{}
		for _, f := range q.filters() {
			rows, err := c.src.Search(r.Context(), f)
			if err != nil {
				c.failed(w, r, s, "searching transactions", err)
				return
			}
			for _, t := range rows {
				if !seen[t.ID] {
					seen[t.ID] = true
					v.Rows = append(v.Rows, t)
				}
			}
		}
		slices.SortFunc(v.Rows, func(a, b store.Txn) int { return int(b.ID - a.ID) })
		if len(v.Rows) > searchLimit {
			v.Rows, v.Limited = v.Rows[:searchLimit], true
		}
	}
	c.render(w, http.StatusOK, "transactions", s, d)
}

func (c *Console) transaction(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.render(w, http.StatusBadRequest, "error", s, pageData{Title: "Not found", Error: "A transaction is named by its number."})
		return
	}
	t, err := c.src.Transaction(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		c.render(w, http.StatusNotFound, "error", s, pageData{Title: "Not found", Error: "No transaction " + strconv.FormatInt(id, 10) + "."})
		return
	}
	if err != nil {
		c.failed(w, r, s, "reading a transaction", err)
		return
	}
	c.render(w, http.StatusOK, "transaction", s, pageData{Title: "Transaction " + strconv.FormatInt(id, 10), Nav: "transactions",
		Notice: notice(r.URL.Query()), Data: t})
}

// safList is the SAF page.
type safList struct {
	State  string
	States []string
	Counts map[string]int
	Items  []store.SAFItem
}

func (c *Console) saf(w http.ResponseWriter, r *http.Request, s *session) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = store.SAFReview
	}
	f := store.SAFFilter{State: state, Limit: searchLimit}
	if state == "all" {
		f.State = ""
	} else if !slices.Contains(store.SAFStates, state) {
		c.render(w, http.StatusBadRequest, "error", s, pageData{Title: "SAF", Error: "Unknown SAF state."})
		return
	}
	items, counts, err := c.src.SAF(r.Context(), f)
	if err != nil {
		c.failed(w, r, s, "reading the SAF queue", err)
		return
	}
	c.render(w, http.StatusOK, "saf", s, pageData{Title: "Store and forward", Nav: "saf", Notice: notice(r.URL.Query()),
		Data: safList{State: state, States: store.SAFStates, Counts: counts, Items: items}})
}

func (c *Console) safRetry(w http.ResponseWriter, r *http.Request, s *session) {
	c.safAction(w, r, s, "retry", func(id int64, who string) (store.SAFItem, error) {
		return c.src.Retry(r.Context(), id, who)
	})
}

func (c *Console) safResolve(w http.ResponseWriter, r *http.Request, s *session) {
	reason := scrubCards(strings.TrimSpace(r.PostFormValue("reason")))
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	c.safAction(w, r, s, "resolve", func(id int64, who string) (store.SAFItem, error) {
		return c.src.Resolve(r.Context(), id, who, reason)
	}, zap.String("reason", reason))
}

// safAction runs one SAF action on the item named in the path, audits it
// and goes back to the queue with its outcome.
func (c *Console) safAction(w http.ResponseWriter, r *http.Request, s *session, what string,
	act func(id int64, who string) (store.SAFItem, error), fields ...zap.Field) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.render(w, http.StatusBadRequest, "error", s, pageData{Title: "SAF", Error: "A SAF item is named by its number."})
		return
	}
	it, err := act(id, c.who(r, s))
	fields = append(fields, zap.Int64("saf_id", id))
	back := r.PostFormValue("back")
	if back != "saf" && !strings.HasPrefix(back, "txn") {
		back = "saf"
	}
	switch {
	case err == nil:
		c.audit(r, s, "SAF "+what, append(fields, zap.Int64("txn", it.TxnID), zap.String("route", it.Route), zap.String("outcome", it.State))...)
		done := "done=" + what + "&item=" + strconv.FormatInt(id, 10) + "&now=" + url.QueryEscape(it.State)
		if strings.HasPrefix(back, "txn") {
			http.Redirect(w, r, Prefix+"transactions/"+strconv.FormatInt(it.TxnID, 10)+"?"+done, http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, Prefix+"saf?state="+url.QueryEscape(it.State)+"&"+done, http.StatusSeeOther)
	case errors.Is(err, store.ErrNotFound):
		c.audit(r, s, "SAF "+what+" refused", append(fields, zap.String("why", "no such item"))...)
		c.render(w, http.StatusNotFound, "error", s, pageData{Title: "SAF", Error: "No SAF item " + strconv.FormatInt(id, 10) + "."})
	case errors.Is(err, store.ErrSAFState), errors.Is(err, store.ErrNoReason):
		c.audit(r, s, "SAF "+what+" refused", append(fields, zap.String("why", pan.Scrub(err.Error())))...)
		c.render(w, http.StatusConflict, "error", s, pageData{Title: "SAF", Error: friendlySAFError(err)})
	default:
		c.failed(w, r, s, what, err)
	}
}

// notice is the outcome line of the action that redirected here, made
// from known words only (a crafted link cannot put text on the page).
func notice(v url.Values) string {
	now := v.Get("now")
	if !slices.Contains(store.SAFStates, now) && now != string(store.TokenActive) && now != string(store.TokenSuspended) {
		return ""
	}
	switch what := v.Get("done"); what {
	case "retry", "resolve":
		item, err := strconv.ParseInt(v.Get("item"), 10, 64)
		if err != nil {
			return ""
		}
		return "SAF " + what + ": item " + strconv.FormatInt(item, 10) + " is now " + now + "."
	case "suspend", "resume":
		return "Token " + what + ": the token is now " + now + "."
	}
	return ""
}

func friendlySAFError(err error) string {
	if errors.Is(err, store.ErrNoReason) {
		return "A reason is required to resolve an item."
	}
	return "This action does not apply to the item in its current state (someone may have acted on it already)."
}

// who names the operator of an action as the store records it.
func (c *Console) who(r *http.Request, s *session) string {
	return s.operator + " (console, " + r.RemoteAddr + ")"
}

// failed answers a source failure: logged (scrubbed), shown without detail.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, s *session, doing string, err error) {
	c.log.Error("console: "+doing, zap.String("error", pan.Scrub(err.Error())), zap.String("path", scrubCards(r.URL.Path)))
	c.render(w, http.StatusInternalServerError, "error", s, pageData{Title: "Error", Error: "Internal error while " + doing + "; see the switch's log."})
}
