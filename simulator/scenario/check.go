package scenario

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// describeExpect is the EXPECTED column.
func (sr *scenarioRun) describeExpect(e *Expect) string {
	var s string
	if e.NoResponse {
		s = "none"
	} else {
		codes := make([]string, len(e.RC))
		for i, rc := range e.RC {
			codes[i] = sr.expandOrRaw(rc)
		}
		s = strings.Join(codes, "|")
	}
	if e.NetCancel != nil {
		s += ", 0400 " + sr.describeExpect(e.NetCancel)
	}
	return s
}

func (sr *scenarioRun) expandOrRaw(s string) string {
	if v, err := sr.expand(s); err == nil {
		return v
	}
	return s
}

// describeGot is the GOT column.
func describeGot(ex *terminal.Exchange) string {
	s := "none"
	if ex.Response != nil {
		s = orDash(ex.RC())
	}
	if ex.NetCancel != nil {
		nc := "none"
		if ex.NetCancel.Response != nil {
			nc = orDash(ex.NetCancel.RC())
		}
		s += ", 0400 " + nc
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// check compares an exchange with its expectation; the messages mask card
// data.
func (sr *scenarioRun) check(e *Expect, ex *terminal.Exchange) []string {
	var fails []string
	add := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	switch {
	case e.NoResponse && ex.Response != nil:
		add("got a response (DE 39 %s), want none", orDash(ex.RC()))
	case !e.NoResponse && ex.Response == nil:
		add("no response: %v", ex.Err)
	}
	if ex.Response != nil && !e.NoResponse {
		rc := ex.RC()
		want := make([]string, len(e.RC))
		for i, w := range e.RC {
			want[i] = sr.expandOrRaw(w)
		}
		if !slices.Contains(want, rc) {
			add("DE 39 %s (%s), want %s", orDash(rc), terminal.ResponseMeaning(rc), strings.Join(want, " or "))
		}
		reqMTI, _ := ex.Request.GetMTI()
		wantMTI := sr.expandOrRaw(e.MTI)
		if wantMTI == "" {
			wantMTI, _ = specs.ResponseMTI(reqMTI)
		}
		if got, _ := ex.Response.GetMTI(); wantMTI != "" && got != wantMTI {
			add("response MTI %s, want %s", got, wantMTI)
		}
		for _, f := range e.Fields {
			if msg := sr.checkField(ex.Response, f); msg != "" {
				add("%s", msg)
			}
		}
	}
	if e.MaxTime > 0 && ex.Latency > e.MaxTime {
		add("took %s, want at most %s", ex.Latency.Round(time.Millisecond), e.MaxTime)
	}
	if e.NetCancel != nil {
		if ex.NetCancel == nil {
			add("no automatic net cancel (0400) was sent")
		} else {
			for _, f := range sr.check(e.NetCancel, ex.NetCancel) {
				add("net cancel: %s", f)
			}
		}
	}
	return fails
}

// checkField checks one response field; "" means it holds.
func (sr *scenarioRun) checkField(m *iso8583.Message, f FieldCheck) string {
	want, err := sr.expand(f.Want)
	if err != nil {
		return fmt.Sprintf("DE %d: %v", f.ID, err)
	}
	present := m.GetField(f.ID) != nil
	got, _ := m.GetString(f.ID)
	got = strings.TrimRight(got, " ")
	show := func(v string) string { return maskField(f.ID, v) }
	switch {
	case want == "present":
		if !present {
			return fmt.Sprintf("DE %d absent, want present", f.ID)
		}
	case want == "absent":
		if present {
			return fmt.Sprintf("DE %d is %s, want absent", f.ID, show(got))
		}
	case len(want) >= 2 && want[0] == '/' && want[len(want)-1] == '/':
		re, err := regexp.Compile(want[1 : len(want)-1])
		if err != nil {
			return fmt.Sprintf("DE %d: %v", f.ID, err)
		}
		if !present || !re.MatchString(got) {
			return fmt.Sprintf("DE %d is %s, want a match of %s", f.ID, orDash(show(got)), want)
		}
	case strings.HasPrefix(want, "!="):
		if present && got == strings.TrimRight(want[2:], " ") {
			return fmt.Sprintf("DE %d is %s, want anything else", f.ID, show(got))
		}
	default:
		if !present || got != strings.TrimRight(want, " ") {
			if !present {
				got = "absent"
			}
			return fmt.Sprintf("DE %d is %s, want %s", f.ID, show(got), show(want))
		}
	}
	return ""
}

// maskField shows a field value safely: card numbers 6+4, tracks masked,
// PIN blocks, ICC data and MACs hidden, card-like digit runs masked.
func maskField(id int, v string) string {
	switch id {
	case 2, 20, 34:
		return pan.Mask(v)
	case 35:
		return pan.MaskTrack2(v)
	case 36, 45, 52, 55, 64, 128:
		return "<hidden>"
	}
	return pan.Scrub(v)
}

// describeExchange dumps request and response (and the net cancel) with
// card data masked, for JUnit failure details.
func describeExchange(ex *terminal.Exchange) string {
	var b strings.Builder
	dump := func(title string, m *iso8583.Message) {
		if m == nil {
			return
		}
		b.WriteString(title + ":\n")
		_ = pan.Describe(m, &b)
	}
	dump("request", ex.Request)
	dump("response", ex.Response)
	if ex.NetCancel != nil {
		dump("net cancel", ex.NetCancel.Request)
		dump("net cancel response", ex.NetCancel.Response)
	}
	return pan.Scrub(b.String())
}
