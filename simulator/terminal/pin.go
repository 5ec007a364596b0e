package terminal

import (
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs"
)

// KSNField is the data element that carries the DUKPT key serial number as
// 20 upper-case hex characters; it must match the switch's
// pipeline.KSNField (ISO 8583:1987 DE 53 is too narrow for a KSN).
const KSNField = 62

// TDES DUKPT transaction counter: the KSN's low 21 bits. An originating
// device skips counters with more than 10 one bits (ANSI X9.24-1), and the
// host refuses them.
const (
	ksnCounterMask    = 1<<21 - 1
	ksnMaxCounterOnes = 10
)

// DemoKSN returns the demo TDES DUKPT device's 10-byte key serial number
// for a transaction counter: devkeys.KSNPrefixTDES followed by the counter
// in the low 21 bits (for counters below 2^20, the prefix and the counter
// as 5 hex digits).
func DemoKSN(counter uint32) []byte {
	ksn := devkeys.Bytes(devkeys.KSNPrefixTDES + "00000")
	counter &= ksnCounterMask
	ksn[7] |= byte(counter >> 16)
	ksn[8] |= byte(counter >> 8)
	ksn[9] |= byte(counter)
	return ksn
}

// ksnCounter hands out DUKPT transaction counters 1, 2, 3, ... in the low
// 21 bits, skipping 0 and the counters an originating device never uses
// (more than 10 one bits). It is safe for concurrent use.
type ksnCounter struct {
	n atomic.Uint32 // last value handed out, before masking
}

func (k *ksnCounter) next() uint32 {
	for {
		v := k.n.Add(1) & ksnCounterMask
		if v != 0 && bits.OnesCount32(v) <= ksnMaxCounterOnes {
			return v
		}
	}
}

// validatePIN checks the optional PIN fields of a purchase. Messages never
// show the PIN; card numbers appear masked.
func (p Purchase) validatePIN(invalid func(string, ...any) error) error {
	if p.PIN == "" {
		if p.PINPAN != "" {
			return invalid("PIN PAN given without a PIN")
		}
		return nil
	}
	if len(p.PIN) < 4 || len(p.PIN) > 12 || !isDigits(p.PIN) {
		return invalid("PIN is not 4-12 digits")
	}
	// ISO 9564 format 0 takes the 12 rightmost digits before the check
	// digit, so the bound number needs at least 13.
	bound := p.pinPAN()
	if len(bound) < 13 || len(bound) > 19 || !isDigits(bound) {
		what := "PIN PAN"
		if p.PINPAN == "" {
			what = "PAN"
		}
		return invalid("%s %s is not 13-19 digits, as a format 0 PIN block needs", what, pan.Mask(bound))
	}
	return nil
}

// pinPAN is the number the PIN block is bound to: PINPAN, else PAN.
func (p Purchase) pinPAN() string {
	if p.PINPAN != "" {
		return p.PINPAN
	}
	return p.PAN
}

// pinKey returns the key that encrypts the PIN block: the static terminal
// PIN key, or under DUKPT the PIN encryption key of ksn's transaction.
//
// A real DUKPT terminal never holds the BDK: it is injected with an initial
// key (IPEK) derived for its serial number and keeps only future keys from
// then on. This simulator derives the same per-transaction key directly
// from the BDK, which only a host (HSM) may do.
func (o Options) pinKey(ksn []byte) ([]byte, error) {
	if o.DUKPTBDK == nil {
		return o.PINKey, nil
	}
	if ksn == nil {
		return nil, fmt.Errorf("%w: DUKPT PIN entry needs a KSN (use NewPurchaseMessageKSN or Client.Purchase)", ErrInvalidPurchase)
	}
	k, err := paycrypto.TDESPINKey(o.DUKPTBDK, ksn)
	if err != nil {
		return nil, fmt.Errorf("%w: deriving the DUKPT PIN key: %w", ErrInvalidPurchase, err)
	}
	return k, nil
}

// setPINBlock sets DE 52 to p's PIN as an ISO 9564 format 0 block bound to
// p.pinPAN() under the terminal's key, and under DUKPT DE 62 to the KSN.
func setPINBlock(msg *iso8583.Message, p Purchase, ksn []byte, opts Options) error {
	key, err := opts.pinKey(ksn)
	if err != nil {
		return err
	}
	block, err := paycrypto.EncryptISO0(key, p.PIN, p.pinPAN())
	if err != nil {
		// paycrypto's errors carry no PIN or PAN digits.
		return fmt.Errorf("%w: building the PIN block: %w", ErrInvalidPurchase, err)
	}
	if err := msg.BinaryField(specs.PINBlock, block); err != nil {
		return fmt.Errorf("setting DE %d: %w", specs.PINBlock, err)
	}
	if opts.DUKPTBDK != nil {
		if err := msg.Field(KSNField, strings.ToUpper(hex.EncodeToString(ksn))); err != nil {
			return fmt.Errorf("setting DE %d: %w", KSNField, err)
		}
	}
	return nil
}

// validateKeys checks the PIN keys of o. Messages never show key material.
func (o Options) validateKeys() error {
	if n := len(o.PINKey); n != 16 && n != 24 {
		return fmt.Errorf("%w: PIN key must be 16 or 24 bytes of TDES key, got %d bytes", ErrConfig, n)
	}
	if o.DUKPTBDK != nil && len(o.DUKPTBDK) != 16 {
		return fmt.Errorf("%w: DUKPT BDK must be 16 bytes (double-length TDES), got %d bytes", ErrConfig, len(o.DUKPTBDK))
	}
	return nil
}
