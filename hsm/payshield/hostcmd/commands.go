package hostcmd

import (
	"fmt"
	"strconv"
)

// Command is one host command: its 2-letter code and its fields.
type Command interface {
	Code() string
	appendTo(w *writer)
	readFrom(r *reader)
}

// Encode builds a command message: header, code and fields.
func Encode(header string, c Command) ([]byte, error) {
	w := &writer{b: make([]byte, 0, 128)}
	w.str(header)
	w.str(c.Code())
	c.appendTo(w)
	if w.err != nil {
		return nil, fmt.Errorf("encoding %s: %w", c.Code(), w.err)
	}
	return w.b, nil
}

// newCommand returns an empty command for a code, nil when unknown.
func newCommand(code string) Command {
	switch code {
	case "NC":
		return &Diagnostics{}
	case "CA", "CC":
		return &TranslatePIN{Command: code}
	case "G0":
		return &TranslateDUKPT{}
	case "M6":
		return &GenerateMAC{}
	case "M8":
		return &VerifyMAC{}
	case "A0":
		return &GenerateKey{}
	case "A6":
		return &ImportKey{}
	case "FA":
		return &ImportZPK{}
	case "BU":
		return &KeyCheckValue{}
	}
	return nil
}

// ErrUnknownCommand is a command code this package does not know; the
// HSM answers it with the code's response and error 68 (command disabled)
// as real devices do for commands not licensed.
var ErrUnknownCommand = fmt.Errorf("hostcmd: unknown command: %w", ErrSyntax)

// DecodeCommand parses a command message with a headerLen-character
// header. It returns the header and code even when the fields do not
// parse, so that the answer can echo them.
func DecodeCommand(msg []byte, headerLen int) (header, code string, c Command, err error) {
	r := &reader{b: msg}
	header = string(r.take(headerLen, "header")) // any bytes: echoed as they came
	code = r.str(2, "command code")
	if r.err != nil {
		return header, code, nil, r.err
	}
	if c = newCommand(code); c == nil {
		return header, code, nil, fmt.Errorf("%q: %w", code, ErrUnknownCommand)
	}
	c.readFrom(r)
	if err := r.end(); err != nil {
		return header, code, nil, fmt.Errorf("decoding %s: %w", code, err)
	}
	return header, code, c, nil
}

// Diagnostics is NC: the HSM's health, its LMK check value and firmware.
type Diagnostics struct{}

func (*Diagnostics) Code() string     { return "NC" }
func (*Diagnostics) appendTo(*writer) {}
func (*Diagnostics) readFrom(*reader) {}

// PIN block format codes.
const (
	FormatISO0 = "01" // ISO 9564-1 format 0 (ANSI X9.8), 16H
	FormatISO4 = "48" // ISO 9564-1 format 4 (AES), 32H
)

// blockLen is the PIN block's hex length for a format code.
func blockLen(format string) int {
	if format == FormatISO4 {
		return 32
	}
	return 16
}

// fullPAN says whether the account number field carries the whole PAN:
// format 4 binds every digit, so when either block is format 48 the field
// is a 2-digit length and the PAN (an emulator choice; format 0 alone uses
// the reference's 12 right-most digits excluding the check digit).
func fullPAN(formats ...string) bool {
	for _, f := range formats {
		if f == FormatISO4 {
			return true
		}
	}
	return false
}

func writeAccount(w *writer, account string, full bool) {
	if full {
		w.fixed(fmt.Sprintf("%02d", len(account)), 2, "account length")
		w.str(account)
		return
	}
	w.fixed(account, 12, "account number")
}

func readAccount(r *reader, full bool) string {
	if full {
		n := r.number(2, "account length")
		if n < 12 || n > 19 {
			r.fail("account length")
		}
		return r.digits(n, "account number")
	}
	return r.digits(12, "account number")
}

// TranslatePIN is CA (from a TPK to a ZPK) or CC (from one ZPK to
// another): the PIN block is decrypted and re-encrypted inside the HSM.
type TranslatePIN struct {
	Command      string // "CA" or "CC"
	Source, Dest Key
	MaxPIN       int    // 2N, 12
	Block        string // 16H, or 32H for format 48
	SourceFormat string // 2N
	DestFormat   string // 2N
	// Account is the 12 right-most PAN digits excluding the check digit,
	// or the whole PAN when either format is 48.
	Account string
}

func (c *TranslatePIN) Code() string { return c.Command }

func (c *TranslatePIN) appendTo(w *writer) {
	w.key(c.Source, "source key")
	w.key(c.Dest, "destination key")
	w.fixed(fmt.Sprintf("%02d", c.MaxPIN), 2, "maximum PIN length")
	w.fixed(c.Block, blockLen(c.SourceFormat), "PIN block")
	w.fixed(c.SourceFormat, 2, "source format")
	w.fixed(c.DestFormat, 2, "destination format")
	writeAccount(w, c.Account, fullPAN(c.SourceFormat, c.DestFormat))
}

