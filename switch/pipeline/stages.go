package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/route"
)

// NetworkManagement answers a terminal's or VAN's 0800 (sign-on, sign-off,
// echo) itself; nothing goes to an issuer.
func NetworkManagement() Stage {
	return Stage{Name: "netmgmt", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if t.MTI != specs.MTINetworkMgmt {
				return next.Handle(ctx, t)
			}
			code, _ := t.Request.GetString(specs.NetworkMgmtCode)
			switch code {
			case specs.NetMgmtSignOn, specs.NetMgmtSignOff, specs.NetMgmtEcho:
				t.Code = codes.Approved
				return nil
			}
			return Declinef(ErrInvalidTxn, "unsupported network management code %q", code)
		})
	}}
}

// mandatory lists the fields each supported request MTI must carry (the
// card itself is checked separately: DE 2 or DE 35).
var mandatory = map[string][]int{
	specs.MTIAuthRequest:      {specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime, specs.STAN, specs.TerminalID, specs.Currency},
	specs.MTIFinancialRequest: {specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime, specs.STAN, specs.TerminalID, specs.Currency},
	specs.MTIReversal:         {specs.TransmissionDateTime, specs.STAN, specs.TerminalID, specs.OriginalData},
	specs.MTIReconciliation:   {specs.TransmissionDateTime, specs.STAN, specs.TerminalID},
}

// MaxICCData is the cap on DE 55 for listeners without their own.
const MaxICCData = 255

// Validate checks that the request is a supported MTI with its mandatory
// fields, numeric where ISO says so, a positive amount and a Luhn-valid card
// number, and sets t.PAN.
func Validate() Stage {
	return Stage{Name: "validate", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			if err := validate(t, t.Policy.maxICC()); err != nil {
				return err
			}
			return next.Handle(ctx, t)
		})
	}}
}

func validate(t *Txn, maxICC int) error {
	required, ok := mandatory[t.MTI]
	if !ok {
		return Declinef(ErrInvalidTxn, "MTI %s not supported", t.MTI)
	}
	for _, id := range required {
		if t.Request.GetField(id) == nil {
			return Declinef(ErrFormat, "mandatory DE %d missing", id)
		}
	}
	for _, id := range specs.Numeric {
		v, _ := t.Request.GetString(id)
		if !digits(v) && v != "" {
			return Declinef(ErrFormat, "DE %d is not numeric", id)
		}
	}
	if t.MTI == specs.MTIReversal || t.MTI == specs.MTIReconciliation {
		// A cancel names its sale in DE 90 and takes the card from the
		// journal; a reconciliation carries totals, no card.
		return nil
	}
	amount, _ := t.Request.GetString(specs.Amount)
	if strings.Trim(amount, "0") == "" {
		return Declinef(ErrInvalidAmount, "amount is zero")
	}
	if cur, _ := t.Request.GetString(specs.Currency); len(cur) != 3 || !digits(cur) {
		return Declinef(ErrFormat, "DE 49 currency is not a 3-digit ISO 4217 code")
	}
	if icc, _ := t.Request.GetBytes(specs.ICCData); len(icc) > 0 {
		if err := CheckICC(icc, maxICC); err != nil {
			return Declinef(ErrFormat, "DE 55: %v", err)
		}
	}
	p, err := cardNumber(t.Request)
	if err != nil {
		return err
	}
	if !pan.Luhn(p) || len(p) < 12 {
		return Declinef(ErrInvalidCard, "card number fails the Luhn check")
	}
	t.PAN = p
	return nil
}

// cardNumber returns DE 2, or the PAN part of track 2 when DE 2 is absent;
// when both are present they must agree.
func cardNumber(m *iso8583.Message) (string, error) {
	de2, _ := m.GetString(specs.PAN)
	track, _ := m.GetString(specs.Track2)
	var fromTrack string
	if track != "" {
		i := strings.IndexAny(track, "=D")
		if i < 0 {
			return "", Declinef(ErrFormat, "track 2 has no field separator")
		}
		fromTrack = track[:i]
	}
	switch {
	case de2 != "" && fromTrack != "" && de2 != fromTrack:
		return "", Declinef(ErrFormat, "DE 2 and track 2 name different cards")
	case de2 != "":
		return de2, nil
	case fromTrack != "":
		return fromTrack, nil
	}
	return "", Declinef(ErrFormat, "no card number (DE 2 or DE 35)")
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Route picks the issuer route by the longest BIN prefix of t.PAN and
// resolves its policy and link once (Txn.Issuer).
func Route(r Routes) Stage {
	return Stage{Name: "route", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			name, err := r.Lookup(t.PAN)
			if err != nil {
				return fmt.Errorf("BIN %s: %w", t.PAN[:min(6, len(t.PAN))], err)
			}
			rt, ok := r.Route(name)
			if !ok {
				return Declinef(route.ErrNoRoute, "route %s has no issuer link", name)
			}
			t.Route, t.Issuer = name, rt
			return next.Handle(ctx, t)
		})
	}}
}
