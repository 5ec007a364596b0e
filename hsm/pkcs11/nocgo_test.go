//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"testing"

	"github.com/kbpay/switch/hsm"
)

func TestOpenWithoutCGO(t *testing.T) {
	h, err := Open(Options{TokenLabel: "kbpay"}, nil)
	if !errors.Is(err, hsm.ErrNoCGO) || h != nil {
		t.Fatalf("Open = %v, %v; want nil, ErrNoCGO", h, err)
	}
	var stub *HSM
	if _, err := stub.EncryptPAN(context.Background(), hsm.KeyRef{Label: "x"}, "4111111111111111"); !errors.Is(err, hsm.ErrNoCGO) {
		t.Errorf("EncryptPAN = %v, want ErrNoCGO", err)
	}
}