func (c *TranslatePIN) readFrom(r *reader) {
	c.Source = r.key("source key")
	c.Dest = r.key("destination key")
	c.MaxPIN = r.number(2, "maximum PIN length")
	// The block's length depends on its format, which follows it: read
	// it as 16H, and as 32H only when that leaves a format 48.
	for _, n := range []int{16, 32} {
		try := *r
		try.readBlock(c, n)
		if try.err == nil && try.end() == nil && (n == 32) == (c.SourceFormat == FormatISO4) {
			*r = try
			return
		}
	}
	r.fail("PIN block, formats and account number")
}

// readBlock reads a TranslatePIN's block of n hex characters, formats and
// account number.
func (r *reader) readBlock(c *TranslatePIN, n int) {
	c.Block = r.hex(n, "PIN block")
	c.SourceFormat = r.digits(2, "source format")
	c.DestFormat = r.digits(2, "destination format")
	c.Account = readAccount(r, fullPAN(c.SourceFormat, c.DestFormat))
}

// TranslateDUKPT is G0: a PIN block from a terminal under its TDES DUKPT
// key (ANSI X9.24-1 PIN key derived from the BDK and the KSN) to a ZPK.
type TranslateDUKPT struct {
	BDK, ZPK      Key
	KSNDescriptor string // 3H, e.g. "A05"
	KSN           string // 20H
	Block         string // 16H
	SourceFormat  string // 2N, "01"
	DestFormat    string // 2N
	Account       string // as in TranslatePIN
}

func (*TranslateDUKPT) Code() string { return "G0" }

func (c *TranslateDUKPT) appendTo(w *writer) {
	w.key(c.BDK, "BDK")
	w.key(c.ZPK, "ZPK")
	w.fixed(c.KSNDescriptor, 3, "KSN descriptor")
	w.fixed(c.KSN, 20, "KSN")
	w.fixed(c.Block, 16, "PIN block")
	w.fixed(c.SourceFormat, 2, "source format")
	w.fixed(c.DestFormat, 2, "destination format")
	writeAccount(w, c.Account, fullPAN(c.DestFormat))
}

func (c *TranslateDUKPT) readFrom(r *reader) {
	c.BDK = r.key("BDK")
	c.ZPK = r.key("ZPK")
	c.KSNDescriptor = r.hex(3, "KSN descriptor")
	c.KSN = r.hex(20, "KSN")
	c.Block = r.hex(16, "PIN block")
	c.SourceFormat = r.digits(2, "source format")
	c.DestFormat = r.digits(2, "destination format")
	c.Account = readAccount(r, fullPAN(c.DestFormat))
}

// MAC algorithms and padding of M6/M8.
const (
	MACAlgISO9797Alg3 = '3' // ISO 9797-1 MAC algorithm 3 (X9.19 retail MAC), TDES
	MACAlgCMAC        = '6' // AES-CMAC (NIST SP 800-38B)
	PadNone           = '0'
	PadMethod1        = '1' // ISO 9797-1 padding method 1 (zeros)
)

// GenerateMAC is M6: a MAC over a binary message of up to 0xFFFF bytes in
// one block (mode flag 0, input format flag 0 = binary, MAC size 1 = 16H).
type GenerateMAC struct {
	ModeFlag    byte   // '0': only block
	InputFormat byte   // '0': binary
	MACSize     byte   // '1': 16H (8 bytes)
	Algorithm   byte   // MACAlgISO9797Alg3 or MACAlgCMAC
	Padding     byte   // PadMethod1 (retail) or PadNone (CMAC pads itself)
	KeyType     string // 3H, "FFF": the key block says
	Key         Key
	Message     []byte
}

func (*GenerateMAC) Code() string { return "M6" }

func (c *GenerateMAC) appendTo(w *writer) {
	w.b = append(w.b, c.ModeFlag, c.InputFormat, c.MACSize, c.Algorithm, c.Padding)
	w.fixed(c.KeyType, 3, "key type")
	w.key(c.Key, "MAC key")
	if len(c.Message) > 0xFFFF && w.err == nil {
		w.err = fmt.Errorf("hostcmd: message of %d bytes is too long", len(c.Message))
	}
	w.str(fmt.Sprintf("%04X", len(c.Message)))
	w.b = append(w.b, c.Message...)
}

func (c *GenerateMAC) readFrom(r *reader) {
	flags := r.digits(5, "flags")
	if r.err == nil {
		c.ModeFlag, c.InputFormat, c.MACSize, c.Algorithm, c.Padding = flags[0], flags[1], flags[2], flags[3], flags[4]
	}
	c.KeyType = r.hex(3, "key type")
	c.Key = r.key("MAC key")
	n, err := strconv.ParseUint(r.hex(4, "message length"), 16, 16)
	if err != nil {
		r.fail("message length")
		return
	}
	c.Message = append([]byte(nil), r.take(int(n), "message")...)
}

