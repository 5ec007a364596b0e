package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/specs"
)

// MACKey is a keyed listener's MAC key and algorithm.
type MACKey struct {
	Key       string
	Algorithm hsm.MACAlgorithm
}

// MACVerifier is the HSM's MAC check.
type MACVerifier interface {
	VerifyMAC(ctx context.Context, req hsm.VerifyMACRequest) error
}

// VerifyMAC requires a valid DE 64 (or DE 128 when a secondary bitmap is
// present) from terminals on keyed listeners; the MAC covers the message as
// sent, up to the MAC field. A missing or wrong MAC is answered 63 and the
// message goes no further.
func VerifyMAC(h MACVerifier) Stage {
	return Stage{Name: "mac", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			k := t.Policy.MAC
			if k == nil {
				return next.Handle(ctx, t)
			}
			macField := specs.MAC
			if t.Request.Bitmap().IsSet(1) {
				macField = specs.MAC2
			}
			mac, _ := t.Request.GetBytes(macField)
			if len(mac) != 8 || len(t.Raw) < 8 {
				return Declinef(ErrSecurity, "keyed terminal sent no DE %d MAC", macField)
			}
			err := h.VerifyMAC(ctx, hsm.VerifyMACRequest{
				MACRequest: hsm.MACRequest{Key: hsm.KeyRef{Label: k.Key}, Algorithm: k.Algorithm, Data: t.Raw[:len(t.Raw)-8]},
				MAC:        mac,
			})
			if errors.Is(err, hsm.ErrMACMismatch) {
				return Declinef(ErrSecurity, "DE %d MAC does not verify", macField)
			}
			if err != nil {
				return fmt.Errorf("verifying MAC: %w", err)
			}
			return next.Handle(ctx, t)
		})
	}}
}

// MACGenerator is the HSM's MAC generation.
type MACGenerator interface {
	GenerateMAC(ctx context.Context, req hsm.MACRequest) ([]byte, error)
}

// SignResponse sets DE 64 (DE 128 with a secondary bitmap) on a response
// to a keyed terminal: the MAC covers the packed message up to the MAC.
func SignResponse(ctx context.Context, h MACGenerator, k MACKey, resp *iso8583.Message) error {
	macField := specs.MAC
	if _, err := resp.Pack(); err != nil {
		return fmt.Errorf("packing response for MAC: %w", err)
	}
	if resp.Bitmap().IsSet(1) {
		macField = specs.MAC2
	}
	if err := resp.BinaryField(macField, make([]byte, 8)); err != nil {
		return fmt.Errorf("reserving DE %d: %w", macField, err)
	}
	packed, err := resp.Pack()
	if err != nil {
		return fmt.Errorf("packing response for MAC: %w", err)
	}
	mac, err := h.GenerateMAC(ctx, hsm.MACRequest{Key: hsm.KeyRef{Label: k.Key}, Algorithm: k.Algorithm, Data: packed[:len(packed)-8]})
	if err != nil {
		return fmt.Errorf("generating response MAC: %w", err)
	}
	return resp.BinaryField(macField, mac)
}

// PINSource is how a listener's terminals encrypt PIN blocks: a static
// terminal PIN key, or a DUKPT BDK with the KSN in DE 62 (hex).
type PINSource struct {
	Key    string
	Format hsm.PINFormat
	DUKPT  bool
}

// PINDest is the issuer route's zone PIN key.
type PINDest struct {
	Key    string
	Format hsm.PINFormat
}

// PINTranslator is the HSM's PIN translation.
type PINTranslator interface {
	TranslatePIN(ctx context.Context, req hsm.TranslatePINRequest) ([]byte, error)
}

// KSNField carries the DUKPT key serial number as hex (ISO 8583:1987 has no
// field wide enough in DE 53).
const KSNField = 62

// TranslatePIN re-encrypts DE 52 from the listener's terminal key (or
// DUKPT) to the route's zone PIN key in the HSM, bound to the real PAN
// (after detokenization). The PIN never exists in the switch in clear.
func TranslatePIN(h PINTranslator) Stage {
	return Stage{Name: "pin", Wrap: func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, t *Txn) error {
			block, _ := t.Request.GetBytes(specs.PINBlock)
			if len(block) == 0 {
				return next.Handle(ctx, t)
			}
			from := t.Policy.PIN
			if from == nil {
				return Declinef(ErrInvalidTxn, "listener %s accepts no PIN blocks (no PIN key configured)", t.Listener)
			}
			to := t.Issuer.PIN
			if to == nil {
				return Declinef(ErrInvalidTxn, "route %s has no zone PIN key", t.Route)
			}
			req := hsm.TranslatePINRequest{
				PINBlock: block, PAN: t.PAN,
				From: hsm.PINKey{Key: hsm.KeyRef{Label: from.Key}, Format: from.Format},
				To:   hsm.PINKey{Key: hsm.KeyRef{Label: to.Key}, Format: to.Format},
			}
			if from.DUKPT {
				ksnHex, _ := t.Request.GetString(KSNField)
				ksn, err := hex.DecodeString(ksnHex)
				if err != nil || (len(ksn) != 10 && len(ksn) != 12) {
					return Declinef(ErrFormat, "DUKPT PIN block without a valid KSN in DE %d", KSNField)
				}
				req.From.KSN = ksn
			}
			out, err := h.TranslatePIN(ctx, req)
			if err != nil {
				return fmt.Errorf("translating PIN block: %w", err)
			}
			t.IssuerPINBlock = out
			return next.Handle(ctx, t)
		})
	}}
}
