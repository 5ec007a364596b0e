package pipeline

import (
	"fmt"

	"github.com/moov-io/iso8583"

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

// Respond builds the terminal's response for t in the request's dialect:
// the response MTI, the echoed request fields, the issuer's RRN, approval
// code and additional data, and t.Code in DE 39.
func Respond(t *Txn) (*iso8583.Message, error) {
	spec := t.Request.GetSpec()
	rmti, err := specs.ResponseMTI(t.MTI)
	if err != nil {
		return nil, fmt.Errorf("building response: %w", err)
	}
	resp := iso8583.NewMessage(spec)
	resp.MTI(rmti)
	for _, id := range echoed {
		if err := CopyField(resp, t.Request, id); err != nil {
			return nil, fmt.Errorf("echoing DE %d: %w", id, err)
		}
	}
	if t.IssuerResponse != nil {
		for _, id := range fromIssuer {
			if err := CopyField(resp, t.IssuerResponse, id); err != nil {
				return nil, fmt.Errorf("copying issuer DE %d: %w", id, err)
			}
		}
	}
	if t.IssuerResponse == nil && t.ApprovalCode != "" {
		if err := resp.Field(specs.ApprovalCode, t.ApprovalCode); err != nil {
			return nil, fmt.Errorf("setting DE 38: %w", err)
		}
	}
	if t.IssuerRequest == nil && t.RRN != "" && t.Request.GetField(specs.RRN) == nil {
		if err := resp.Field(specs.RRN, t.RRN); err != nil {
			return nil, fmt.Errorf("setting DE 37: %w", err)
		}
	}
	if t.IssuerRequest != nil && t.Request.GetField(specs.RRN) == nil {
		// The terminal gets the RRN the switch assigned on the issuer leg
		// (answered or not), so a cancel can name the transaction.
		if err := CopyField(resp, t.IssuerRequest, specs.RRN); err != nil {
			return nil, fmt.Errorf("copying RRN: %w", err)
		}
	}
	if err := resp.Field(specs.ResponseCode, string(t.Code)); err != nil {
		return nil, fmt.Errorf("setting DE 39: %w", err)
	}
	return resp, nil
}

// CopyField copies field id from src to dst when src has it and dst's spec
// defines it; the raw value moves, whatever each dialect's encoding is.
func CopyField(dst, src *iso8583.Message, id int) error {
	if _, ok := dst.GetSpec().Fields[id]; !ok {
		return nil
	}
	if src.GetField(id) == nil {
		return nil
	}
	b, err := src.GetBytes(id)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return dst.BinaryField(id, b)
}