// VerifyMAC is M8: GenerateMAC's fields and the MAC to check (16H);
// error 01 when it does not verify.
type VerifyMAC struct {
	GenerateMAC
	MAC string
}

func (*VerifyMAC) Code() string { return "M8" }

func (c *VerifyMAC) appendTo(w *writer) {
	c.GenerateMAC.appendTo(w)
	w.fixed(c.MAC, 16, "MAC")
}

func (c *VerifyMAC) readFrom(r *reader) {
	c.GenerateMAC.readFrom(r)
	c.MAC = r.hex(16, "MAC")
}

// KeyAttributes are a generated key block's header fields, given after
// '#' in A0 (key-block LMK): usage (2A), algorithm and length (2A: T2, T3,
// A1, A2, A3, H3 = HMAC 32 bytes), mode of use, version, exportability
// and the number of optional blocks ("00").
type KeyAttributes struct {
	Usage         string
	Algorithm     string
	ModeOfUse     byte
	Version       string
	Exportability byte
}

// GenerateKey is A0: generate a random key and return it under the LMK
// and, in mode '1', also under a ZMK for the other party.
type GenerateKey struct {
	Mode    byte   // '0' generate, '1' generate and export under ZMK
	KeyType string // 3H, "FFF"
	Scheme  byte   // 'S': key block under the LMK
	ZMK     Key    // mode '1' only: after ';', the ZMK/TMK flag '0'
	Attr    KeyAttributes
}

func (*GenerateKey) Code() string { return "A0" }

func (c *GenerateKey) appendTo(w *writer) {
	w.b = append(w.b, c.Mode)
	w.fixed(c.KeyType, 3, "key type")
	w.b = append(w.b, c.Scheme)
	if c.Mode == '1' {
		w.str(";0")
		w.key(c.ZMK, "ZMK")
		w.str("R")
	}
	w.str("#")
	w.fixed(c.Attr.Usage, 2, "key usage")
	w.fixed(c.Attr.Algorithm, 2, "algorithm")
	w.b = append(w.b, c.Attr.ModeOfUse)
	w.fixed(c.Attr.Version, 2, "key version")
	w.b = append(w.b, c.Attr.Exportability)
	w.str("00")
}

func (c *GenerateKey) readFrom(r *reader) {
	c.Mode = r.char("mode")
	c.KeyType = r.hex(3, "key type")
	c.Scheme = r.char("key scheme")
	if c.Mode == '1' {
		if r.str(2, "ZMK flag") != ";0" {
			r.fail("ZMK flag")
		}
		c.ZMK = r.key("ZMK")
		if r.str(1, "ZMK key scheme") != "R" {
			r.fail("ZMK key scheme")
		}
	}
	if r.str(1, "key block delimiter") != "#" {
		r.fail("key block delimiter")
	}
	c.Attr.Usage = r.str(2, "key usage")
	c.Attr.Algorithm = r.str(2, "algorithm")
	c.Attr.ModeOfUse = r.char("mode of use")
	c.Attr.Version = r.digits(2, "key version")
	c.Attr.Exportability = r.char("exportability")
	if r.digits(2, "optional blocks") != "00" && r.err == nil {
		r.fail("optional blocks are not supported")
	}
}

// ImportKey is A6: a key block under a ZMK (scheme 'R') re-encrypted
// under the LMK (scheme 'S').
type ImportKey struct {
	KeyType string // 3H, "FFF"
	ZMK     Key
	Key     Key
	Scheme  byte // 'S'
}

func (*ImportKey) Code() string { return "A6" }

func (c *ImportKey) appendTo(w *writer) {
	w.fixed(c.KeyType, 3, "key type")
	w.key(c.ZMK, "ZMK")
	w.key(c.Key, "key")
	w.b = append(w.b, c.Scheme)
}

func (c *ImportKey) readFrom(r *reader) {
	c.KeyType = r.hex(3, "key type")
	c.ZMK = r.key("ZMK")
	c.Key = r.key("key")
	c.Scheme = r.char("key scheme")
}

// KeyCheckValue is BU: the check value of a key under the LMK.
type KeyCheckValue struct {
	KeyTypeCode string // 2H, "FF": the key block says
	LengthFlag  byte   // 'F': the key block says
	Key         Key
}

func (*KeyCheckValue) Code() string { return "BU" }

func (c *KeyCheckValue) appendTo(w *writer) {
	w.fixed(c.KeyTypeCode, 2, "key type code")
	w.b = append(w.b, c.LengthFlag)
	w.key(c.Key, "key")
}

func (c *KeyCheckValue) readFrom(r *reader) {
	c.KeyTypeCode = r.hex(2, "key type code")
	c.LengthFlag = r.char("key length flag")
	c.Key = r.key("key")
}
