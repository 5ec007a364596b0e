package payswitch_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/config"
)

// adminCall sends an admin API request with the demo bearer token and
// decodes the JSON answer into out (when not nil); it returns the status.
func (h *harness) adminCall(method, path string, body any, out any) int {
	h.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, "http://"+h.sw.AdminAddr()+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+config.DemoAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			h.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

type txnJSON struct {
	ID     int64  `json:"id"`
	Card   string `json:"card"`
	Amount int64  `json:"amount"`
	State  string `json:"state"`
	RC     string `json:"response_code"`
	Route  string `json:"route"`
	RRN    string `json:"rrn"`
	Events []struct {
		At   time.Time `json:"at"`
		Kind string    `json:"kind"`
	} `json:"events"`
	SAF []safJSON `json:"saf"`
}

type safJSON struct {
	ID        int64  `json:"id"`
	TxnID     int64  `json:"txn_id"`
	State     string `json:"state"`
	LastError string `json:"last_error"`
	Owner     string `json:"owner"`
}

// TestOperatorLookUpAndSAFActions: an operator finds a transaction by
// terminal, state and RRN, sees its masked card and history, and closes a
// reversal stuck in manual review: retry now, then resolve with a reason.
func TestOperatorLookUpAndSAFActions(t *testing.T) {
	h, rrn := newReviewHarness(t, "sw-ops")

	var found []txnJSON
	if code := h.adminCall("GET", "/v1/transactions?rrn="+rrn, nil, &found); code != 200 || len(found) != 1 {
		t.Fatalf("by RRN: %d %+v", code, found)
	}
	if f := found[0]; f.Card != cardB[:6]+"******"+cardB[12:] || f.Amount != 1200 || f.State != "approved" || f.RC != "00" || f.Route != "card-b" || len(f.Events) == 0 {
		t.Errorf("by RRN: %+v", f)
	}
	if code := h.adminCall("GET", "/v1/transactions?terminal="+terminal.DefaultTerminalID+"&state=timed_out", nil, &found); code != 200 || len(found) != 1 {
		t.Fatalf("timed out sales: %d %+v", code, found)
	}
	timedOut := found[0]
	if code := h.adminCall("GET", "/v1/transactions?from=yesterday", nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad from: %d", code)
	}

	var review []safJSON
	waitFor(t, 10*time.Second, "reversal in manual review", func() bool {
		return h.adminCall("GET", "/v1/saf?state=review", nil, &review) == 200 && len(review) == 1
	})
	item := review[0]
	if item.TxnID != timedOut.ID || item.Owner != "sw-ops" {
		t.Fatalf("review item %+v for txn %d", item, timedOut.ID)
	}
	path := "/v1/saf/" + strconv.FormatInt(item.ID, 10)
	if code := h.adminCall("POST", path+"/resolve", map[string]string{"operator": "alice"}, nil); code != http.StatusBadRequest {
		t.Errorf("resolve without a reason: %d", code)
	}
	var got safJSON
	if code := h.adminCall("POST", path+"/retry", map[string]string{"operator": "alice"}, &got); code != 200 || got.State != "pending" {
		t.Fatalf("retry now: %d %+v", code, got)
	}
	waitFor(t, 10*time.Second, "back in manual review (issuer still silent)", func() bool {
		return h.adminCall("GET", "/v1/saf?state=review", nil, &review) == 200 && len(review) == 1
	})
	if code := h.adminCall("POST", path+"/resolve", map[string]string{"operator": "bob", "reason": "issuer confirmed no charge, ticket 7"}, &got); code != 200 || got.State != "resolved" {
		t.Fatalf("resolve: %d %+v", code, got)
	}
	if !strings.Contains(got.LastError, "bob") || !strings.Contains(got.LastError, "ticket 7") {
		t.Errorf("resolution not recorded: %q", got.LastError)
	}
	if code := h.adminCall("POST", path+"/resolve", map[string]string{"operator": "bob", "reason": "again"}, nil); code != http.StatusConflict {
		t.Errorf("resolving twice: %d", code)
	}
	var one txnJSON
	if code := h.adminCall("GET", "/v1/transactions/"+strconv.FormatInt(timedOut.ID, 10), nil, &one); code != 200 {
		t.Fatalf("by id: %d", code)
	}
	var kinds []string
	for _, e := range one.Events {
		kinds = append(kinds, e.Kind)
	}
	for _, want := range []string{"reversal_queued", "reversal_manual_review", "reversal_retry_now", "reversal_resolved"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Errorf("history %v lacks %s", kinds, want)
		}
	}
	if len(one.SAF) != 1 || one.SAF[0].State != "resolved" {
		t.Errorf("saf of the transaction: %+v", one.SAF)
	}
	if code := h.adminCall("GET", "/v1/transactions/999999", nil, nil); code != http.StatusNotFound {
		t.Errorf("missing transaction: %d", code)
	}
}
