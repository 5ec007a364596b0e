package store

import (
	"fmt"
	"slices"
	"strings"
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

// Conditions are the terms f selects transactions by (empty fields match
// everything); backends order newest first and cap at SearchLimit.
func (f TxnFilter) Conditions() []Condition {
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

// Conditions are the terms f selects SAF items by; backends order oldest
// first and cap at SearchLimit.
func (f SAFFilter) Conditions() []Condition {
	var c conditions
	c.add("state", "=", f.State, f.State != "")
	c.add("route", "=", f.Route, f.Route != "")
	c.add("kind", "=", f.Kind, f.Kind != "")
	c.add("txn_id", "=", f.TxnID, f.TxnID != 0)
	return c
}

// Where renders conds as a WHERE clause (empty without conditions):
// column maps a Column to its SQL expression (the card pseudo-columns),
// placeholder gives the n-th argument's marker ("?" or "$n").
func Where(conds []Condition, column func(string) string, placeholder func(n int) string) (string, []any) {
	if len(conds) == 0 {
		return "", nil
	}
	terms := make([]string, len(conds))
	args := make([]any, len(conds))
	for i, c := range conds {
		terms[i] = column(c.Column) + " " + c.Op + " " + placeholder(i+1)
		args[i] = c.Arg
	}
	return " WHERE " + strings.Join(terms, " AND "), args
}

// ZeroSAFCounts is a count per SAF state, every state present at zero.
func ZeroSAFCounts() map[string]int {
	out := make(map[string]int, len(SAFStates))
	for _, s := range SAFStates {
		out[s] = 0
	}
	return out
}

// SAFAction is an operator action on a SAF item as every backend applies
// it: the states it is allowed in and the history event it records.
type SAFAction struct {
	// From are the states the item may be in.
	From []string
	// Kind and Detail are the transaction history event.
	Kind, Detail string
}

// Check refuses the action on an item in another state (ErrSAFState).
func (a SAFAction) Check(it SAFItem) error {
	if !slices.Contains(a.From, it.State) {
		return fmt.Errorf("item is %s, want %s: %w", it.State, strings.Join(a.From, " or "), ErrSAFState)
	}
	return nil
}

// RetryNowAction is "retry now" on it by who: a pending item skips its
// back-off, one in review goes back to pending.
func RetryNowAction(it SAFItem, who string) SAFAction {
	return SAFAction{From: []string{SAFPending, SAFReview}, Kind: "reversal_retry_now",
		Detail: fmt.Sprintf("%s of %d on %s (was %s): retry now, by %s", it.Kind, it.Amount, it.Route, it.State, who)}
}

// ResolveNote is what an item resolved by who for reason records as its
// last error.
func ResolveNote(who, reason string) string { return fmt.Sprintf("resolved by %s: %s", who, reason) }

// ResolveAction is closing it (in review) by who for reason.
func ResolveAction(it SAFItem, who, reason string) SAFAction {
	return SAFAction{From: []string{SAFReview}, Kind: "reversal_resolved",
		Detail: fmt.Sprintf("%s of %d on %s %s", it.Kind, it.Amount, it.Route, ResolveNote(who, reason))}
}
