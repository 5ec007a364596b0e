package issuer

import "net/http"

// ResetBalances gives every account its opening balance again (the demo's
// accounts never run dry). Approvals stay: a later reversal or refund of
// one still finds it and credits the account.
func (is *Issuer) ResetBalances() {
	is.ledger.mu.Lock()
	defer is.ledger.mu.Unlock()
	clear(is.ledger.available)
}

// reset is POST /reset (every issuer) and POST /issuers/{name}/reset.
func (a *admin) reset(w http.ResponseWriter, r *http.Request) {
	targets := a.order
	if name := r.PathValue("name"); name != "" {
		is, ok := a.byName[name]
		if !ok {
			writeError(w, http.StatusNotFound, "no issuer named "+name)
			return
		}
		targets = []*Issuer{is}
	}
	var names []string
	for _, is := range targets {
		is.ResetBalances()
		names = append(names, is.Name())
	}
	writeJSON(w, http.StatusOK, map[string]any{"reset": names})
}
