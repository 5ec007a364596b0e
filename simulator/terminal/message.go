package terminal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// Purchase defaults.
const (
	DefaultCurrency     = "410" // KRW
	DefaultPOSEntryMode = "051" // chip read, PIN capable
	// ProcessingPurchase is DE 3 of a goods-and-services purchase.
	ProcessingPurchase = "000000"
	// MaxAmount is the largest amount DE 4 (n 12) can carry.
	MaxAmount = 999_999_999_999
)

// ErrInvalidPurchase is wrapped by every validation error of a Purchase.
var ErrInvalidPurchase = errors.New("invalid purchase")

// Purchase is one card purchase as a terminal would submit it.
type Purchase struct {
	// PAN is the card number or token: 12-19 digits. It is never logged or
	// printed; see MaskedPAN.
	PAN string
	// Amount is in minor units of Currency (KRW has none: won).
	Amount int64
	// Expiry is YYMM, optional.
	Expiry string
	// Currency is the ISO 4217 numeric code. Default 410 (KRW).
	Currency string
	// POSEntryMode is DE 22. Default 051.
	POSEntryMode string
	// PIN is the cardholder's PIN, 4-12 digits, optional. When set, DE 52
	// carries it as an ISO 9564 format 0 PIN block under the terminal's PIN
	// key (Options.PINKey, or the DUKPT key with the KSN in DE 62). It is
	// never logged or printed.
	PIN string
	// PINPAN is the card number the PIN block is bound to (format 0 mixes
	// in 12 of its digits); empty means PAN. The switch translates PIN
	// blocks bound to the REAL card number, after detokenization, so a
	// purchase paid with a token (PAN = token) must set PINPAN to the card
	// behind the token, or the issuer cannot recover the PIN. Real token
	// schemes translate from the token-bound block instead; this simulator
	// and the switch keep the simpler rule.
	PINPAN string
}

// MaskedPAN returns the PAN masked 6+4.
func (p Purchase) MaskedPAN() string { return pan.Mask(p.PAN) }

func (p Purchase) withDefaults() Purchase {
	if p.Currency == "" {
		p.Currency = DefaultCurrency
	}
	if p.POSEntryMode == "" {
		p.POSEntryMode = DefaultPOSEntryMode
	}
	return p
}

// Validate checks the purchase after defaults are applied; the error wraps
// ErrInvalidPurchase and shows the PAN masked only.
func (p Purchase) Validate() error {
	p = p.withDefaults()
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPurchase, fmt.Sprintf(format, a...))
	}
	if p.PAN == "" {
		return invalid("PAN is required")
	}
	if len(p.PAN) < 12 || len(p.PAN) > 19 || !isDigits(p.PAN) {
		return invalid("PAN %s is not 12-19 digits", p.MaskedPAN())
	}
	if p.Amount <= 0 || p.Amount > MaxAmount {
		return invalid("amount %d is not in 1..%d", p.Amount, int64(MaxAmount))
	}
	if p.Expiry != "" {
		if len(p.Expiry) != 4 || !isDigits(p.Expiry) {
			return invalid("expiry %q is not YYMM", p.Expiry)
		}
		if mm, _ := strconv.Atoi(p.Expiry[2:]); mm < 1 || mm > 12 {
			return invalid("expiry %q has month %02d", p.Expiry, mm)
		}
	}
	if len(p.Currency) != 3 || !isDigits(p.Currency) {
		return invalid("currency %q is not a 3-digit ISO 4217 code", p.Currency)
	}
	if len(p.POSEntryMode) != 3 || !isDigits(p.POSEntryMode) {
		return invalid("POS entry mode %q is not 3 digits", p.POSEntryMode)
	}
	return p.validatePIN(invalid)
}

// NewPurchaseMessage builds the 0200 purchase request: DE 2, 3 (000000), 4,
// 7 (MMDDhhmmss UTC), 11, 12 and 13 (hhmmss and MMDD in now's location), 14
// when given, 22, 41, 42, 49, and DE 52 when p.PIN is set (encrypted under
// opts.PINKey). Zero fields of opts take the defaults. No RRN: the switch
// assigns DE 37. A PIN under DUKPT (opts.DUKPTBDK set) needs a KSN: use
// NewPurchaseMessageKSN or Client.Purchase.
func NewPurchaseMessage(spec *iso8583.MessageSpec, p Purchase, stan string, now time.Time, opts Options) (*iso8583.Message, error) {
	return NewPurchaseMessageKSN(spec, p, stan, nil, now, opts)
}

