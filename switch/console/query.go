package console

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store"
)

// query is the transaction search as the operator gave it: the one box q
// and the filters. Its fields are safe to show and to put in a URL: a card
// number typed into q is kept masked only.
type query struct {
	Q        string // what the box shows (masked when it was a card)
	From, To string // datetime-local values, UTC
	Route    string
	RC       string

	card      bool // Q is a masked card: first6, last4 below
	first6    string
	last4     string
	from, to  time.Time
	problems  []string
	unchanged bool // Q is exactly what was typed (nothing was masked)
}

// timeLayout is the datetime-local input's value format (times are UTC).
const timeLayout = "2006-01-02T15:04"

var (
	maskedCard = regexp.MustCompile(`^([0-9]{6})[*xX.…_-]+([0-9]{4})$`)
	rcPattern  = regexp.MustCompile(`^[0-9A-Za-z]{2}$`)
	routeChars = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// parseQuery reads the search from a form or a URL query. A full card
// number (13 to 19 digits, spaces and dashes allowed between) becomes its
// masked form 6+4; a masked card (first six, stars or dots, last four)
// selects by the card; anything else is looked up as an RRN, STAN,
// terminal ID or merchant ID. Any other digit run of card length left in
// the text is masked too.
func parseQuery(v url.Values) query {
	q := query{From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")),
		Route: strings.TrimSpace(v.Get("route")), RC: strings.TrimSpace(v.Get("rc"))}
	raw := strings.TrimSpace(v.Get("q"))
	compact := strings.NewReplacer(" ", "", "-", "").Replace(raw)
	switch {
	case len(compact) >= 13 && len(compact) <= 19 && isDigits(compact):
		masked := pan.Mask(compact)
		q.Q, q.card, q.first6, q.last4 = masked, true, compact[:6], compact[len(compact)-4:]
	case maskedCard.MatchString(compact):
		m := maskedCard.FindStringSubmatch(compact)
		q.Q, q.card, q.first6, q.last4 = m[1]+"******"+m[2], true, m[1], m[2]
	default:
		q.Q = scrubCards(raw)
		if len(q.Q) > 64 {
			q.Q = strings.ToValidUTF8(q.Q[:64], "")
		}
	}
	q.unchanged = q.Q == raw
	for _, t := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"from", q.From, &q.from}, {"to", q.To, &q.to}} {
		if t.in == "" {
			continue
		}
		parsed, err := time.Parse(timeLayout, t.in)
		if err != nil {
			q.problems = append(q.problems, fmt.Sprintf("%s: want a date and time such as 2026-01-02T15:04 (UTC)", t.name))
			continue
		}
		*t.out = parsed
	}
	if q.RC != "" && !rcPattern.MatchString(q.RC) {
		q.problems = append(q.problems, "response code: two letters or digits")
		q.RC = ""
	}
	if q.Route != "" && !routeChars.MatchString(q.Route) {
		q.problems = append(q.problems, "route: unknown")
		q.Route = ""
	}
	return q
}

// cardLike is a run of 13 to 19 digits, single spaces or dashes allowed
// between them.
var cardLike = regexp.MustCompile(`[0-9](?:[ -]?[0-9]){12,18}`)

// scrubCards masks every card-like run of s (6+4 of its digits).
func scrubCards(s string) string {
	return cardLike.ReplaceAllStringFunc(s, func(m string) string {
		return pan.Mask(strings.NewReplacer(" ", "", "-", "").Replace(m))
	})
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// empty reports whether nothing at all was asked.
func (q query) empty() bool {
	return q.Q == "" && q.From == "" && q.To == "" && q.Route == "" && q.RC == ""
}

// values is the search as a URL query (masked).
func (q query) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "from": q.From, "to": q.To, "route": q.Route, "rc": q.RC} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// filters are the store filters the search runs, one per meaning of the
// box (their results are merged): by card, or by RRN, STAN, terminal and
// merchant ID in turn.
func (q query) filters() []store.TxnFilter {
	base := store.TxnFilter{Route: q.Route, RC: strings.ToUpper(q.RC), From: q.from, To: q.to, Limit: searchLimit}
	switch {
	case q.card:
		base.CardFirst6, base.CardLast4 = q.first6, q.last4
		return []store.TxnFilter{base}
	case q.Q == "":
		return []store.TxnFilter{base}
	}
	rrn, stan, term, merchant := base, base, base, base
	rrn.RRN, stan.STAN, term.TerminalID, merchant.MerchantID = q.Q, q.Q, q.Q, q.Q
	return []store.TxnFilter{rrn, stan, term, merchant}
}

// searchLimit is the most rows one search shows.
const searchLimit = 200
