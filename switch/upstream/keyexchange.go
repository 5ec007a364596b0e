package upstream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/kbpay/switch/specs/codes"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
)

// KeyExchangeField carries the new zone PIN key in an issuer's key change
// (0800, DE 70 161): the key encrypted under the zone master key (TDES
// ECB) as hex, 32 or 48 digits, followed by its 6-digit KCV.
const KeyExchangeField = specs.PrivateData

// WithKeyExchange lets the link take an issuer's key change: with the
// route's pin.zmk set, the new zone PIN key is imported through h as the
// next version of pin.key, which PIN translation uses from the next
// request on (it names the current version per request). h is called per
// key change (the switch opens its HSMs after its links).
func WithKeyExchange(h func() hsm.HSM) Option {
	return func(l *Link) { l.keys = h }
}

// ParseKeyExchange splits DE 48 of a key change into the key under the
// ZMK and its KCV.
func ParseKeyExchange(field string) (wrapped, kcv []byte, err error) {
	if n := len(field); n != 32+6 && n != 48+6 {
		return nil, nil, fmt.Errorf("DE %d: %d characters, want a 32 or 48-digit key and a 6-digit KCV", KeyExchangeField, n)
	}
	b, err := hex.DecodeString(field)
	if err != nil {
		return nil, nil, fmt.Errorf("DE %d is not hex: %w", KeyExchangeField, err)
	}
	return b[:len(b)-3], b[len(b)-3:], nil
}

// FormatKeyExchange is ParseKeyExchange's inverse (the issuer's side).
func FormatKeyExchange(wrapped, kcv []byte) string {
	return fmt.Sprintf("%X%X", wrapped, kcv[:3])
}

// keyChange applies an issuer's key change (applyKeyChange) and counts
// it in issuer_key_changes_total.
func (l *Link) keyChange(msg *iso8583.Message) codes.Code {
	rc := l.applyKeyChange(msg)
	outcome := KeyChangeImported
	if rc != codes.Approved {
		outcome = KeyChangeRefused
	}
	l.metrics.keyChanges.changes.WithLabelValues(l.cfg.Name, outcome).Inc()
	return rc
}

// applyKeyChange applies an issuer's key change and returns the DE 39 answer:
// 00 when the new key is current, 12 when the route takes no key changes
// or the HSM cannot import under a ZMK, 30 when the key does not import
// (wrong form or KCV, unknown ZMK). The old key stays current on failure.
// An imported key is recorded for the other instances (WithKeyStore).
func (l *Link) applyKeyChange(msg *iso8583.Message) codes.Code {
	pin := l.cfg.PIN
	var h hsm.HSM
	if l.keys != nil {
		h = l.keys()
	}
	if pin == nil || pin.ZMK == "" || h == nil {
		l.log.Warn("issuer key change refused: the route has no pin.zmk")
		return codes.InvalidTxn
	}
	field, _ := msg.GetString(KeyExchangeField)
	wrapped, kcv, err := ParseKeyExchange(field)
	if err != nil {
		l.log.Warn("issuer key change refused: old key stays", zap.Error(err))
		return codes.FormatError
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
	defer cancel()
	l.shared.mu.Lock()
	defer l.shared.mu.Unlock()
	info, err := hsm.ImportUnderKEK(ctx, h, hsm.ImportUnderKEKRequest{
		KEK: hsm.KeyRef{Label: pin.ZMK}, Label: pin.Key, Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES,
		Wrapped: wrapped, KCV: kcv,
	})
	if err != nil {
		l.log.Warn("issuer key change refused: old key stays", zap.String("zmk", pin.ZMK), zap.String("zpk", pin.Key), zap.Error(err))
		if errors.Is(err, hsm.ErrUnsupported) {
			return codes.InvalidTxn
		}
		return codes.FormatError
	}
	l.log.Info("issuer key change: new zone PIN key current", zap.String("zpk", info.Label),
		zap.Int("version", info.Version), zap.String("kcv", fmt.Sprintf("%X", info.KCV)))
	l.recordKeyChange(ctx, info, wrapped, kcv)
	return codes.Approved
}
