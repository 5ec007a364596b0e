package pipeline

import "context"

// Deps is what the stage lists are built from.
type Deps struct {
	HSM interface {
		MACVerifier
		PINTranslator
	}
	// Ledger also resolves routes (Ledger.Routes) and holds the SAF
	// queue (Ledger.Queue).
	Ledger Ledger
	Tokens Detokenizer
	// OverRate counts a request refused by its terminal's rate limit.
	OverRate func(listener string)
}

// issuerLeg is THE way to the issuer, shared by every list that sends:
// assign the issuer STAN/RRN, journal the request (record, the list's own
// record stage) before it leaves, send it and wait for the answer.
func issuerLeg(record Stage) []Stage {
	return []Stage{AssignIDs(), record, Forward()}
}

func list(parts ...[]Stage) []Stage {
	var out []Stage
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tokenUse reports whether t's card number is a token whose
// detokenization uses it up (a one-time token once): all but those the
// Detokenizer knows have no use limit (LimitlessDetokenizer).
func (x Deps) tokenUse(ctx context.Context, t *Txn) bool {
	if x.Tokens == nil || !x.Tokens.IsToken(t.PAN) {
		return false
	}
	l, ok := x.Tokens.(LimitlessDetokenizer)
	return !ok || !l.UseLimitless(ctx, t.PAN)
}

// CardLists are the stage lists for cards (and tokens standing for them),
// one per message class, in order: stages[0] runs first. A stage with
// "(outcome)" wraps the stages after it and journals what they return
// before the terminal hears it. A new instrument is a new set of lists
// keyed by its name, not new branches in these.
func CardLists(x Deps) map[ListKey][]Stage {
	entry := []Stage{VerifyMAC(x.HSM), RateLimit(x.OverRate)}
	card := func(c Class) ListKey { return ListKey{Class: c, Instrument: InstrumentCard} }
	return map[ListKey][]Stage{
		card(ClassNetwork):   list(entry, []Stage{NetworkManagement()}),
		card(ClassReconcile): list(entry, []Stage{Validate(), Reconcile(x.Ledger)}),
		card(ClassOther):     list(entry, []Stage{Validate()}), // refuses the MTI
		card(ClassSale): list(entry, []Stage{
			Validate(),
			// (outcome) repeat -> stored answer; gate; outcome journaled.
			// A token's use is a side effect: a repeat is looked up first.
			JournalSale(x.Ledger, x.tokenUse),
			Detokenize(x.Tokens),
			Route(x.Ledger.Routes),
			TranslatePIN(x.HSM),
			MapRequest(),
		}, issuerLeg(RecordSale(x.Ledger)), []Stage{
			TakeAnswer(), // DE 39 from the issuer's answer, mapped per route
		}),
		card(ClassGiveBack): list(entry, []Stage{
			Validate(),
			GiveBack(x.Ledger), // (outcome) find the original, reserve, build; outcome journaled
		}, issuerLeg(RecordGiveBack(x.Ledger))),
		// The SAF worker's attempt at a queued give-back: no terminal; the
		// worker journals the attempt's result.
		card(ClassQueued): list(issuerLeg(RecordQueued(x.Ledger.Queue)), []Stage{
			Settles(), // the route's settle codes
		}),
	}
}
