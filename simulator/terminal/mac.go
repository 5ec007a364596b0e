package terminal

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs"
)

// macField returns where msg's MAC goes: DE 128 when the message has a
// secondary bitmap (a field above 64), else DE 64.
func macField(msg *iso8583.Message) int {
	for id := range msg.GetFields() {
		if id > 64 && id != specs.MAC2 {
			return specs.MAC2
		}
	}
	return specs.MAC
}

// SignMAC sets DE 64 (DE 128 with a secondary bitmap) to the ISO 9797-1
// algorithm 3 retail MAC under the 16-byte TDES key, computed over the
// packed message up to the MAC field, as keyed listeners check it. With
// wrong set the MAC is deliberately wrong (its last byte inverted; eight
// 0xFF bytes when key is nil), for negative tests.
func SignMAC(msg *iso8583.Message, key []byte, wrong bool) error {
	id := macField(msg)
	other := specs.MAC
	if id == specs.MAC {
		other = specs.MAC2
	}
	msg.UnsetField(other)
	if err := msg.BinaryField(id, make([]byte, 8)); err != nil {
		return fmt.Errorf("setting DE %d: %w", id, err)
	}
	if key == nil {
		if !wrong {
			return fmt.Errorf("signing DE %d: no MAC key", id)
		}
		return msg.BinaryField(id, bytes.Repeat([]byte{0xFF}, 8))
	}
	packed, err := msg.Pack()
	if err != nil {
		return fmt.Errorf("packing for the MAC: %w", err)
	}
	sum, err := paycrypto.RetailMAC(key, packed[:len(packed)-8])
	if err != nil {
		return fmt.Errorf("computing the MAC: %w", err)
	}
	if wrong {
		sum[7] ^= 0xFF
	}
	if err := msg.BinaryField(id, sum); err != nil {
		return fmt.Errorf("setting DE %d: %w", id, err)
	}
	return nil
}

// PINBlock returns the ISO 9564 format 0 PIN block for pin bound to card
// under the terminal's PIN key: the static TPK, or under DUKPT the key of
// the terminal's next KSN, which is returned as DE 62 carries it (20
// upper-case hex characters; "" for a static key). Errors never show the
// PIN or the card number.
func (p *POS) PINBlock(pin, card string) (block []byte, ksnField string, err error) {
	var ksn []byte
	if p.opts.DUKPTBDK != nil {
		p.mu.Lock()
		ksn = DemoKSN(p.ksn.next())
		p.mu.Unlock()
	}
	key, err := p.opts.pinKey(ksn)
	if err != nil {
		return nil, "", err
	}
	if len(pin) < 4 || len(pin) > 12 || !isDigits(pin) {
		return nil, "", fmt.Errorf("%w: PIN is not 4-12 digits", ErrInvalidPurchase)
	}
	block, err = paycrypto.EncryptISO0(key, pin, card)
	if err != nil {
		return nil, "", fmt.Errorf("%w: building the PIN block: %w", ErrInvalidPurchase, err)
	}
	if ksn != nil {
		ksnField = strings.ToUpper(hex.EncodeToString(ksn))
	}
	return block, ksnField, nil
}
