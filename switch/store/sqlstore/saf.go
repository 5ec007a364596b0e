package sqlstore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// SAFAction is an operator action on a SAF item as every backend applies
// it: the states it is allowed in and the history event it records.
type SAFAction struct {
	// From are the states the item may be in.
	From []string
	// Kind and Detail are the transaction history event.
	Kind, Detail string
}

// Check refuses the action on an item in another state (store.ErrSAFState).
func (a SAFAction) Check(it store.SAFItem) error {
	if !slices.Contains(a.From, it.State) {
		return fmt.Errorf("item is %s, want %s: %w", it.State, strings.Join(a.From, " or "), store.ErrSAFState)
	}
	return nil
}

// RetryNowAction is "retry now" on it by who: a pending item skips its
// back-off, one in review goes back to pending.
func RetryNowAction(it store.SAFItem, who string) SAFAction {
	return SAFAction{From: []string{store.SAFPending, store.SAFReview}, Kind: "reversal_retry_now",
		Detail: fmt.Sprintf("%s of %d on %s (was %s): retry now, by %s", it.Kind, it.Amount, it.Route, it.State, who)}
}

// ResolveNote is what an item resolved by who for reason records as its
// last error.
func ResolveNote(who, reason string) string { return fmt.Sprintf("resolved by %s: %s", who, reason) }

// ResolveAction is closing it (in review) by who for reason.
func ResolveAction(it store.SAFItem, who, reason string) SAFAction {
	return SAFAction{From: []string{store.SAFReview}, Kind: "reversal_resolved",
		Detail: fmt.Sprintf("%s of %d on %s %s", it.Kind, it.Amount, it.Route, ResolveNote(who, reason))}
}

// DecideAction is an operator action on the item read for it (items:
// none or one): store.ErrNotFound, store.ErrSAFState, or the item and the
// action to apply and record.
func DecideAction(items []store.SAFItem, action func(store.SAFItem) SAFAction) (store.SAFItem, SAFAction, error) {
	if len(items) == 0 {
		return store.SAFItem{}, SAFAction{}, store.ErrNotFound
	}
	a := action(items[0])
	return items[0], a, a.Check(items[0])
}

// QueuedDetail is the history detail of it queued (Queue.Enqueue).
func QueuedDetail(it store.SAFItem) string {
	return fmt.Sprintf("%s of %d queued on %s", it.Kind, it.Amount, it.Route)
}

// ResultEvent is the history event of an attempt at it ending in state
// (Queue.Result), with lastErr when there was one.
func ResultEvent(it store.SAFItem, state, lastErr string) (kind, detail string) {
	switch state {
	case store.SAFDone:
		kind = "reversal_acknowledged"
	case store.SAFReview:
		kind = "reversal_manual_review"
	case store.SAFPending:
		kind = "reversal_retry"
	}
	detail = fmt.Sprintf("%s of %d on %s, attempt %d", it.Kind, it.Amount, it.Route, it.Attempts+1)
	if lastErr != "" {
		detail += ": " + lastErr
	}
	return kind, detail
}

// ResultLease is until when an attempt's result leaves the item leased to
// its owner (Unix ms): a retry until its next attempt plus the lease,
// anything final not at all (0).
func ResultLease(state string, next time.Time, lease time.Duration) int64 {
	if state == store.SAFPending {
		return next.Add(lease).UnixMilli()
	}
	return 0
}

// SortClaimed orders claimed items oldest due first (ties by id), as
// Queue.Claim returns them (RETURNING keeps no order).
func SortClaimed(items []store.SAFItem) {
	slices.SortFunc(items, func(a, b store.SAFItem) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
}
