// Package store is the switch's boundary to its durable state: the
// journal of transactions and their events, the store-and-forward queue of
// give-backs, the token vault, and the instances sharing them. Callers use
// the small interfaces below, expressed in payment operations; each
// backend (store/embedded, store/postgres; what the SQL backends share is
// in store/sqlstore) implements them all and passes store/storetest. Errors callers decide on are the sentinels in this
// package, matched with errors.Is, never by their text.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers decide on. Implementations wrap them with context.
var (
	// ErrDuplicate: a request (or token) with this key is recorded already.
	ErrDuplicate = errors.New("store: duplicate")
	// ErrNotFound: no such transaction, token or instance.
	ErrNotFound = errors.New("store: not found")
	// ErrExceeds: a cancel or refund asks more than remains of its sale.
	ErrExceeds = errors.New("store: amount exceeds what remains")
	// ErrNotReserved: the cancel holds no reservation (it was answered or
	// released already).
	ErrNotReserved = errors.New("store: cancel holds no reservation")
	// ErrAmbiguous: more than one sale matches a refund's reference.
	ErrAmbiguous = errors.New("store: more than one transaction matches")
	// ErrUnavailable: the store is unreachable or failing; nothing of the
	// operation is known to have been applied.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrLeaseHeld: the instance or SAF item is owned by an instance whose
	// lease has not lapsed (a live peer's work is never taken over).
	ErrLeaseHeld = errors.New("store: lease held by a live instance")
	// ErrLeaseLost: this instance no longer owns the SAF item (its claim
	// lapsed and another instance took it).
	ErrLeaseLost = errors.New("store: lease lost")
	// ErrNotUsable: a token is not active, expired or used up.
	ErrNotUsable = errors.New("store: token not usable")
	// ErrFinal: a deleted token stays deleted.
	ErrFinal = errors.New("store: token is deleted")
	// ErrSAFState: an operator's SAF action does not apply to the item's
	// state (resolving an item not in review, retrying a done one).
	ErrSAFState = errors.New("store: SAF item is not in a state this action applies to")
	// ErrNoReason: resolving a SAF item needs the operator's reason.
	ErrNoReason = errors.New("store: resolving a SAF item needs a reason")
)

// Store hands out the operations of one store handle, bound to one
// Instance. Close stops it after the writes already submitted.
type Store interface {
	Sales() Sales
	GiveBacks() GiveBacks
	Queue() Queue
	SAFDesk() SAFDesk
	Lookup() Lookup
	Tokens() Tokens
	Instances() Instances
	ZoneKeys() ZoneKeys
	// Instance is who this handle records and claims as.
	Instance() Instance
	Close() error
}

// Sales records terminal requests and their outcomes (purchases,
// authorisations, reconciliations, refused requests).
type Sales interface {
	// Begin records a request, durably, before it leaves for the issuer.
	// A request whose Key is recorded already returns ErrDuplicate with
	// the stored row, so the caller answers the repeat from it.
	Begin(ctx context.Context, t Txn) (Txn, error)
	// Set records an outcome durably (returns after the commit), with an
	// event when event is not "". ErrNotFound when id does not exist;
	// ErrLeaseLost (nothing written) when another instance owns the row:
	// it took it over after this instance's lease lapsed, and its recovery
	// stands.
	Set(ctx context.Context, id int64, u Update, event string) error
	// Event appends a note to a transaction's history.
	Event(ctx context.Context, id int64, kind, detail string) error
	// FindByKey finds a request by terminal ID, STAN, DE 7 and MTI (the
	// duplicate look-up).
	FindByKey(ctx context.Context, k Key) (Txn, error)
	// Probe makes one small durable write: whether the store takes writes
	// again after a failure.
	Probe(ctx context.Context, why string) error
}

