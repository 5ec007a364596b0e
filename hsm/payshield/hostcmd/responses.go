package hostcmd

import (
	"fmt"
)

// Error codes the switch acts on (payShield host command reference).
const (
	OK                 = "00"
	VerificationFailed = "01" // M8: the MAC does not verify
	ParityAdvice       = "01" // FA: the ZPK lacked odd parity, forced on the output; advice only, the answer's fields follow
	SourceKeyError     = "10" // source key parity error / does not verify under the LMK
	DestKeyError       = "11" // destination key parity error (FA: the ZPK under the ZMK is all zeros)
	InputDataError     = "15" // error in input data
	PINBlockError      = "20" // PIN block does not contain valid values
	InvalidFormatCode  = "23" // invalid PIN block format code
	PINLengthError     = "24" // PIN is fewer than 4 or more than 12 digits
	KeyUsageError      = "A8" // key not permitted for this operation (emulator: key block usage)
	CommandDisabled    = "68" // command disabled or not licensed
)

// Response is an answer: the echoed header, the response code, the
// 2-character error code and the command-specific fields.
type Response struct {
	Header string
	Code   string
	Error  string
	Body   []byte
}

// EncodeResponse builds an answer message.
func EncodeResponse(r Response) []byte {
	b := make([]byte, 0, len(r.Header)+4+len(r.Body))
	b = append(b, r.Header...)
	b = append(b, r.Code...)
	b = append(b, r.Error...)
	return append(b, r.Body...)
}

// DecodeResponse splits an answer with a headerLen-character header.
func DecodeResponse(msg []byte, headerLen int) (Response, error) {
	r := &reader{b: msg}
	resp := Response{Header: string(r.take(headerLen, "header")), Code: r.str(2, "response code"), Error: r.str(2, "error code")}
	if r.err != nil {
		return Response{}, r.err
	}
	resp.Body = msg[r.pos:]
	return resp, nil
}

// DiagnosticsAnswer is ND's body: the LMK check value (16H) and the
// firmware number (9A).
type DiagnosticsAnswer struct {
	LMKCheck string
	Firmware string
}

func (a DiagnosticsAnswer) Encode() []byte { return []byte(a.LMKCheck + a.Firmware) }

func ParseDiagnostics(body []byte) (DiagnosticsAnswer, error) {
	r := &reader{b: body}
	a := DiagnosticsAnswer{LMKCheck: r.hex(16, "LMK check value"), Firmware: r.str(9, "firmware number")}
	return a, r.end()
}

// PINAnswer is the body of CB, CD and G1: the PIN length (2N), the
// destination PIN block and its format code.
type PINAnswer struct {
	PINLength int
	Block     string
	Format    string
}

func (a PINAnswer) Encode() []byte {
	return []byte(fmt.Sprintf("%02d%s%s", a.PINLength, a.Block, a.Format))
}

// ParsePINAnswer reads a PIN answer whose block is in format.
func ParsePINAnswer(body []byte, format string) (PINAnswer, error) {
	r := &reader{b: body}
	a := PINAnswer{PINLength: r.number(2, "PIN length"), Block: r.hex(blockLen(format), "PIN block"), Format: r.digits(2, "format")}
	if err := r.end(); err != nil {
		return PINAnswer{}, err
	}
	if a.Format != format {
		return PINAnswer{}, fmt.Errorf("answer in format %s, asked for %s: %w", a.Format, format, ErrSyntax)
	}
	return a, nil
}

// MACAnswer is M7's body: the MAC (16H).
type MACAnswer struct{ MAC string }

func (a MACAnswer) Encode() []byte { return []byte(a.MAC) }

func ParseMACAnswer(body []byte) (MACAnswer, error) {
	r := &reader{b: body}
	a := MACAnswer{MAC: r.hex(16, "MAC")}
	return a, r.end()
}

// KeyAnswer is the body of A1 (key under the LMK, under the ZMK in mode
// 1, KCV), A7 (key under the LMK, KCV) and BV (KCV alone).
type KeyAnswer struct {
	LMK Key    // A1, A7
	ZMK Key    // A1 mode 1
	KCV string // 6H
}

func (a KeyAnswer) Encode() []byte {
	var s string
	if a.LMK.Block != "" {
		s += a.LMK.String()
	}
	if a.ZMK.Block != "" {
		s += a.ZMK.String()
	}
	return []byte(s + a.KCV)
}

// ParseKeyAnswer reads a key answer with lmk and zmk saying which keys
// it holds.
func ParseKeyAnswer(body []byte, lmk, zmk bool) (KeyAnswer, error) {
	r := &reader{b: body}
	var a KeyAnswer
	if lmk {
		if a.LMK = r.key("key under LMK"); a.LMK.Scheme != 'S' && r.err == nil {
			r.fail("key under LMK: scheme")
		}
	}
	if zmk {
		if a.ZMK = r.key("key under ZMK"); a.ZMK.Scheme != 'R' && r.err == nil {
			r.fail("key under ZMK: scheme")
		}
	}
	a.KCV = r.hex(6, "key check value")
	return a, r.end()
}

// KeySize is the key length in bytes an A0 algorithm code names (T2, T3,
// A1, A2, A3, H3), 0 when unknown.
func KeySize(alg string) int {
	return map[string]int{"T2": 16, "T3": 24, "A1": 16, "A2": 24, "A3": 32, "H3": 32}[alg]
}

// AlgorithmCode is the A0 algorithm code for a TR-31 algorithm letter and
// key size, "" when there is none.
func AlgorithmCode(alg byte, size int) string {
	for _, c := range []string{"T2", "T3", "A1", "A2", "A3", "H3"} {
		if c[0] == alg && KeySize(c) == size {
			return c
		}
	}
	return ""
}
