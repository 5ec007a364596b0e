package hsm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// execute runs a parsed command: the error code and the answer's body.
func (s *Server) execute(cmd hostcmd.Command) (string, []byte) {
	switch c := cmd.(type) {
	case *hostcmd.Diagnostics:
		kcv, _ := paycrypto.KCV("aes", s.lmk)
		return hostcmd.OK, hostcmd.DiagnosticsAnswer{LMKCheck: strings.ToUpper(hex.EncodeToString(kcv)) + "0000000000", Firmware: "1500-SIM0"}.Encode()
	case *hostcmd.TranslatePIN:
		return s.translatePIN(c)
	case *hostcmd.TranslateDUKPT:
		return s.translateDUKPT(c)
	case *hostcmd.GenerateMAC:
		mac, code := s.mac(c)
		if code != hostcmd.OK {
			return code, nil
		}
		return hostcmd.OK, hostcmd.MACAnswer{MAC: strings.ToUpper(hex.EncodeToString(mac))}.Encode()
	case *hostcmd.VerifyMAC:
		mac, code := s.mac(&c.GenerateMAC)
		if code != hostcmd.OK {
			return code, nil
		}
		if !hmac.Equal([]byte(strings.ToUpper(hex.EncodeToString(mac))), []byte(c.MAC)) {
			return hostcmd.VerificationFailed, nil
		}
		return hostcmd.OK, nil
	case *hostcmd.GenerateKey:
		return s.generateKey(c)
	case *hostcmd.ImportKey:
		return s.importKey(c)
	case *hostcmd.ImportZPK:
		return s.importZPK(c)
	case *hostcmd.KeyCheckValue:
		h, key, code := s.unwrap(c.Key, hostcmd.SourceKeyError)
		if code != hostcmd.OK {
			return code, nil
		}
		defer clear(key)
		kcv, err := checkValue(h.Algorithm, key)
		if err != nil {
			return hostcmd.InputDataError, nil
		}
		return hostcmd.OK, hostcmd.KeyAnswer{KCV: kcv}.Encode()
	}
	return hostcmd.CommandDisabled, nil
}

// unwrap opens a key block under the LMK; bad is the error code when it
// does not verify, and usages (if any) are the TR-31 usages it may have.
func (s *Server) unwrap(k hostcmd.Key, bad string, usages ...string) (paycrypto.KeyBlockHeader, []byte, string) {
	if k.Scheme != 'S' {
		return paycrypto.KeyBlockHeader{}, nil, bad
	}
	h, key, err := paycrypto.UnwrapKeyBlock(s.lmk, k.Block)
	if err != nil {
		return h, nil, bad
	}
	if len(usages) > 0 && !slices.Contains(usages, h.Usage) {
		clear(key)
		return h, nil, hostcmd.KeyUsageError
	}
	if !validKey(h.Algorithm, len(key)) {
		clear(key)
		return h, nil, bad
	}
	return h, key, hostcmd.OK
}

// validKey checks a key's length for its algorithm.
func validKey(alg byte, n int) bool {
	switch alg {
	case 'T':
		return n == 16 || n == 24
	case 'A':
		return n == 16 || n == 24 || n == 32
	case 'H':
		return n == 32
	}
	return false
}

// checkValue is the 6H check value: paycrypto.KCV for TDES and AES, the
// first 3 bytes of HMAC-SHA-256 over 16 zero bytes for HMAC keys.
func checkValue(alg byte, key []byte) (string, error) {
	var kcv []byte
	var err error
	switch alg {
	case 'T':
		kcv, err = paycrypto.KCV("tdes", key)
	case 'A':
		kcv, err = paycrypto.KCV("aes", key)
	case 'H':
		m := hmac.New(sha256.New, key)
		m.Write(make([]byte, 16))
		kcv = m.Sum(nil)[:3]
	default:
		err = fmt.Errorf("algorithm %c", alg)
	}
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(kcv)), nil
}

// decodePIN recovers the PIN from a block; "" when it does not decode.
func decodePIN(key []byte, alg byte, block, format, pan string) string {
	b, err := hex.DecodeString(block)
	if err != nil {
		return ""
	}
	var pin string
	switch {
	case format == hostcmd.FormatISO0 && alg == 'T':
		pin, err = paycrypto.DecryptISO0(key, b, pan)
	case format == hostcmd.FormatISO4 && alg == 'A':
		pin, err = paycrypto.DecryptISO4(key, b, pan)
	default:
		return ""
	}
	if err != nil {
		return ""
	}
	return pin
}

