//go:build !cgo

package pkcs11

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
)

// HSM is a stand-in: this binary was built without cgo, so the PKCS#11
// module cannot be loaded. Every method returns an error wrapping
// hsm.ErrNoCGO.
type HSM struct{}

// Open returns an error wrapping hsm.ErrNoCGO: the pkcs11 backend needs a
// binary built with cgo (CGO_ENABLED=1 and a C compiler).
func Open(opts Options, log *zap.Logger) (*HSM, error) {
	return nil, fmt.Errorf("pkcs11 hsm: opening token %q with %s: %w (rebuild with CGO_ENABLED=1, or use the software backend)",
		opts.TokenLabel, opts.withDefaults().Library, hsm.ErrNoCGO)
}

func errNoCGO(op string) error { return fmt.Errorf("pkcs11 hsm: %s: %w", op, hsm.ErrNoCGO) }

// EncryptPAN returns an error wrapping hsm.ErrNoCGO.
func (*HSM) EncryptPAN(context.Context, hsm.KeyRef, string) (hsm.EncryptedPAN, error) {
	return hsm.EncryptedPAN{}, errNoCGO("encrypt PAN")
}

// DecryptPAN returns an error wrapping hsm.ErrNoCGO.
func (*HSM) DecryptPAN(context.Context, hsm.EncryptedPAN) (string, error) {
	return "", errNoCGO("decrypt PAN")
}

// HashPAN returns an error wrapping hsm.ErrNoCGO.
func (*HSM) HashPAN(context.Context, hsm.KeyRef, string) (hsm.PANHash, error) {
	return hsm.PANHash{}, errNoCGO("hash PAN")
}

// TranslatePIN returns an error wrapping hsm.ErrNoCGO.
func (*HSM) TranslatePIN(context.Context, hsm.TranslatePINRequest) ([]byte, error) {
	return nil, errNoCGO("translate PIN")
}

// GenerateMAC returns an error wrapping hsm.ErrNoCGO.
func (*HSM) GenerateMAC(context.Context, hsm.MACRequest) ([]byte, error) {
	return nil, errNoCGO("generate MAC")
}

// VerifyMAC returns an error wrapping hsm.ErrNoCGO.
func (*HSM) VerifyMAC(context.Context, hsm.VerifyMACRequest) error {
	return errNoCGO("verify MAC")
}

// ImportKey returns an error wrapping hsm.ErrNoCGO.
func (*HSM) ImportKey(context.Context, hsm.ImportKeyRequest) (hsm.KeyInfo, error) {
	return hsm.KeyInfo{}, errNoCGO("import key")
}

// GenerateKey returns an error wrapping hsm.ErrNoCGO.
func (*HSM) GenerateKey(context.Context, hsm.GenerateKeyRequest) (hsm.KeyInfo, error) {
	return hsm.KeyInfo{}, errNoCGO("generate key")
}

// Keys returns an error wrapping hsm.ErrNoCGO.
func (*HSM) Keys(context.Context) ([]hsm.KeyInfo, error) { return nil, errNoCGO("list keys") }

// Close does nothing.
func (*HSM) Close() error { return nil }

var (
	_ hsm.HSM        = (*HSM)(nil)
	_ hsm.KeyManager = (*HSM)(nil)
)
