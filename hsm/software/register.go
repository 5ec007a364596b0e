package software

import (
	"context"

	"github.com/kbpay/switch/hsm"
)

// Name is the software backend's registry name.
const Name = "software"

// Register adds the software backend (both roles) to r; its options are
// Options.
func Register(r *hsm.Registry) {
	hsm.Register(r, Name, hsm.RolePINMAC|hsm.RoleData, func(_ context.Context, opts Options, deps hsm.Deps) (hsm.HSM, error) {
		return Open(opts, deps.Log)
	})
}
