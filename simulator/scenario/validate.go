package scenario

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Validate checks what can be checked before running.
func (sc *Scenario) Validate() error {
	if strings.TrimSpace(sc.Name) == "" {
		return errors.New("scenario without a name")
	}
	where := fmt.Sprintf("scenario %q", sc.Name)
	if len(sc.Steps) == 0 {
		return fmt.Errorf("%s: no steps", where)
	}
	if sc.Timeout < 0 {
		return fmt.Errorf("%s: negative timeout", where)
	}
	names := map[string]bool{}
	for _, t := range sc.Setup.Tokens {
		if err := t.validate(); err != nil {
			return fmt.Errorf("%s: setup: %w", where, err)
		}
	}
	sends := map[string]bool{}
	check := func(section string, steps []Step, teardown bool) error {
		for i := range steps {
			st := &steps[i]
			if strings.TrimSpace(st.Name) == "" {
				return fmt.Errorf("%s: %s step %d has no name", where, section, i+1)
			}
			if names[st.Name] {
				return fmt.Errorf("%s: step name %q used twice", where, st.Name)
			}
			names[st.Name] = true
			if err := st.validate(sends, teardown); err != nil {
				return fmt.Errorf("%s: step %q: %w", where, st.Name, err)
			}
			if st.Send != nil {
				sends[st.Name] = true
			}
		}
		return nil
	}
	if err := check("steps", sc.Steps, false); err != nil {
		return err
	}
	return check("teardown", sc.Teardown, true)
}

func (t TokenSpec) validate() error {
	if !identRE.MatchString(t.Name) {
		return fmt.Errorf("token name %q is not a variable name", t.Name)
	}
	if t.PAN == "" || t.Expiry == "" {
		return fmt.Errorf("token %s needs pan and expiry", t.Name)
	}
	switch t.Kind {
	case "", "device", "one-time":
	default:
		return fmt.Errorf("token %s: kind %q (want device or one-time)", t.Name, t.Kind)
	}
	return nil
}

func (st *Step) validate(earlierSends map[string]bool, teardown bool) error {
	kinds := 0
	for _, set := range []bool{st.Send != nil, st.Token != nil, st.Issuer != nil, st.Sleep != 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return errors.New("needs exactly one of send, token, issuer or sleep")
	}
	if st.Timeout < 0 || st.Sleep < 0 {
		return errors.New("negative duration")
	}
	for name, src := range st.Save {
		if !identRE.MatchString(name) {
			return fmt.Errorf("save: %q is not a variable name", name)
		}
		if _, _, err := parseSource(src); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
	}
	switch {
	case st.Send != nil:
		return st.validateSend(earlierSends, teardown)
	case st.Expect != nil:
		return errors.New("expect belongs to send steps")
	case len(st.Save) > 0:
		return errors.New("save belongs to send steps")
	case st.Token != nil:
		return st.Token.validate()
	case st.Issuer != nil:
		return st.Issuer.validate()
	}
	return nil
}

func (st *Step) validateSend(earlierSends map[string]bool, teardown bool) error {
	s := st.Send
	if st.Expect == nil || (len(st.Expect.RC) == 0 && !st.Expect.NoResponse) {
		return errors.New("expect needs rc or no_response")
	}
	if err := st.Expect.validate(); err != nil {
		return err
	}
	if s.MTI != "" && literal(s.MTI) && !validMTI(s.MTI) {
		return fmt.Errorf("mti %q is not 4 digits", s.MTI)
	}
	if s.Ref != "" && !teardown && !earlierSends[s.Ref] {
		return fmt.Errorf("ref %q names no earlier send step", s.Ref)
	}
	if s.Remaining != "" && s.Ref == "" {
		return errors.New("remaining needs ref (the sale to cancel in part)")
	}
	if s.Totals != "" && s.Totals != "batch" {
		return fmt.Errorf("totals %q (want batch)", s.Totals)
	}
	switch s.MAC {
	case "", "auto", "none", "wrong":
	default:
		return fmt.Errorf("mac %q (want auto, none or wrong)", s.MAC)
	}
	if s.PINPAN != "" && s.PIN == "" {
		return errors.New("pin_pan without pin")
	}
	return nil
}

func (e *Expect) validate() error {
	if e.NoResponse && len(e.RC) > 0 {
		return errors.New("expect: rc and no_response exclude each other")
	}
	if e.NoResponse && (len(e.Fields) > 0 || e.MTI != "") {
		return errors.New("expect: fields and mti need a response")
	}
	for _, rc := range e.RC {
		if literal(rc) && len(rc) != 2 {
			return fmt.Errorf("expect: rc %q is not 2 characters", rc)
		}
	}
	for _, f := range e.Fields {
		if w := f.Want; len(w) >= 2 && w[0] == '/' && w[len(w)-1] == '/' && literal(w) {
			if _, err := regexp.Compile(w[1 : len(w)-1]); err != nil {
				return fmt.Errorf("expect: DE %d: %w", f.ID, err)
			}
		}
	}
	if e.NetCancel != nil {
		if err := e.NetCancel.validate(); err != nil {
			return fmt.Errorf("net_cancel: %w", err)
		}
	}
	return nil
}

func (t *TokenAction) validate() error {
	n := 0
	for _, set := range []bool{t.Issue != nil, t.Suspend != "", t.Resume != "", t.Delete != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("token needs exactly one of issue, suspend, resume or delete")
	}
	if t.Issue != nil {
		return t.Issue.validate()
	}
	return nil
}

func (a *IssuerAction) validate() error {
	if a.Name == "" {
		return errors.New("issuer needs name")
	}
	if a.Mode == "" && a.Latency == "" && a.Fault == nil && a.Balance == nil {
		return errors.New("issuer needs mode, latency, fault or balance")
	}
	if a.Mode != "" && literal(a.Mode) && a.Mode != "normal" && a.Mode != "silent" {
		return fmt.Errorf("issuer mode %q (want normal or silent)", a.Mode)
	}
	if a.Latency != "" && literal(a.Latency) {
		if _, err := time.ParseDuration(a.Latency); err != nil {
			return fmt.Errorf("issuer latency: %w", err)
		}
	}
	if b := a.Balance; b != nil {
		if b.PAN == "" {
			return errors.New("issuer balance needs pan")
		}
		if b.Save == "" && b.Equals == "" {
			return errors.New("issuer balance needs save or equals")
		}
		if b.Save != "" && !identRE.MatchString(b.Save) {
			return fmt.Errorf("issuer balance: save %q is not a variable name", b.Save)
		}
	}
	return nil
}

// parseSource reads a save source: a response field (number or name), or
// request.N / request.name.
func parseSource(src string) (id int, fromRequest bool, err error) {
	s := strings.TrimSpace(src)
	if rest, ok := strings.CutPrefix(s, "request."); ok {
		id, err = ParseField(rest)
		return id, true, err
	}
	s = strings.TrimPrefix(s, "response.")
	id, err = ParseField(s)
	return id, false, err
}

func validMTI(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// requirements returns what the scenario needs: its own list plus what its
// setup, token and issuer steps imply.
func (sc *Scenario) requirements() []string {
	req := append([]string(nil), sc.Requires...)
	if len(sc.Setup.Tokens) > 0 {
		req = append(req, RequireTokenAPI)
	}
	for _, steps := range [][]Step{sc.Steps, sc.Teardown} {
		for _, st := range steps {
			if st.Token != nil {
				req = append(req, RequireTokenAPI)
			}
			if st.Issuer != nil {
				req = append(req, RequireIssuerAdmin)
			}
		}
	}
	slices.Sort(req)
	return slices.Compact(req)
}
