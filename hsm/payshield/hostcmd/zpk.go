package hostcmd

import "fmt"

// ImportZPK is FA, "Translate a ZPK from ZMK to LMK Encryption": a zone
// PIN key another party sent under a ZMK is decrypted and re-encrypted
// under the LMK inside the HSM, which answers (FB) with the key under the
// LMK and its check value. It is the command payShield sites use to take
// an issuer's or network's new ZPK; A6 (import key) is the general form
// for key blocks under a ZMK. Reference: payShield 10K Legacy Host
// Commands (Thales, PUGD0538-002), section "Translate a ZPK from ZMK to
// LMK Encryption" (FA/FB): ZMK under the LMK, ZPK under the ZMK (16H or
// 1A+32H or 1A+48H), optional Atalla variant, ';' with a reserved '0',
// the LMK key scheme and the KCV type ('1': 6H); error 01 is advice only
// (the ZPK lacked odd parity, which the HSM forces on the output) and
// does not withhold the answer's fields. Under a key-block LMK the LMK key
// scheme is 'S' and the key-block fields follow after '#'.
//
// The ZPK travels in X9.17 form (TDES ECB under the ZMK, no variant):
// scheme 'X' with 32H or 'Y' with 48H.
type ImportZPK struct {
	ZMK Key
	// ZPK is the key under the ZMK with its scheme letter: "X"+32H or
	// "Y"+48H.
	ZPK          string
	KeySchemeLMK byte // 'S'
	KCVType      byte // '1': 6H
	// Key-block fields of the result: mode of use, key version and
	// exportability (the usage is P0, a ZPK's).
	ModeOfUse     byte
	Version       string
	Exportability byte
}

func (*ImportZPK) Code() string { return "FA" }

// ZPKUnderZMK is the wire form of a TDES key under a ZMK in X9.17 form.
func ZPKUnderZMK(hexKey string) (string, error) {
	switch len(hexKey) {
	case 32:
		return "X" + hexKey, nil
	case 48:
		return "Y" + hexKey, nil
	}
	return "", fmt.Errorf("hostcmd: a ZPK under a ZMK is 32 or 48 hex digits, got %d", len(hexKey))
}

func (c *ImportZPK) appendTo(w *writer) {
	w.key(c.ZMK, "ZMK")
	if n := map[byte]int{'X': 33, 'Y': 49}[firstByte(c.ZPK)]; n == 0 || len(c.ZPK) != n {
		if w.err == nil {
			w.err = fmt.Errorf("hostcmd: ZPK under ZMK must be X+32H or Y+48H")
		}
	}
	w.str(c.ZPK)
	w.str(";0")
	w.b = append(w.b, c.KeySchemeLMK, c.KCVType, '#', c.ModeOfUse)
	w.fixed(c.Version, 2, "key version")
	w.b = append(w.b, c.Exportability)
	w.str("00")
}

func (c *ImportZPK) readFrom(r *reader) {
	c.ZMK = r.key("ZMK")
	switch scheme := r.str(1, "ZPK key scheme"); scheme {
	case "X":
		c.ZPK = scheme + r.hex(32, "ZPK")
	case "Y":
		c.ZPK = scheme + r.hex(48, "ZPK")
	default:
		r.fail("ZPK key scheme must be X or Y")
	}
	if r.str(2, "delimiter") != ";0" {
		r.fail("delimiter and reserved field")
	}
	c.KeySchemeLMK = r.char("key scheme LMK")
	c.KCVType = r.char("key check value type")
	if r.str(1, "key block delimiter") != "#" {
		r.fail("key block delimiter")
	}
	c.ModeOfUse = r.char("mode of use")
	c.Version = r.digits(2, "key version")
	c.Exportability = r.char("exportability")
	if r.digits(2, "optional blocks") != "00" && r.err == nil {
		r.fail("optional blocks are not supported")
	}
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}