// NewPurchaseMessageKSN is NewPurchaseMessage for DUKPT terminals: with a
// PIN and opts.DUKPTBDK set, DE 52 is encrypted under the PIN key of the
// 10-byte ksn (see DemoKSN and Client.NextKSN) and DE 62 carries the KSN as
// 20 upper-case hex characters. Without DUKPT or without a PIN, ksn is
// ignored.
func NewPurchaseMessageKSN(spec *iso8583.MessageSpec, p Purchase, stan string, ksn []byte, now time.Time, opts Options) (*iso8583.Message, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	if len(stan) < 1 || len(stan) > 6 || !isDigits(stan) || strings.Trim(stan, "0") == "" {
		return nil, fmt.Errorf("%w: STAN %q is not 000001-999999", ErrInvalidPurchase, stan)
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPurchase, err)
	}
	msg := iso8583.NewMessage(spec)
	msg.MTI(specs.MTIFinancialRequest)
	fields := []struct {
		id  int
		val string
	}{
		{specs.PAN, p.PAN},
		{specs.ProcessingCode, ProcessingPurchase},
		{specs.Amount, fmt.Sprintf("%012d", p.Amount)},
		{specs.TransmissionDateTime, now.UTC().Format("0102150405")},
		{specs.STAN, NormalizeSTAN(stan)},
		{specs.LocalTime, now.Format("150405")},
		{specs.LocalDate, now.Format("0102")},
		{specs.Expiry, p.Expiry},
		{specs.POSEntryMode, p.POSEntryMode},
		{specs.TerminalID, opts.TerminalID},
		{specs.MerchantID, opts.MerchantID},
		{specs.Currency, p.Currency},
	}
	for _, f := range fields {
		if f.val == "" {
			continue // only the optional expiry can be empty here
		}
		if err := msg.Field(f.id, f.val); err != nil {
			// moov's error names the field, not its value; DE 2 stays private.
			return nil, fmt.Errorf("building 0200 STAN %s: setting DE %d: %w", stan, f.id, err)
		}
	}
	if p.PIN != "" {
		if err := setPINBlock(msg, p, ksn, opts); err != nil {
			return nil, fmt.Errorf("building 0200 STAN %s: %w", stan, err)
		}
	}
	return msg, nil
}

// Result is the switch's answer to a purchase.
type Result struct {
	MTI          string
	ResponseCode string
	ApprovalCode string
	RRN          string
	// STAN is six zero-padded digits.
	STAN      string
	MaskedPAN string
	Latency   time.Duration
	// Message is the whole response; it may carry the full PAN, so never
	// print it except through pan.Describe.
	Message *iso8583.Message
}

func newResult(resp *iso8583.Message, maskedPAN string, latency time.Duration) Result {
	get := func(id int) string {
		s, _ := resp.GetString(id)
		return s
	}
	mti, _ := resp.GetMTI()
	return Result{
		MTI:          mti,
		ResponseCode: get(specs.ResponseCode),
		ApprovalCode: get(specs.ApprovalCode),
		RRN:          get(specs.RRN),
		STAN:         NormalizeSTAN(get(specs.STAN)),
		MaskedPAN:    maskedPAN,
		Latency:      latency,
		Message:      resp,
	}
}

// Approved reports whether DE 39 is 00.
func (r Result) Approved() bool { return codes.Code(r.ResponseCode).IsApproved() }

// Meaning returns the response code's meaning from the codes table.
func (r Result) Meaning() string { return ResponseMeaning(r.ResponseCode) }

// String is a one-line summary with the PAN masked.
func (r Result) String() string {
	return fmt.Sprintf("%s rc=%s (%s) auth=%s rrn=%s stan=%s pan=%s latency=%s",
		orDash(r.MTI), orDash(r.ResponseCode), r.Meaning(), orDash(r.ApprovalCode), orDash(r.RRN),
		orDash(r.STAN), orDash(r.MaskedPAN), r.Latency.Round(time.Microsecond))
}

// ResponseMeaning returns the meaning of a DE 39 code from the codes table.
func ResponseMeaning(rc string) string {
	if rc == "" {
		return "no response code"
	}
	if info, ok := codes.Lookup(codes.Code(rc)); ok {
		return info.Meaning
	}
	return "unknown response code"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
