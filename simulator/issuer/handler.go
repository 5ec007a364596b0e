package issuer

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// Processing codes (DE 3, first two digits: transaction type).
const (
	txnPurchase = "00"
	txnRefund   = "20"
)

// Response codes the issuer produces beyond those the switch produces.
const (
	insufficientFunds codes.Code = "51"
	expiredCard       codes.Code = "54"
)

// echoed are the request fields every response carries back unchanged
// (when present). The switch matches responses by DE 11.
var echoed = []int{
	specs.PAN, specs.ProcessingCode, specs.Amount, specs.TransmissionDateTime,
	specs.STAN, specs.LocalTime, specs.LocalDate, specs.RRN,
	specs.TerminalID, specs.MerchantID, specs.Currency,
}

// Received is one request as the issuer decoded it.
type Received struct {
	MTI string
	// STAN is DE 11 as on the wire ("000123"), like Fields[11].
	STAN string
	// Fields maps each data element present (bitmap excluded) to its value:
	// numeric fixed-length fields at full width with their leading zeros as
	// on the wire (DE 3 "000000", DE 4 "000000015000"), text fields without
	// pad spaces, binary fields as upper-case hex.
	Fields map[int]string
	// At is when the request was decoded.
	At time.Time
}

// ReceivedLimit bounds the request log; past it the oldest entries go.
const ReceivedLimit = 10_000

func (r Received) clone() Received {
	f := make(map[int]string, len(r.Fields))
	for k, v := range r.Fields {
		f[k] = v
	}
	r.Fields = f
	return r
}

// reply is process's decision on one request.
type reply struct {
	// resp is the response to send (nil: none).
	resp *iso8583.Message
	// delay is how long to wait before sending it: a latency draw plus
	// Fault.LateBy (when drawn) for authorisation, financial and reversal
	// responses; network management is answered at once so that a slow
	// issuer stays signed on.
	delay time.Duration
	// garbage, when set, is the whole frame (length header and random
	// bytes) sent instead of resp (Fault.GarbagePercent).
	garbage []byte
	// disconnect closes the connection instead of answering
	// (Fault.Disconnect).
	disconnect bool
}

// process records a decoded request, applies it and decides the answer. s
// is nil when there is no connection (fuzzing).
func (is *Issuer) process(req *iso8583.Message, s *session) reply {
	rec := is.record(req)
	mti := rec.MTI
	if !specs.IsRequest(mti) {
		is.log.Debug("ignoring a message that is not a request", zap.String("mti", mti), zap.String("stan", rec.STAN))
		return reply{}
	}
	respMTI, err := specs.ResponseMTI(mti)
	if err != nil {
		return reply{}
	}
	var rc codes.Code
	var approval string
	var out reply
	var wrongSTAN bool
	if mti == specs.MTINetworkMgmt {
		rc = is.networkManagement(rec, s)
	} else {
		financial := mti == specs.MTIAuthRequest || mti == specs.MTIFinancialRequest
		dec := is.faultFor(financial)
		unanswered, disconnect := dec.unanswered, dec.disconnect
		if unanswered && !disconnect && !dec.fault.ChargeWhenSilent {
			is.log.Debug("silent: request left unanswered and not applied", zap.String("mti", mti), zap.String("stan", rec.STAN))
			return reply{}
		}
		switch {
		case financial:
			rc, approval = is.authorise(req, rec)
		case isReversal(mti):
			rc = is.reverse(rec)
		default:
			// Advices (0220) and reconciliation (0500) are not
			// implemented.
			rc = codes.InvalidTxn
		}
		out.delay = is.sampleLatency() + dec.late
		if disconnect {
			is.log.Info("fault: dropping the link before answering",
				zap.String("mti", mti), zap.String("stan", rec.STAN), zap.String("response_code", rc.String()))
			return reply{disconnect: true}
		}
		if unanswered {
			is.log.Debug("silent: request applied, answer lost",
				zap.String("mti", mti), zap.String("stan", rec.STAN), zap.String("response_code", rc.String()))
			return reply{}
		}
		if dec.garbage {
			out.garbage = is.garbageFrame()
		}
		wrongSTAN = dec.wrongSTAN
	}

	resp := iso8583.NewMessage(is.spec)
	resp.MTI(respMTI)
	for _, id := range echoed {
		is.echo(req, resp, id)
	}
	switch {
	case mti == specs.MTINetworkMgmt:
		is.echo(req, resp, specs.NetworkMgmtCode)
	case isReversal(mti):
		is.echo(req, resp, specs.OriginalData)
		is.echo(req, resp, specs.ReplacementAmounts)
	case mti == specs.MTIFinancialRequest:
		is.echo(req, resp, specs.OriginalData) // a refund by reference
	}
	if approval != "" {
		is.setField(resp, specs.ApprovalCode, approval)
	}
	is.setField(resp, specs.ResponseCode, rc.String())
	answered := "answered"
	switch {
	case out.garbage != nil:
		answered = "fault: answered with garbage bytes"
	case wrongSTAN:
		is.setField(resp, specs.STAN, is.otherSTAN(rec.STAN))
		answered = "fault: answered with a wrong STAN"
	}
	is.log.Debug(answered,
		zap.String("mti", mti), zap.String("stan", rec.STAN),
		zap.String("pan", pan.Mask(rec.Fields[specs.PAN])),
		zap.String("amount", rec.Fields[specs.Amount]),
		zap.String("response_code", rc.String()), zap.Duration("delay", out.delay))
	out.resp = resp
	return out
}

