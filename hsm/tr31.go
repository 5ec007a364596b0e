package hsm

import (
	"fmt"

	"github.com/kbpay/switch/hsm/paycrypto"
)

// KeyBlockHeader is the X9.143 (TR-31) header a key of this usage and
// algorithm carries when it travels as a key block (under a payment HSM's
// LMK or a ZMK): P0 for PIN keys (TPK and ZPK alike), B0 for BDKs, M3 /
// M6 for retail-MAC / CMAC keys, K0 for KEKs (AES, or TDES for ZPKs exchanged in ECB form), D0 and M7 for the PAN data
// and hash keys. ErrWrongUsage for a usage and algorithm that do not go
// together.
func KeyBlockHeader(u Usage, alg Algorithm) (paycrypto.KeyBlockHeader, error) {
	h := paycrypto.KeyBlockHeader{Version: "00", Exportability: 'E'}
	switch alg {
	case TDES:
		h.Algorithm = 'T'
	case AES:
		h.Algorithm = 'A'
	case HMAC:
		h.Algorithm = 'H'
	default:
		return h, fmt.Errorf("algorithm %q: %w", alg, ErrUnsupported)
	}
	ok := true
	switch u {
	case UsageTerminalPIN, UsageZonePIN:
		h.Usage, h.ModeOfUse, ok = "P0", 'B', alg != HMAC
	case UsageBDK:
		h.Usage, h.ModeOfUse, h.Exportability, ok = "B0", 'X', 'N', alg != HMAC
	case UsageMAC:
		h.ModeOfUse = 'C'
		switch alg {
		case TDES:
			h.Usage = "M3"
		case AES:
			h.Usage = "M6"
		default:
			ok = false
		}
	case UsageKEK:
		// A TDES ZMK is the one key exchanges in ECB form (an
		// issuer's 0800/161) are made under.
		h.Usage, h.ModeOfUse, ok = "K0", 'B', alg == AES || alg == TDES
	case UsagePANData:
		h.Usage, h.ModeOfUse, ok = "D0", 'B', alg == AES
	case UsagePANHash:
		h.Usage, h.ModeOfUse, ok = "M7", 'C', alg == HMAC
	default:
		return h, fmt.Errorf("unknown key usage %q", u)
	}
	if !ok {
		return h, fmt.Errorf("algorithm %s for usage %s: %w", alg, u, ErrWrongUsage)
	}
	return h, nil
}
