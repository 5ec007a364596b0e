package pipeline

import (
	"fmt"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// echoed are the request fields a response carries back to the terminal.
// DE 2 echoes what the terminal sent (a token stays a token); track data,
// PIN block, ICC data and MACs are never echoed.
var echoed = []int{
	specs.PAN, specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime, specs.STAN,
	specs.LocalTime, specs.LocalDate, specs.POSEntryMode, 25, 32, specs.RRN,
	specs.TerminalID, specs.MerchantID, specs.Currency, specs.NetworkMgmtCode,
	specs.OriginalData, specs.ReplacementAmounts,
}

// fromIssuer are the issuer answer fields passed back to the terminal.
var fromIssuer = []int{specs.ApprovalCode, 44, 54}

// Respond builds the terminal's response for t in the request's dialect
// as a message (Answer's fields): what a MAC is computed over.
func Respond(t *Txn) (*iso8583.Message, error) {
	a, err := Answer(t)
	if err != nil {
		return nil, err
	}
	return a.Message()
}

// Answer builds the terminal's response for t in the request's dialect:
// the response MTI, the echoed request fields (the request's own, shared),
// the issuer's RRN, approval code and additional data, and t.Code in DE
// 39. It packs as Respond's message does, without building one.
func Answer(t *Txn) (*frame.Fields, error) {
	rmti, err := specs.ResponseMTI(t.MTI)
	if err != nil {
		return nil, fmt.Errorf("building response: %w", err)
	}
	resp, err := frame.NewFields(t.Request.GetSpec(), rmti)
	if err != nil {
		return nil, fmt.Errorf("setting the response MTI: %w", err)
	}
	for _, id := range echoed {
		if err := resp.Copy(t.Request, id); err != nil {
			return nil, fmt.Errorf("echoing DE %d: %w", id, err)
		}
	}
	if t.IssuerResponse != nil {
		for _, id := range fromIssuer {
			if err := resp.Copy(t.IssuerResponse, id); err != nil {
				return nil, fmt.Errorf("copying issuer DE %d: %w", id, err)
			}
		}
	}
	if t.IssuerResponse == nil && t.ApprovalCode != "" {
		if err := resp.SetString(specs.ApprovalCode, t.ApprovalCode); err != nil {
			return nil, fmt.Errorf("setting DE 38: %w", err)
		}
	}
	if t.IssuerRequest == nil && t.RRN != "" && t.Request.GetField(specs.RRN) == nil {
		if err := resp.SetString(specs.RRN, t.RRN); err != nil {
			return nil, fmt.Errorf("setting DE 37: %w", err)
		}
	}
	if t.IssuerRequest != nil && t.Request.GetField(specs.RRN) == nil {
		// The terminal gets the RRN the switch assigned on the issuer leg
		// (answered or not), so a cancel can name the transaction.
		if err := resp.Copy(t.IssuerRequest, specs.RRN); err != nil {
			return nil, fmt.Errorf("copying RRN: %w", err)
		}
	}
	if err := resp.SetString(specs.ResponseCode, string(t.Code)); err != nil {
		return nil, fmt.Errorf("setting DE 39: %w", err)
	}
	return resp, nil
}