// GiveBacks reserves and releases what cancels and refunds take off
// their sales, and finds those sales.
type GiveBacks interface {
	// ReserveCancel records cancel or refund c (state Forwarded) and takes
	// c.Amount off what remains of the approved sale c.OriginalID, in one
	// step: after a crash either both happened or neither. ErrDuplicate
	// with the stored row when c's key is recorded; ErrExceeds (nothing
	// recorded) when c.Amount is more than remains. Racing cancels never
	// take more than the sale's amount in total.
	ReserveCancel(ctx context.Context, c Txn) (Txn, error)
	// ReleaseCancel gives the amount reserved by cancel cancelID back to
	// its sale and records the cancel settled (state st, code rc), in one
	// step. ErrNotReserved when it holds no reservation, so a reservation
	// goes back at most once; ErrLeaseLost when another instance took the
	// cancel over.
	ReleaseCancel(ctx context.Context, cancelID int64, st State, rc, why string) error
	// FindOriginal finds the sale or authorisation a cancel names (DE 90's
	// MTI, STAN and DE 7) within scope s; outside it is ErrNotFound.
	FindOriginal(ctx context.Context, s Scope, mti, stan, txTime string) (Txn, error)
	// FindSale finds the approved sale with this RRN and approval code
	// within scope s: ErrNotFound, or ErrAmbiguous when several match.
	FindSale(ctx context.Context, s Scope, rrn, approvalCode string) (Txn, error)
}

// Queue is the store-and-forward queue of give-backs (reversals and
// refunds the issuer must acknowledge).
type Queue interface {
	// Enqueue adds a give-back durably, owned by this instance and leased
	// until its NextAt plus the instance's lease.
	Enqueue(ctx context.Context, it SAFItem) (int64, error)
	// Claim returns up to limit of route's pending items due at now,
	// oldest due first, and leases them to this instance until now+lease:
	// items this instance holds, and those whose lease lapsed (taken
	// over). An item is claimed by one instance at a time.
	Claim(ctx context.Context, route string, now time.Time, lease time.Duration, limit int) ([]SAFItem, error)
	// AssignFirstAttempt durably records the DE 11 / DE 7 of an item's
	// first attempt. ErrLeaseLost when this instance no longer owns it.
	AssignFirstAttempt(ctx context.Context, id int64, stan, txTime string) error
	// Result records an attempt: SAFDone (acknowledged), SAFPending (retry
	// at next, still leased to this instance until next plus its lease) or
	// SAFReview (expired). ErrLeaseLost when another instance took it.
	Result(ctx context.Context, it SAFItem, state string, next time.Time, lastErr string) error
	// List lists items in a state (the admin API, holding STANs at start).
	List(ctx context.Context, state string) ([]SAFItem, error)
	// Depth counts pending items.
	Depth(ctx context.Context) (int, error)
}

// SAFDesk is the operators' view of the store-and-forward queue (the
// admin API, switchctl saf, the saf_items gauge): finding items, and the
// two actions an operator takes on one. Each action is one step: the
// item's state is checked and changed, and the transaction's history
// records who did it and when.
type SAFDesk interface {
	// Search lists the items f selects, oldest first.
	Search(ctx context.Context, f SAFFilter) ([]SAFItem, error)
	// Get reads one item; ErrNotFound when there is none.
	Get(ctx context.Context, id int64) (SAFItem, error)
	// Counts counts the items in each state, every state of SAFStates
	// present (zero included).
	Counts(ctx context.Context) (map[string]int, error)
	// RetryNow makes an item due at once: a pending item skips the rest of
	// its back-off; one in review goes back to pending, expiring at now
	// plus expiry. Ownership and lease are left as they are (a lapsed
	// lease lets any instance claim it). ErrSAFState for any other state,
	// ErrNotFound. who is the operator.
	RetryNow(ctx context.Context, id int64, who string, expiry time.Duration) (SAFItem, error)
	// Resolve closes an item in review (state SAFResolved): the operator
	// settled it with the issuer outside the switch. The reason and who
	// become its LastError ("resolved by who: reason"). ErrNoReason when
	// reason is blank, ErrSAFState when the item is not in review,
	// ErrNotFound.
	Resolve(ctx context.Context, id int64, who, reason string) (SAFItem, error)
}

