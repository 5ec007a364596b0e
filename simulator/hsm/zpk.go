package hsm

import (
	"bytes"
	"encoding/hex"

	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// importZPK is FA: the ZPK under a TDES ZMK (X9.17 form, TDES ECB) comes
// back under the LMK with its check value. As the device does, it refuses
// an all-zero key (11), forces odd parity on the result and then answers
// 01 (advice only) with the fields.
func (s *Server) importZPK(c *hostcmd.ImportZPK) (string, []byte) {
	if c.KeySchemeLMK != 'S' || c.KCVType != '1' {
		return hostcmd.InputDataError, nil
	}
	zh, kek, code := s.unwrap(c.ZMK, hostcmd.SourceKeyError, "K0")
	if code != hostcmd.OK {
		return code, nil
	}
	defer clear(kek)
	if zh.Algorithm != 'T' {
		return hostcmd.SourceKeyError, nil // X9.17 form is under a TDES ZMK
	}
	wrapped, err := hex.DecodeString(c.ZPK[1:])
	if err != nil {
		return hostcmd.InputDataError, nil
	}
	key, err := paycrypto.DecryptKeyECB(kek, wrapped)
	if err != nil {
		return hostcmd.InputDataError, nil
	}
	defer clear(key)
	if bytes.Equal(key, make([]byte, len(key))) {
		return hostcmd.DestKeyError, nil
	}
	parity := bytes.Clone(key)
	paycrypto.SetOddParity(key)
	advice := !bytes.Equal(parity, key)
	clear(parity)
	h := paycrypto.KeyBlockHeader{Usage: "P0", Algorithm: 'T', ModeOfUse: c.ModeOfUse, Version: c.Version, Exportability: c.Exportability}
	code, body := s.answerKey(h, key, false, hostcmd.Key{})
	if code == hostcmd.OK && advice {
		code = hostcmd.ParityAdvice
	}
	return code, body
}