// encodePIN builds the destination block.
func encodePIN(key []byte, alg byte, pin, format, pan string) (string, string) {
	var (
		b   []byte
		err error
	)
	switch {
	case format == hostcmd.FormatISO0 && alg == 'T':
		b, err = paycrypto.EncryptISO0(key, pin, pan)
	case format == hostcmd.FormatISO4 && alg == 'A':
		b, err = paycrypto.EncryptISO4(key, pin, pan, rand.Reader)
	default:
		return "", hostcmd.InvalidFormatCode
	}
	if err != nil {
		return "", hostcmd.InputDataError
	}
	return strings.ToUpper(hex.EncodeToString(b)), hostcmd.OK
}

// accountPAN turns the account number field into a PAN the paycrypto
// block functions take: the whole PAN (format 48), or the 12 digits with
// a stand-in check digit (format 0 binds only those 12).
func accountPAN(account string) string {
	if len(account) == 12 {
		return account + "0"
	}
	return account
}

func knownFormat(f string) bool { return f == hostcmd.FormatISO0 || f == hostcmd.FormatISO4 }

// reencrypt finishes a translation: the PIN under the destination key.
func reencrypt(pin string, dst []byte, dstAlg byte, format, pan string) (string, []byte) {
	if pin == "" {
		return hostcmd.PINBlockError, nil
	}
	block, code := encodePIN(dst, dstAlg, pin, format, pan)
	if code != hostcmd.OK {
		return code, nil
	}
	return hostcmd.OK, hostcmd.PINAnswer{PINLength: len(pin), Block: block, Format: format}.Encode()
}

