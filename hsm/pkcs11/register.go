package pkcs11

import (
	"context"

	"github.com/kbpay/switch/hsm"
)

// Name is the pkcs11 backend's registry name.
const Name = "pkcs11"

// Register adds the pkcs11 backend (both roles) to r; its options are
// Options. Without cgo, opening it fails with hsm.ErrNoCGO.
func Register(r *hsm.Registry) {
	hsm.Register(r, Name, hsm.RolePINMAC|hsm.RoleData, func(_ context.Context, opts Options, deps hsm.Deps) (hsm.HSM, error) {
		return Open(opts, deps.Log)
	})
}