// networkManagement answers 0800 by its DE 70 code.
func (is *Issuer) networkManagement(rec Received, s *session) codes.Code {
	code, ok := rec.Fields[specs.NetworkMgmtCode]
	if !ok {
		return codes.InvalidTxn
	}
	switch leftPad(code, 3) {
	case specs.NetMgmtSignOn:
		is.signOns.Add(1)
		if s != nil {
			s.signedOn.Store(true)
			is.log.Info("link signed on", zap.Uint64("conn", s.id), zap.String("remote", s.remote))
		}
	case specs.NetMgmtSignOff:
		if s != nil {
			s.signedOn.Store(false)
			is.log.Info("link signed off", zap.Uint64("conn", s.id), zap.String("remote", s.remote))
		}
	case specs.NetMgmtEcho:
	case specs.NetMgmtKeyChange:
		return is.keyRequest()
	default:
		return codes.InvalidTxn
	}
	return codes.Approved
}

// authorise decides a 0100 authorisation or 0200 purchase or refund and
// counts the decision.
func (is *Issuer) authorise(req *iso8583.Message, rec Received) (codes.Code, string) {
	rc, approval := is.decide(req, rec)
	if rc != codes.Approved {
		is.stats.declined.Add(1)
	}
	return rc, approval
}

// decide is authorise without the counting. Purchases (DE 3 00xxxx):
// card, expiry, PIN (when DE 52 is present), amount, then funds; an
// approval reduces the account's open-to-buy and is recorded for
// reversals and refunds by reference. Refunds (20xxxx, 0200 only): card,
// PIN when present, amount, then Issuer.refund: a standalone refund (no
// DE 90) credits DE 4, a refund by reference (DE 90) credits what remains
// of the sale it names; each at most once (the card's expiry is not
// checked: refunds reach expired cards too).
func (is *Issuer) decide(req *iso8583.Message, rec Received) (codes.Code, string) {
	pc, ok := rec.Fields[specs.ProcessingCode]
	if !ok {
		return codes.InvalidTxn, ""
	}
	txn := leftPad(pc, 6)[:2]
	refund := txn == txnRefund && rec.MTI == specs.MTIFinancialRequest
	if txn != txnPurchase && !refund {
		return codes.InvalidTxn, ""
	}
	card, _ := req.GetString(specs.PAN)
	if !pan.Luhn(card) || !is.cfg.owns(card) {
		return codes.InvalidCard, ""
	}
	if exp, ok := rec.Fields[specs.Expiry]; ok && !refund && expired(exp, is.now()) {
		return expiredCard, ""
	}
	if req.GetField(specs.PINBlock) != nil && !is.pinMatches(req, card) {
		return codes.IncorrectPIN, ""
	}
	amount, ok := parseAmount(rec.Fields[specs.Amount])
	if !ok {
		return codes.InvalidAmount, ""
	}
	if refund {
		return is.refund(rec, card, amount)
	}
	a, ok := is.ledger.approve(Approval{
		MTI:                  rec.MTI,
		STAN:                 leftPad(rec.STAN, 6),
		TransmissionDateTime: leftPad(rec.Fields[specs.TransmissionDateTime], 10),
		RRN:                  strings.TrimSpace(rec.Fields[specs.RRN]),
		PAN:                  card,
		Amount:               amount,
		At:                   is.now(),
	}, is.nextApprovalCode)
	if !ok {
		return insufficientFunds, ""
	}
	is.stats.approved.Add(1)
	return codes.Approved, a.ApprovalCode
}