// Lookup reads the journal: reports, settlement, recovery, the admin API.
type Lookup interface {
	Get(ctx context.Context, id int64) (Txn, error)
	// Events returns a transaction's history ("kind: detail"), oldest first.
	Events(ctx context.Context, id int64) ([]string, error)
	// History returns a transaction's history with the time of each
	// event, oldest first.
	History(ctx context.Context, id int64) ([]Event, error)
	// Search lists every instance's transactions f selects, newest first
	// (the operators' look-up).
	Search(ctx context.Context, f TxnFilter) ([]Txn, error)
	// Between lists transactions created in [from, to).
	Between(ctx context.Context, from, to time.Time) ([]Txn, error)
	// InState lists every instance's transactions in state s.
	InState(ctx context.Context, s State) ([]Txn, error)
	// InFlight lists the transactions this instance left Forwarded (and
	// those recorded before instances existed, owner ""): what its
	// recovery and sweep may act on. A peer's are never listed.
	InFlight(ctx context.Context) ([]Txn, error)
	// FindByIssuerSTAN finds the latest transaction sent on route with
	// issuer STAN (a late answer).
	FindByIssuerSTAN(ctx context.Context, route, stan string) (Txn, error)
	// Reconciliations lists 0500 rows answered rc, newest first.
	Reconciliations(ctx context.Context, rc string, limit int) ([]Txn, error)
	// TerminalTotals are a terminal's open batches, one per currency: what
	// it did after its last agreed 0500 in that currency (one without a
	// currency closes them all), folded by CurrencyTotals.Add (EntryOf).
	TerminalTotals(ctx context.Context, terminalID string) (CurrencyTotals, error)
}

// Instances are the switch instances sharing the store: heartbeats,
// taking over the work of one whose heartbeat lapsed, and durable number
// sequences.
type Instances interface {
	// Heartbeat renews this instance's lease until now plus its Lease.
	Heartbeat(ctx context.Context, now time.Time) error
	// Lapsed lists the other instances whose lease ended before now, and
	// the owners of in-flight transactions or pending SAF items that have
	// no heartbeat at all (LeaseUntil zero or the epoch).
	Lapsed(ctx context.Context, now time.Time) ([]Peer, error)
	// TakeOver moves the in-flight transactions and pending SAF items of
	// lapsed instance name to this instance and forgets name, in one step,
	// and returns the transactions taken (none when another survivor took
	// them first). ErrLeaseHeld when name's lease has not ended by now (it
	// is alive: its work is never touched) or name is this instance.
	TakeOver(ctx context.Context, name string, now time.Time) ([]Txn, error)
	// ReserveBlock durably reserves n numbers of the named sequence and
	// returns the first; the block is [first, first+n), numbers start at
	// 1. Blocks never overlap, across instances and restarts.
	ReserveBlock(ctx context.Context, name string, n int64) (int64, error)
}

// Tokens is the token vault.
type Tokens interface {
	// Insert stores a new token; ErrDuplicate when it exists.
	Insert(ctx context.Context, r TokenRecord) error
	// InsertMany stores many tokens in one step (bulk provisioning).
	InsertMany(ctx context.Context, rs []TokenRecord) error
	Get(ctx context.Context, token string) (TokenRecord, error)
	// SetStatus moves a token to status; a deleted token stays deleted
	// (ErrFinal with the record).
	SetStatus(ctx context.Context, token string, status TokenStatus, now time.Time) (TokenRecord, error)
	// Use records one use of an active, unexpired token that has uses left
	// and returns the updated record; otherwise ErrNotUsable. Two
	// concurrent uses of a one-time token, through one handle or two:
	// exactly one succeeds.
	Use(ctx context.Context, token string, now time.Time) (TokenRecord, error)
	// FindByPANHash lists the tokens of one card.
	FindByPANHash(ctx context.Context, hash []byte) ([]TokenRecord, error)
	// Count is how many tokens the vault holds.
	Count(ctx context.Context) (int, error)
}

// ZoneKeys records the zone PIN keys issuers sent in key changes (0800,
// DE 70 161), as received: wrapped under the route's zone master key,
// never clear, with their check value. The instance whose link took a key
// change records it; every instance sharing the store imports the latest
// recorded key of each route through its own HSM (docs/links.md).
type ZoneKeys interface {
	// Record appends a key change.
	Record(ctx context.Context, k ZoneKey) error
	// Latest is the route's last recorded key change; ErrNotFound when
	// it has none.
	Latest(ctx context.Context, route string) (ZoneKey, error)
}
