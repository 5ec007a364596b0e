package store

import "time"

// State is where a transaction stands.
type State string

const (
	// Forwarded: sent to the issuer, no answer recorded yet. After a crash
	// such a sale may have been approved: recovery reverses it.
	Forwarded State = "forwarded"
	Approved  State = "approved"
	Declined  State = "declined"
	// TimedOut: no answer in time; the terminal got 91 and a reversal is
	// queued.
	TimedOut State = "timed_out"
	// Failed: never reached the issuer (no link, no route, refused by the
	// switch); nothing to reverse.
	Failed State = "failed"
	// Answered is a cancel, refund or reversal request that was answered.
	Answered State = "answered"
)

// Key identifies a terminal request: terminal ID + STAN + transmission
// date/time (DE 7) + MTI. A repeat of the same key is a duplicate.
type Key struct {
	TerminalID string
	STAN       string
	TxTime     string
	MTI        string
}

// Txn is one journaled transaction.
type Txn struct {
	ID int64
	Key
	Listener   string
	MerchantID string
	ProcCode   string
	Amount     int64
	Currency   string
	MaskedPAN  string
	Token      string
	// PAN under the HSM data key: a cancel or reversal can reach the card
	// after a one-time token was consumed.
	PANKey        string
	PANKeyVersion int
	PANCiphertext []byte
	CardExpiry    string
	Route         string
	IssuerSTAN    string
	IssuerTxTime  string
	RRN           string
	ApprovalCode  string
	RC            string
	State         State
	// Remaining is what of an approved sale is still charged; a cancel or
	// refund in state Forwarded holds its Amount reserved from it.
	Remaining  int64
	OriginalID int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// AuthKey is the MAC key label of the listener the request came on
	// ("" on a plain listener).
	AuthKey string
	// ContentHash identifies the request's content besides its key and
	// card: a repeat of the key is answered from this row only when equal.
	ContentHash string
	// Owner is the instance that recorded the row and answers for it while
	// it is in flight (set by the store from the handle's Instance; "" on
	// rows from versions before instances).
	Owner string
}

// Scope is where a terminal request may act: a cancel or refund finds its
// sale only among those made on the same listener, terminal (DE 41),
// merchant (DE 42) and MAC key.
type Scope struct {
	Listener, TerminalID, MerchantID, AuthKey string
}

// Update is what changes as a transaction goes on.
type Update struct {
	State                        State
	Route, IssuerSTAN, IssuerTxT string
	RRN, ApprovalCode, RC        string
	PANKey                       string
	PANKeyVersion                int
	PANCiphertext                []byte
	MaskedPAN, Token, CardExpiry string
	// Remaining, when not nil, sets what remains charged.
	Remaining *int64
}

// SAF item kinds: how the issuer is asked to give the money back.
const (
	KindReversal = "reversal" // 0420, repeated as 0421, answered 0430
	KindRefund   = "refund"   // 0200 with processing code 20 (prepaid hosts)
)

// SAF item states.
const (
	SAFPending = "pending"
	SAFDone    = "done"
	SAFReview  = "review" // expired unacknowledged: manual review
	// SAFResolved: an operator closed the item from review (SAFDesk.
	// Resolve); the money question was settled outside the switch.
	SAFResolved = "resolved"
)

// SAFStates are every SAF item state, for filters and gauges.
var SAFStates = []string{SAFPending, SAFReview, SAFDone, SAFResolved}

// MaxSearch is the most rows one search returns (Lookup.Search,
// SAFDesk.Search); DefaultSearch is what a search without a limit returns.
const (
	MaxSearch     = 1000
	DefaultSearch = 100
)

// SearchLimit is limit as a search applies it: DefaultSearch when not
// positive, at most MaxSearch.
func SearchLimit(limit int) int {
	if limit <= 0 {
		return DefaultSearch
	}
	return min(limit, MaxSearch)
}

// TxnFilter selects transactions for the operators' look-up; empty fields
// match everything, all fields given must match.
type TxnFilter struct {
	RRN        string // DE 37
	STAN       string // the terminal's DE 11
	TerminalID string // DE 41
	MerchantID string // DE 42
	State      State
	Route      string // the issuer route
	RC         string // DE 39 as answered
	// CardFirst6 and CardLast4 select by the masked card (6+4 digits of
	// MaskedPAN); each is digits only.
	CardFirst6, CardLast4 string
	// OriginalID selects the cancels, refunds and reversals of one sale.
	OriginalID int64
	// From and To bound the creation time: From <= created < To; zero
	// means unbounded.
	From, To time.Time
	// Limit caps the rows returned, newest first (SearchLimit).
	Limit int
}

// SAFFilter selects SAF items; empty fields match everything.
type SAFFilter struct {
	State string
	Route string
	Kind  string // KindReversal or KindRefund
	TxnID int64
	// Limit caps the items returned, oldest first (SearchLimit).
	Limit int
}

// Event is one entry of a transaction's history.
type Event struct {
	At     time.Time
	Kind   string
	Detail string
}

// SAFItem is one queued give-back (reversal or refund) of transaction
// TxnID.
type SAFItem struct {
	ID        int64
	TxnID     int64
	Route     string
	Kind      string
	Amount    int64
	Attempts  int
	NextAt    time.Time
	ExpiresAt time.Time
	State     string
	LastError string
	// STAN and TxTime are the issuer-leg DE 11 and DE 7 of the first
	// attempt, kept for every repeat so the issuer recognises a 0421 as the
	// repeat of what it may already have applied.
	STAN, TxTime string
	CreatedAt    time.Time
	// Owner is the instance that holds the item's lease until LeaseUntil;
	// once that has passed any instance may claim it.
	Owner      string
	LeaseUntil time.Time
}

// Instance names one switch instance on a store handle: every row it
// records and every SAF item it claims carries Name, and its heartbeat
// keeps them its own for Lease.
type Instance struct {
	// Name is unique among the instances sharing a store (config
	// instance_name, default the host name).
	Name string
	// Lease is how long a heartbeat or a claim keeps work owned. Default
	// DefaultLease.
	Lease time.Duration
}

// DefaultLease is Instance.Lease when unset.
const DefaultLease = 10 * time.Second

// LeaseOr returns i.Lease, or DefaultLease when unset.
func (i Instance) LeaseOr() time.Duration {
	if i.Lease <= 0 {
		return DefaultLease
	}
	return i.Lease
}

// Peer is another instance as the store knows it from its heartbeats.
type Peer struct {
	Name       string
	LeaseUntil time.Time
}

// ZoneKey is one issuer key change as recorded (ZoneKeys): the new zone
// PIN key under the route's zone master key, as the issuer sent it.
type ZoneKey struct {
	// ID orders the records: a later record has a greater ID.
	ID    int64
	Route string
	// Label is the key's label (the route's pin.key), ZMK the label of the
	// zone master key it is wrapped under (pin.zmk).
	Label, ZMK string
	// Version is the version the recording instance's HSM gave the key.
	Version int
	// Wrapped is the key encrypted under the ZMK (TDES ECB); KCV its check
	// value (3 bytes).
	Wrapped, KCV []byte
	// Instance is the instance that recorded it, At when.
	Instance string
	At       time.Time
}
