package pkcs11

import "errors"

// DefaultLibrary is the SoftHSM2 module as Debian's softhsm2 package
// installs it.
const DefaultLibrary = "/usr/lib/softhsm/libsofthsm2.so"

// DefaultSessions is the default size of the session pool.
const DefaultSessions = 4

// Options configures Open.
type Options struct {
	// Library is the path of the PKCS#11 module. Default DefaultLibrary.
	Library string
	// TokenLabel selects the token by its label. Required.
	TokenLabel string
	// PIN is the token's user PIN. Callers load it from an environment
	// variable or a secret file, never from the configuration file.
	PIN string
	// Sessions is the number of R/W sessions in the pool, which bounds
	// how many operations run in the token at once. Default
	// DefaultSessions.
	Sessions int
}

// withDefaults returns opts with the zero fields set to their defaults.
func (opts Options) withDefaults() Options {
	if opts.Library == "" {
		opts.Library = DefaultLibrary
	}
	if opts.Sessions == 0 {
		opts.Sessions = DefaultSessions
	}
	return opts
}

// Errors of Open and of a closed HSM, beyond the hsm package's.
var (
	// ErrTokenNotFound: no initialized token has Options.TokenLabel.
	ErrTokenNotFound = errors.New("pkcs11 hsm: token not found")
	// ErrClosed: the HSM was closed.
	ErrClosed = errors.New("pkcs11 hsm: closed")
)
