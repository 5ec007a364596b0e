package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kbpay/switch/card/pan"
)

// issuerStep drives the issuer emulator's admin API (simulator/issuer
// AdminHandler): mode, latency, fault, and balance checks on its ledger.
// The table shows "ok" for settings and the balance for balance steps.
func (sr *scenarioRun) issuerStep(ctx context.Context, a *IssuerAction) StepResult {
	row := StepResult{Expected: "ok", Got: "ok"}
	fail := func(err error) StepResult {
		row.Status, row.Reason, row.Got = Fail, err.Error(), "error"
		return row
	}
	name, err := sr.expand(a.Name)
	if err != nil {
		return fail(err)
	}
	if a.Mode != "" {
		mode, err := sr.expand(a.Mode)
		if err != nil {
			return fail(err)
		}
		if err := sr.issuerPost(ctx, name, "mode", url.Values{"mode": {mode}}); err != nil {
			return fail(err)
		}
	}
	if a.Latency != "" {
		d, err := sr.expand(a.Latency)
		if err != nil {
			return fail(err)
		}
		if err := sr.issuerPost(ctx, name, "latency", url.Values{"d": {d}}); err != nil {
			return fail(err)
		}
	}
	if f := a.Fault; f != nil {
		q := url.Values{}
		if f.Drop > 0 {
			q.Set("drop", strconv.Itoa(f.Drop))
		}
		if f.Late != "" {
			late, err := sr.expand(f.Late)
			if err != nil {
				return fail(err)
			}
			q.Set("late", late)
		}
		if f.Disconnect {
			q.Set("disconnect", "true")
		}
		if f.ChargeWhenSilent {
			q.Set("charge_when_silent", "true")
		}
		if err := sr.issuerPost(ctx, name, "fault", q); err != nil {
			return fail(err)
		}
	}
	if b := a.Balance; b != nil {
		got, exp, err := sr.balance(ctx, name, b)
		row.Expected, row.Got = exp, orDash(got)
		if err != nil {
			row.Status, row.Reason = Fail, err.Error()
			return row
		}
	}
	row.Status = Pass
	return row
}

// issuerPost calls POST /issuers/{name}/{what}?query.
func (sr *scenarioRun) issuerPost(ctx context.Context, name, what string, q url.Values) error {
	u := "http://" + sr.r.opts.IssuerAdmin + "/issuers/" + url.PathEscape(name) + "/" + what
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := sr.r.http.Do(req)
	if err != nil {
		return fmt.Errorf("issuer admin %s: %w", sr.r.opts.IssuerAdmin, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("issuer admin: POST /issuers/%s/%s: %d %s", name, what, resp.StatusCode, e.Error)
	}
	return nil
}

// ledgerBalance reads one account's balance from GET /ledger, whose keys
// are masked PANs.
func (sr *scenarioRun) ledgerBalance(ctx context.Context, issuerName, card string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sr.r.opts.IssuerAdmin+"/ledger", nil)
	if err != nil {
		return 0, err
	}
	resp, err := sr.r.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("issuer admin %s: %w", sr.r.opts.IssuerAdmin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("issuer admin: GET /ledger: %d", resp.StatusCode)
	}
	var ledger map[string]map[string]int64
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ledger); err != nil {
		return 0, fmt.Errorf("issuer admin: GET /ledger: %w", err)
	}
	accounts, ok := ledger[issuerName]
	if !ok {
		return 0, fmt.Errorf("issuer admin: no issuer %q in the ledger", issuerName)
	}
	masked := pan.Mask(card)
	if _, dup := accounts[masked+" #2"]; dup {
		return 0, fmt.Errorf("account %s is ambiguous in the masked ledger", masked)
	}
	bal, ok := accounts[masked]
	if !ok {
		return 0, fmt.Errorf("issuer %s has no account %s in its ledger yet", issuerName, masked)
	}
	return bal, nil
}

// balance reads, saves and checks a balance; it returns what it saw and
// what it expected, for the report.
func (sr *scenarioRun) balance(ctx context.Context, issuerName string, b *BalanceCheck) (got, expected string, err error) {
	card, err := sr.expand(b.PAN)
	if err != nil {
		return "", "-", err
	}
	expected = "read"
	var want int64
	if b.Equals != "" {
		w, err := sr.expand(b.Equals)
		if err != nil {
			return "", "-", err
		}
		if want, err = strconv.ParseInt(strings.TrimSpace(w), 10, 64); err != nil {
			return "", w, fmt.Errorf("balance equals %q is not a number", w)
		}
		expected = strconv.FormatInt(want, 10)
	}
	deadline := time.Now().Add(b.Within)
	for {
		bal, err := sr.ledgerBalance(ctx, issuerName, card)
		if err == nil {
			got = strconv.FormatInt(bal, 10)
		}
		switch {
		case err != nil:
		case b.Equals == "" || bal == want:
			if b.Save != "" {
				sr.vars[strings.ToLower(b.Save)] = strconv.FormatInt(bal, 10)
			}
			return got, expected, nil
		default:
			err = fmt.Errorf("balance of %s at %s is %d, want %d", pan.Mask(card), issuerName, bal, want)
		}
		if !time.Now().Before(deadline) {
			if b.Within > 0 {
				err = fmt.Errorf("%w (waited %s)", err, b.Within)
			}
			return got, expected, err
		}
		select {
		case <-ctx.Done():
			return got, expected, fmt.Errorf("%w: %w", errInterrupted, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