// pinMatches decrypts DE 52 (ISO 9564 format 0 under the zone PIN key,
// bound to the card number in DE 2: the switch translates PIN blocks to the
// real PAN) and compares the PIN with the account's. A block that does not
// decode counts as a wrong PIN. Neither the PIN nor the block is logged.
func (is *Issuer) pinMatches(req *iso8583.Message, card string) bool {
	block, err := req.GetBytes(specs.PINBlock)
	if err != nil {
		return false
	}
	got, err := paycrypto.DecryptISO0(*is.zpk.Load(), block, card)
	if err != nil {
		is.log.Debug("PIN block does not decode", zap.String("pan", pan.Mask(card)))
		return false
	}
	want := is.cfg.pinFor(card)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// expired reports whether a YYMM expiry date lies before now's month. An
// expiry that is not a valid YYMM counts as expired (the card cannot be
// valid).
func expired(yymm string, now time.Time) bool {
	yymm = leftPad(yymm, 4)
	if len(yymm) != 4 || !allDigits(yymm) {
		return true
	}
	yy, _ := strconv.Atoi(yymm[:2])
	mm, _ := strconv.Atoi(yymm[2:])
	if mm < 1 || mm > 12 {
		return true
	}
	exp := (2000+yy)*12 + mm - 1
	cur := now.Year()*12 + int(now.Month()) - 1
	return exp < cur
}

// parseAmount reads DE 4 (minor units; KRW has none): digits only, above
// zero.
func parseAmount(s string) (int64, bool) {
	if !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// nextApprovalCode returns a 6-digit approval code, never 000000.
func (is *Issuer) nextApprovalCode() string {
	n := is.approvals.Add(1)
	return fmt.Sprintf("%06d", (n-1)%999_999+1)
}

// echo copies field id from req to resp when it is present.
func (is *Issuer) echo(req, resp *iso8583.Message, id int) {
	f := req.GetField(id)
	if f == nil {
		return
	}
	b, err := f.Bytes()
	if err != nil {
		is.log.Warn("cannot read field to echo", zap.Int("field", id), zap.Error(err))
		return
	}
	if err := resp.BinaryField(id, b); err != nil {
		is.log.Warn("cannot echo field", zap.Int("field", id), zap.Error(err))
	}
}

func (is *Issuer) setField(resp *iso8583.Message, id int, v string) {
	if err := resp.Field(id, v); err != nil {
		is.log.Error("cannot set response field", zap.Int("field", id), zap.Error(err))
	}
}

// record appends the request to the received log and returns the entry.
func (is *Issuer) record(req *iso8583.Message) Received {
	mti, _ := req.GetMTI()
	rec := Received{MTI: mti, Fields: map[int]string{}, At: time.Now()}
	for id, f := range req.GetFields() {
		if id < 2 {
			continue // MTI and bitmap
		}
		rec.Fields[id] = wireValue(f)
	}
	rec.STAN = rec.Fields[specs.STAN]

	is.recMu.Lock()
	if len(is.received) >= ReceivedLimit {
		n := copy(is.received, is.received[len(is.received)-ReceivedLimit/2:])
		clear(is.received[n:])
		is.received = is.received[:n]
	}
	is.received = append(is.received, rec)
	is.recMu.Unlock()
	return rec
}

// wireValue renders a field as a string: numeric fixed-length fields
// (zero-padded on the left) at full width, binary fields as hex.
func wireValue(f field.Field) string {
	v, err := f.String()
	if err != nil {
		return ""
	}
	sp := f.Spec()
	if _, isString := f.(*field.String); !isString || sp == nil || sp.Pad == nil || sp.Pref == nil {
		return v
	}
	if !strings.HasSuffix(sp.Pref.Inspect(), ".Fixed") || string(sp.Pad.Inspect()) != "0" {
		return v
	}
	// Left or right padder? Only left zero-padding is significant.
	if probe := sp.Pad.Pad([]byte("1"), 2); string(probe) != "01" {
		return v
	}
	return leftPad(v, sp.Length)
}

// leftPad pads s on the left with zeros to n characters.
func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}
