package sqlstore

import (
	"strings"

	"github.com/kbpay/switch/switch/store"
)

// Condition is one term of a search, for a backend to render in its own
// SQL: Column (a journal column both backends share, or one of the
// CardFirst6Column / CardLast4Column pseudo-columns each renders its own
// way) compared with Op to Arg.
type Condition struct {
	Column, Op string
	Arg        any
}

// Pseudo-columns of the masked card (its first six and last four digits).
const (
	CardFirst6Column = "card_first6"
	CardLast4Column  = "card_last4"
)

// conditions collects the terms whose value is given.
type conditions []Condition

func (c *conditions) add(column, op string, arg any, given bool) {
	if given {
		*c = append(*c, Condition{Column: column, Op: op, Arg: arg})
	}
}

// TxnConditions are the terms f selects transactions by (empty fields
// match everything); backends order newest first and cap at
// store.SearchLimit.
func TxnConditions(f store.TxnFilter) []Condition {
	var c conditions
	c.add("rrn", "=", f.RRN, f.RRN != "")
	c.add("stan", "=", f.STAN, f.STAN != "")
	c.add("terminal_id", "=", f.TerminalID, f.TerminalID != "")
	c.add("merchant_id", "=", f.MerchantID, f.MerchantID != "")
	c.add("state", "=", string(f.State), f.State != "")
	c.add("route", "=", f.Route, f.Route != "")
	c.add("rc", "=", f.RC, f.RC != "")
	c.add(CardFirst6Column, "=", f.CardFirst6, f.CardFirst6 != "")
	c.add(CardLast4Column, "=", f.CardLast4, f.CardLast4 != "")
	c.add("original_id", "=", f.OriginalID, f.OriginalID != 0)
	c.add("created_at", ">=", f.From.UnixMilli(), !f.From.IsZero())
	c.add("created_at", "<", f.To.UnixMilli(), !f.To.IsZero())
	return c
}

// SAFConditions are the terms f selects SAF items by; backends order
// oldest first and cap at store.SearchLimit.
func SAFConditions(f store.SAFFilter) []Condition {
	var c conditions
	c.add("state", "=", f.State, f.State != "")
	c.add("route", "=", f.Route, f.Route != "")
	c.add("kind", "=", f.Kind, f.Kind != "")
	c.add("txn_id", "=", f.TxnID, f.TxnID != 0)
	return c
}

// Dialect is how a backend writes what the shared SQL leaves open.
type Dialect struct {
	// Param is the marker of the n-th argument (from 1), typed as sqlType
	// ("text", "bigint") where the dialect needs it to type a parameter
	// that no column types; "" for none.
	Param func(n int, sqlType string) string
	// Column maps a Condition's column to its SQL expression (the card
	// pseudo-columns).
	Column func(column string) string
	// Lock is what a read that a transaction's write depends on appends
	// to lock the rows it reads (" FOR UPDATE"; "" where the engine has
	// one writer).
	Lock string
}

// Where renders conds as a WHERE clause (empty without conditions),
// their arguments numbered from 1.
func (d Dialect) Where(conds []Condition) (string, []any) {
	if len(conds) == 0 {
		return "", nil
	}
	terms := make([]string, len(conds))
	args := make([]any, len(conds))
	for i, c := range conds {
		terms[i] = d.Column(c.Column) + " " + c.Op + " " + d.Param(i+1, "")
		args[i] = c.Arg
	}
	return " WHERE " + strings.Join(terms, " AND "), args
}

// Search is a search's query: columns of table where conds hold (and
// extra, " AND ..." or "", when given), ordered by order, at most limit
// rows.
func (d Dialect) Search(columns, table string, conds []Condition, extra, order string, limit int) (string, []any) {
	where, args := d.Where(conds)
	if extra != "" {
		if where == "" {
			where = " WHERE " + strings.TrimPrefix(extra, " AND ")
		} else {
			where += extra
		}
	}
	args = append(args, limit)
	return "SELECT " + columns + " FROM " + table + where + " ORDER BY " + order + " LIMIT " + d.Param(len(args), ""), args
}

// OpenBatches is the query of a terminal's open batches (TerminalTotals):
// its rows after the last agreed 0500 of their currency, or the last
// without a currency when later (closed, from ClosedBatches). The first
// argument is the terminal.
func (d Dialect) OpenBatches(terminalID string, closed map[string]int64) (string, []any) {
	after, args := "", []any{terminalID}
	for cur, id := range closed {
		if cur != "" {
			args = append(args, cur, max(id, closed[""]))
			after += " WHEN " + d.Param(len(args)-1, "text") + " THEN " + d.Param(len(args), "bigint")
		}
	}
	args = append(args, closed[""])
	if after == "" {
		after = d.Param(len(args), "bigint")
	} else {
		after = "CASE currency" + after + " ELSE " + d.Param(len(args), "bigint") + " END"
	}
	return "SELECT " + TxnColumns + " FROM txns WHERE terminal_id = " + d.Param(1, "") + " AND id > " + after + " ORDER BY id", args
}
