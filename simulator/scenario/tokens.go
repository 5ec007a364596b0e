package scenario

import (
	"context"
	"fmt"
	"strings"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// tokenClient is the token API client of the run.
func (sr *scenarioRun) tokenClient() *tokenapi.Client {
	return &tokenapi.Client{Admin: sr.r.opts.TokenAdmin, Bearer: sr.r.opts.Bearer, HTTP: sr.r.http}
}

// issueToken provisions one token and stores its number in a variable.
func (sr *scenarioRun) issueToken(ctx context.Context, t TokenSpec) (string, error) {
	get := func(what, v string) (string, error) {
		x, err := sr.expand(v)
		if err != nil {
			return "", fmt.Errorf("token %s: %s: %w", t.Name, what, err)
		}
		return x, nil
	}
	card, err := get("pan", t.PAN)
	if err != nil {
		return "", err
	}
	exp, err := get("expiry", t.Expiry)
	if err != nil {
		return "", err
	}
	kind := tokenapi.DeviceToken
	if t.Kind == "one-time" {
		kind = tokenapi.OneTimeToken
	}
	var dom tokenapi.Domain
	for _, m := range t.Merchants {
		x, err := get("merchants", m)
		if err != nil {
			return "", err
		}
		dom.Merchants = append(dom.Merchants, x)
	}
	for _, m := range t.EntryModes {
		x, err := get("entry_modes", m)
		if err != nil {
			return "", err
		}
		dom.EntryModes = append(dom.EntryModes, x)
	}
	out, err := sr.tokenClient().Issue(ctx, card, exp, tokenapi.IssueOptions{Kind: kind, Domain: dom})
	if err != nil {
		return "", fmt.Errorf("issuing token %s: %w", t.Name, err)
	}
	sr.vars[strings.ToLower(t.Name)] = out.Token
	return string(out.Status), nil
}

func (sr *scenarioRun) tokenStep(ctx context.Context, a *TokenAction) StepResult {
	row := StepResult{}
	var (
		got string
		err error
	)
	if a.Issue != nil {
		row.Expected = "active"
		got, err = sr.issueToken(ctx, *a.Issue)
	} else {
		c := sr.tokenClient()
		call, arg, verb, status := c.Suspend, a.Suspend, "suspend", tokenapi.Suspended
		switch {
		case a.Resume != "":
			call, arg, verb, status = c.Resume, a.Resume, "resume", tokenapi.Active
		case a.Delete != "":
			call, arg, verb, status = c.Delete, a.Delete, "delete", tokenapi.Deleted
		}
		row.Expected = string(status)
		var tok string
		if tok, err = sr.expand(arg); err == nil {
			var out tokenapi.TokenJSON
			if out, err = call(ctx, tok); err == nil {
				got = string(out.Status)
			} else {
				err = fmt.Errorf("%s %s: %w", verb, pan.Mask(tok), err)
			}
		}
	}
	if err != nil {
		row.Status, row.Got, row.Reason = Fail, "error", err.Error()
		return row
	}
	row.Status, row.Got = Pass, got
	if got != row.Expected {
		row.Status, row.Reason = Fail, fmt.Sprintf("token status %s, want %s", got, row.Expected)
	}
	return row
}
