package pipeline

import "github.com/kbpay/switch/specs"

// ListenerPolicy is what a listener decides for every request it takes,
// resolved once when the listener builds the Txn.
type ListenerPolicy struct {
	// Instrument is what its terminals pay with; the dispatcher picks the
	// stage lists by it (InstrumentCard when empty).
	Instrument string
	// MAC is the keyed listener's MAC key (nil: not keyed).
	MAC *MACKey
	// PIN is how its terminals encrypt PIN blocks (nil: no PIN blocks).
	PIN *PINSource
	// MaxICC caps DE 55 (0: MaxICCData).
	MaxICC int
	// Limits are the per-terminal limits applied once the MAC verified
	// (keyed listeners; nil: limited before the pipeline, or not at all).
	Limits *TerminalLimits
}

// authKey is the MAC key label a keyed listener's terminals sign with.
func (p ListenerPolicy) authKey() string {
	if p.MAC == nil {
		return ""
	}
	return p.MAC.Key
}

// maxICC is the DE 55 cap.
func (p ListenerPolicy) maxICC() int {
	if p.MaxICC == 0 {
		return MaxICCData
	}
	return p.MaxICC
}

// IssuerRoute is an issuer route's policy and its link, resolved once by
// the stage that picks the route (or, for a give-back, from the sale's).
type IssuerRoute struct {
	Name string
	// Link is the route's issuer link, with its mapping rules.
	Link Upstream
	// PIN is the route's zone PIN key (nil: takes no PIN blocks).
	PIN *PINDest
	// GiveBack is how the route's issuer takes money back:
	// store.KindReversal or store.KindRefund.
	GiveBack string
	// SettleCodes are the DE 39 values that settle a queued give-back.
	SettleCodes []string
}

// Routes finds issuer routes: by the longest BIN prefix of a card, and by
// name (a give-back goes the way its sale went).
type Routes interface {
	Lookup(pan string) (string, error)
	Route(name string) (IssuerRoute, bool)
}

// InstrumentCard is a card (or a token standing for one) in DE 2 / DE 35.
const InstrumentCard = "card"

// Class is what a request asks of the switch; each has its stage lists.
type Class string

// Message classes.
const (
	ClassSale      Class = "sale"      // 0100 authorisation, 0200 purchase
	ClassGiveBack  Class = "giveback"  // 0400 cancel/reversal, 0200 refund
	ClassReconcile Class = "reconcile" // 0500 batch totals
	ClassNetwork   Class = "network"   // 0800 sign-on, sign-off, echo
	ClassOther     Class = "other"     // anything else: refused by validation
	// ClassQueued is a store-and-forward give-back attempt (no terminal).
	ClassQueued Class = "queued"
)

// ClassOf is the class of a terminal's request.
func ClassOf(t *Txn) Class {
	switch t.MTI {
	case specs.MTINetworkMgmt:
		return ClassNetwork
	case specs.MTIReconciliation:
		return ClassReconcile
	case specs.MTIReversal:
		return ClassGiveBack
	case specs.MTIAuthRequest:
		return ClassSale
	case specs.MTIFinancialRequest:
		if isRefund(t) {
			return ClassGiveBack
		}
		return ClassSale
	}
	return ClassOther
}