func (s *Server) translatePIN(c *hostcmd.TranslatePIN) (string, []byte) {
	if !knownFormat(c.SourceFormat) || !knownFormat(c.DestFormat) {
		return hostcmd.InvalidFormatCode, nil
	}
	sh, src, code := s.unwrap(c.Source, hostcmd.SourceKeyError, "P0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(src)
	dh, dst, code := s.unwrap(c.Dest, hostcmd.DestKeyError, "P0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(dst)
	pan := accountPAN(c.Account)
	return reencrypt(decodePIN(src, sh.Algorithm, c.Block, c.SourceFormat, pan), dst, dh.Algorithm, c.DestFormat, pan)
}

func (s *Server) translateDUKPT(c *hostcmd.TranslateDUKPT) (string, []byte) {
	if c.SourceFormat != hostcmd.FormatISO0 || !knownFormat(c.DestFormat) {
		return hostcmd.InvalidFormatCode, nil
	}
	bh, bdk, code := s.unwrap(c.BDK, hostcmd.SourceKeyError, "B0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(bdk)
	if bh.Algorithm != 'T' || len(bdk) != 16 {
		return "27", nil // BDK not double length
	}
	dh, dst, code := s.unwrap(c.ZPK, hostcmd.DestKeyError, "P0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(dst)
	ksn, _ := hex.DecodeString(c.KSN)
	pinKey, err := paycrypto.TDESPINKey(bdk, ksn)
	if err != nil {
		return hostcmd.PINBlockError, nil
	}
	defer clear(pinKey)
	pan := accountPAN(c.Account)
	return reencrypt(decodePIN(pinKey, 'T', c.Block, hostcmd.FormatISO0, pan), dst, dh.Algorithm, c.DestFormat, pan)
}

// mac computes M6/M8's MAC (8 bytes).
func (s *Server) mac(c *hostcmd.GenerateMAC) ([]byte, string) {
	if c.ModeFlag != '0' || c.InputFormat != '0' || c.MACSize != '1' {
		return nil, hostcmd.InputDataError
	}
	h, key, code := s.unwrap(c.Key, hostcmd.SourceKeyError, "M3", "M6")
	if code != hostcmd.OK {
		return nil, code
	}
	defer clear(key)
	var (
		mac []byte
		err error
	)
	switch {
	case c.Algorithm == hostcmd.MACAlgISO9797Alg3 && c.Padding == hostcmd.PadMethod1 && h.Usage == "M3" && h.Algorithm == 'T' && len(key) == 16:
		mac, err = paycrypto.RetailMAC(key, c.Message)
	case c.Algorithm == hostcmd.MACAlgCMAC && c.Padding == hostcmd.PadNone && h.Usage == "M6" && h.Algorithm == 'A':
		mac, err = paycrypto.AESCMAC(key, c.Message)
	default:
		return nil, hostcmd.KeyUsageError
	}
	if err != nil {
		return nil, hostcmd.InputDataError
	}
	return mac[:8], hostcmd.OK
}

// exportable keys may leave under a ZMK.
func exportable(h paycrypto.KeyBlockHeader) bool { return h.Exportability == 'E' }

func (s *Server) generateKey(c *hostcmd.GenerateKey) (string, []byte) {
	size := hostcmd.KeySize(c.Attr.Algorithm)
	if size == 0 || c.Scheme != 'S' || (c.Mode != '0' && c.Mode != '1') {
		return hostcmd.InputDataError, nil
	}
	h := paycrypto.KeyBlockHeader{Usage: c.Attr.Usage, Algorithm: c.Attr.Algorithm[0], ModeOfUse: c.Attr.ModeOfUse,
		Version: c.Attr.Version, Exportability: c.Attr.Exportability}
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		return hostcmd.InputDataError, nil
	}
	defer clear(key)
	if h.Algorithm == 'T' {
		paycrypto.SetOddParity(key)
	}
	return s.answerKey(h, key, c.Mode == '1', c.ZMK)
}

// answerKey wraps key under the LMK (and under the ZMK when export) and
// answers with the blocks and the check value.
func (s *Server) answerKey(h paycrypto.KeyBlockHeader, key []byte, export bool, zmk hostcmd.Key) (string, []byte) {
	lmkBlock, err := paycrypto.WrapKeyBlock(s.lmk, h, key, rand.Reader)
	if err != nil {
		return hostcmd.InputDataError, nil
	}
	kcv, err := checkValue(h.Algorithm, key)
	if err != nil {
		return hostcmd.InputDataError, nil
	}
	a := hostcmd.KeyAnswer{LMK: hostcmd.Key{Scheme: 'S', Block: lmkBlock}, KCV: kcv}
	if export {
		if !exportable(h) {
			return hostcmd.KeyUsageError, nil
		}
		_, kek, code := s.unwrap(zmk, hostcmd.DestKeyError, "K0")
		if code != hostcmd.OK {
			return code, nil
		}
		defer clear(kek)
		block, err := paycrypto.WrapKeyBlock(kek, h, key, rand.Reader)
		if err != nil {
			return hostcmd.DestKeyError, nil
		}
		a.ZMK = hostcmd.Key{Scheme: 'R', Block: block}
	}
	return hostcmd.OK, a.Encode()
}

func (s *Server) importKey(c *hostcmd.ImportKey) (string, []byte) {
	if c.Key.Scheme != 'R' || c.Scheme != 'S' {
		return hostcmd.InputDataError, nil
	}
	_, kek, code := s.unwrap(c.ZMK, hostcmd.SourceKeyError, "K0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(kek)
	h, key, err := paycrypto.UnwrapKeyBlock(kek, c.Key.Block)
	if err != nil {
		return hostcmd.DestKeyError, nil
	}
	defer clear(key)
	if !validKey(h.Algorithm, len(key)) {
		return hostcmd.DestKeyError, nil
	}
	return s.answerKey(h, key, false, hostcmd.Key{})
}

// FormKey is the emulator's console: it forms a key from clear components
// (XORed, as at a key ceremony) and returns it under the LMK with its
// check value. It is how a first ZMK enters; host commands never take a
// clear key.
func (s *Server) FormKey(h paycrypto.KeyBlockHeader, components ...[]byte) (hostcmd.Key, string, error) {
	if len(components) == 0 {
		return hostcmd.Key{}, "", fmt.Errorf("hsmsim: no key components")
	}
	key := slices.Clone(components[0])
	defer clear(key)
	for _, c := range components[1:] {
		if len(c) != len(key) {
			return hostcmd.Key{}, "", fmt.Errorf("hsmsim: key components differ in length")
		}
		for i := range key {
			key[i] ^= c[i]
		}
	}
	if !validKey(h.Algorithm, len(key)) {
		return hostcmd.Key{}, "", fmt.Errorf("hsmsim: a %d-byte key does not suit algorithm %c", len(key), h.Algorithm)
	}
	block, err := paycrypto.WrapKeyBlock(s.lmk, h, key, rand.Reader)
	if err != nil {
		return hostcmd.Key{}, "", err
	}
	kcv, err := checkValue(h.Algorithm, key)
	if err != nil {
		return hostcmd.Key{}, "", err
	}
	return hostcmd.Key{Scheme: 'S', Block: block}, kcv, nil
}
