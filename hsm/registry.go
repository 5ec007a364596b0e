package hsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Role is what the switch uses a backend for. Many deployments split the
// two: a payment HSM (payShield) for PIN translation and MACs, a general
// HSM or KMS (PKCS#11) for PANs at rest.
type Role uint8

const (
	// RolePINMAC is PIN translation and MAC generation and verification
	// (TranslatePIN, GenerateMAC, VerifyMAC).
	RolePINMAC Role = 1 << iota
	// RoleData is data protection for the vault and the journal
	// (EncryptPAN, DecryptPAN, HashPAN).
	RoleData
)

// String names the role as the configuration does.
func (r Role) String() string {
	var s []string
	if r&RolePINMAC != 0 {
		s = append(s, "pin_mac")
	}
	if r&RoleData != 0 {
		s = append(s, "data")
	}
	return strings.Join(s, "+")
}

// Deps are what every backend constructor is given besides its options.
type Deps struct {
	// Log is the backend's logger. Nil means a no-op logger.
	Log *zap.Logger
	// Metrics registers the backend's own metrics (a connection pool's
	// saturation). Nil means none are registered.
	Metrics prometheus.Registerer
}

// Opener constructs a backend from its options, which Open has already
// checked are of the backend's own options type.
type Opener func(ctx context.Context, opts any, deps Deps) (HSM, error)

type entry struct {
	roles Role
	open  Opener
}

// Registry maps backend names to constructors. The program builds one
// (switchd registers software, pkcs11 and payshield) and opens the
// configured backends by name; there is no package-level registry.
type Registry struct {
	m map[string]entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]entry{}} }

// ErrUnknownBackend is returned by Open for a name nobody registered.
var ErrUnknownBackend = errors.New("hsm: unknown backend")

// ErrRoleNotSupported is returned by Open when the backend cannot serve
// the requested role (payshield for data protection).
var ErrRoleNotSupported = errors.New("hsm: backend does not serve this role")

// Register adds a backend whose constructor takes the typed options O;
// roles are the roles it can serve. Registering a name twice panics (a
// programming error).
func Register[O any](r *Registry, name string, roles Role, open func(ctx context.Context, opts O, deps Deps) (HSM, error)) {
	if _, dup := r.m[name]; dup {
		panic("hsm: backend " + name + " registered twice")
	}
	r.m[name] = entry{roles: roles, open: func(ctx context.Context, opts any, deps Deps) (HSM, error) {
		o, ok := opts.(O)
		if !ok {
			var want O
			return nil, fmt.Errorf("hsm: backend %s takes options of type %T, got %T", name, want, opts)
		}
		return open(ctx, o, deps)
	}}
}

// Names lists the registered backends, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Roles returns the roles a registered backend can serve (0 if unknown).
func (r *Registry) Roles(name string) Role { return r.m[name].roles }

// Check reports whether name is registered and can serve role.
func (r *Registry) Check(name string, role Role) error {
	e, ok := r.m[name]
	if !ok {
		return fmt.Errorf("%w %q (registered: %s)", ErrUnknownBackend, name, strings.Join(r.Names(), ", "))
	}
	if e.roles&role != role {
		return fmt.Errorf("backend %s for %s: %w (it serves %s)", name, role, ErrRoleNotSupported, e.roles)
	}
	return nil
}

// Open constructs the backend name for role with its typed options.
func (r *Registry) Open(ctx context.Context, name string, role Role, opts any, deps Deps) (HSM, error) {
	if err := r.Check(name, role); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	h, err := r.m[name].open(ctx, opts, deps)
	if err != nil {
		return nil, fmt.Errorf("opening %s HSM for %s: %w", name, role, err)
	}
	return h, nil
}

// Roles bundles the backends of the two roles; PINMAC and Data are the
// same value when one backend serves both.
type Roles struct {
	PINMAC HSM
	Data   HSM
}

// Close closes each distinct backend once.
func (r Roles) Close() error {
	var errs []error
	seen := []HSM{}
	for _, h := range []HSM{r.PINMAC, r.Data} {
		if h == nil || slices.Contains(seen, h) {
			continue
		}
		seen = append(seen, h)
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}
