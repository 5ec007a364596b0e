package scenario

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// build turns a Send into the request message. DE 7, 11 and 41 are left to
// the POS when not given.
func (sr *scenarioRun) build(p *terminal.POS, s *Send) (*iso8583.Message, error) {
	spec := p.Spec()
	mti, err := sr.expand(s.MTI)
	if err != nil {
		return nil, err
	}
	if mti == "" {
		mti = specs.MTIFinancialRequest
	}
	if !validMTI(mti) {
		return nil, fmt.Errorf("mti %q is not 4 digits", mti)
	}
	explicit := map[int]*string{}
	for _, f := range s.Fields {
		if f.Unset {
			explicit[f.ID] = nil
			continue
		}
		v, err := sr.expand(f.Value)
		if err != nil {
			return nil, fmt.Errorf("DE %d: %w", f.ID, err)
		}
		explicit[f.ID] = &v
	}
	vals := map[int]string{}
	if s.Ref != "" {
		if err := sr.fromRef(p, s, mti, explicit, vals); err != nil {
			return nil, err
		}
	}
	if s.Totals == "batch" {
		for id, v := range p.Batch().Fields() {
			vals[id] = v
		}
	}
	sr.defaults(p, mti, vals)
	for id, v := range explicit {
		if v == nil {
			delete(vals, id)
		} else {
			vals[id] = *v
		}
	}
	if s.PIN != "" {
		pin, err := sr.expand(s.PIN)
		if err != nil {
			return nil, fmt.Errorf("pin: %w", err)
		}
		card, err := sr.expand(s.PINPAN)
		if err != nil {
			return nil, fmt.Errorf("pin_pan: %w", err)
		}
		if card == "" {
			card = vals[specs.PAN]
		}
		block, ksn, err := p.PINBlock(pin, card)
		if err != nil {
			return nil, fmt.Errorf("PIN block: %w", err)
		}
		vals[specs.PINBlock] = strings.ToUpper(hex.EncodeToString(block))
		if _, given := explicit[terminal.KSNField]; ksn != "" && !given {
			vals[terminal.KSNField] = ksn
		}
	}
	msg := iso8583.NewMessage(spec)
	msg.MTI(mti)
	for _, id := range slices.Sorted(maps.Keys(vals)) {
		if err := setField(msg, id, vals[id]); err != nil {
			return nil, err
		}
	}
	if _, err := msg.Pack(); err != nil {
		return nil, fmt.Errorf("the request does not pack: %s", pan.Scrub(err.Error()))
	}
	return msg, nil
}

// fromRef fills a cancel's or a refund's fields from the step it names.
func (sr *scenarioRun) fromRef(p *terminal.POS, s *Send, mti string, explicit map[int]*string, vals map[int]string) error {
	ref, err := sr.expand(s.Ref)
	if err != nil {
		return fmt.Errorf("ref: %w", err)
	}
	orig := sr.steps[ref]
	if orig == nil || orig.Request == nil {
		return fmt.Errorf("ref: step %q has not sent anything", ref)
	}
	copyFrom := func(m *iso8583.Message, ids ...int) {
		for _, id := range ids {
			if m != nil && m.GetField(id) != nil {
				vals[id], _ = m.GetString(id)
			}
		}
	}
	proc := ""
	if v := explicit[specs.ProcessingCode]; v != nil {
		proc = *v
	}
	switch {
	case strings.HasPrefix(mti, "04"):
		rev, err := terminal.NewReversalMessage(orig.Request, orig.Response, p.NextSTAN(), time.Now())
		if err != nil {
			return fmt.Errorf("ref %s: %w", ref, err)
		}
		for id := range rev.GetFields() {
			if id > 1 && id != specs.STAN && id != specs.TransmissionDateTime {
				copyFrom(rev, id)
			}
		}
		if s.Remaining != "" {
			r, err := sr.expand(s.Remaining)
			if err != nil {
				return fmt.Errorf("remaining: %w", err)
			}
			n, err := strconv.ParseInt(strings.TrimSpace(r), 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("remaining %q is not an amount", r)
			}
			vals[specs.ReplacementAmounts] = terminal.ReplacementAmount(n)
		}
	case (strings.HasPrefix(mti, "01") || strings.HasPrefix(mti, "02")) && strings.HasPrefix(proc, "20"):
		if orig.Response == nil {
			return fmt.Errorf("ref: step %q got no response to take DE 37 and 38 from", ref)
		}
		copyFrom(orig.Request, specs.PAN, specs.Amount, specs.Expiry, specs.POSEntryMode, specs.Currency)
		copyFrom(orig.Response, specs.RRN, specs.ApprovalCode)
	default:
		return fmt.Errorf("ref works for a cancel (MTI 04xx) or a refund (processing code 20xxxx), not MTI %s processing code %q", mti, proc)
	}
	return nil
}

// defaults fills what a terminal always sends and the step left out.
func (sr *scenarioRun) defaults(p *terminal.POS, mti string, vals map[int]string) {
	now := time.Now()
	d := map[int]string{}
	class := mti[:2]
	switch class {
	case "01", "02":
		d[specs.ProcessingCode] = terminal.ProcessingPurchase
		d[specs.POSEntryMode] = terminal.DefaultPOSEntryMode
		d[specs.Currency] = terminal.DefaultCurrency
	case "08":
		d[specs.NetworkMgmtCode] = specs.NetMgmtEcho
	}
	if class == "01" || class == "02" || class == "04" {
		d[specs.LocalTime] = now.Format("150405")
		d[specs.LocalDate] = now.Format("0102")
	}
	if class != "08" {
		d[specs.MerchantID] = p.MerchantID()
	}
	spec := p.Spec()
	for id, v := range d {
		if _, has := vals[id]; has {
			continue
		}
		if _, defined := spec.Fields[id]; defined {
			vals[id] = v
		}
	}
}

// setField sets one field from its text: hex for binary fields, numeric
// fixed-length fields zero-filled on the left to full width.
func setField(msg *iso8583.Message, id int, v string) error {
	f, ok := msg.GetSpec().Fields[id]
	if !ok {
		return fmt.Errorf("DE %d is not defined in the dialect", id)
	}
	if _, bin := f.(*field.Binary); bin {
		b, err := hex.DecodeString(v)
		if err != nil {
			return fmt.Errorf("DE %d: binary fields are given in hex", id)
		}
		if err := msg.BinaryField(id, b); err != nil {
			return fmt.Errorf("DE %d: %v", id, pan.Scrub(err.Error()))
		}
		return nil
	}
	if s := f.Spec(); s != nil && s.Pref != nil && strings.HasSuffix(s.Pref.Inspect(), ".Fixed") &&
		s.Pad == nil && len(v) < s.Length && v != "" && allDigits(v) {
		v = strings.Repeat("0", s.Length-len(v)) + v
	}
	if err := msg.Field(id, v); err != nil {
		return fmt.Errorf("DE %d: %v", id, pan.Scrub(err.Error()))
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
