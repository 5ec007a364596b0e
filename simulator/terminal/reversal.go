package terminal

import (
	"fmt"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

// originalCopied are the fields a reversal repeats from its original.
var originalCopied = []int{specs.PAN, specs.ProcessingCode, specs.Amount, specs.Expiry, specs.POSEntryMode,
	32, 33, specs.TerminalID, specs.MerchantID, specs.Currency}

// OriginalData returns DE 90 naming orig: its MTI, STAN and DE 7, then the
// acquiring and forwarding institution IDs (DE 32/33 right-justified in 11
// zero-filled digits, zeros when absent): 42 digits.
func OriginalData(orig *iso8583.Message) (string, error) {
	mti, _ := orig.GetMTI()
	stan, _ := orig.GetString(specs.STAN)
	de7, _ := orig.GetString(specs.TransmissionDateTime)
	if !specs.ValidMTI(mti) || len(NormalizeSTAN(stan)) != 6 || len(de7) != 10 {
		return "", fmt.Errorf("original lacks an MTI, STAN or DE 7 to name it in DE 90")
	}
	inst := func(id int) string {
		v, _ := orig.GetString(id)
		if len(v) > 11 || !isDigits(v) {
			return strings.Repeat("0", 11)
		}
		return strings.Repeat("0", 11-len(v)) + v
	}
	return mti + NormalizeSTAN(stan) + de7 + inst(32) + inst(33), nil
}

// NewReversalMessage builds a 0400 naming orig in DE 90: DE 2, 3, 4, 14,
// 22, 32, 33, 41, 42 and 49 repeated from orig, DE 37 and 38 from
// origResp when given (a merchant cancel of an answered sale; nil for a
// net cancel), a new STAN, and DE 7, 12 and 13 from now. No PIN block,
// track or MAC is copied. Set DE 95 (SetReplacementAmount) for a partial
// cancel.
func NewReversalMessage(orig, origResp *iso8583.Message, stan string, now time.Time) (*iso8583.Message, error) {
	de90, err := OriginalData(orig)
	if err != nil {
		return nil, err
	}
	spec := orig.GetSpec()
	m := iso8583.NewMessage(spec)
	m.MTI(specs.MTIReversal)
	set := func(id int, v string) error {
		if _, ok := spec.Fields[id]; !ok || v == "" {
			return nil
		}
		if err := m.Field(id, v); err != nil {
			return fmt.Errorf("building 0400: setting DE %d: %w", id, err)
		}
		return nil
	}
	for _, id := range originalCopied {
		v, _ := orig.GetString(id)
		if err := set(id, v); err != nil {
			return nil, err
		}
	}
	if origResp != nil {
		for _, id := range []int{specs.RRN, specs.ApprovalCode} {
			v, _ := origResp.GetString(id)
			if err := set(id, v); err != nil {
				return nil, err
			}
		}
	}
	for id, v := range map[int]string{
		specs.STAN:                 NormalizeSTAN(stan),
		specs.TransmissionDateTime: now.UTC().Format("0102150405"),
		specs.LocalTime:            now.Format("150405"),
		specs.LocalDate:            now.Format("0102"),
		specs.OriginalData:         de90,
	} {
		if err := set(id, v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ReplacementAmount returns DE 95 for a partial cancel: the actual
// transaction amount left after it (n 12), then zero settlement amount
// and fees (30 digits).
func ReplacementAmount(remaining int64) string {
	return fmt.Sprintf("%012d", remaining) + strings.Repeat("0", 30)
}
