package payswitch

import "github.com/kbpay/switch/switch/store"

// Option changes how New builds a switch beyond its configuration.
type Option func(*options)

type options struct {
	storeFault store.Fault
	configFile string // what POST /v1/reload re-reads (WithConfigFile)
	startFault func(step string) error
}

// WithStoreFault wraps the store with store.WithFault: fault is asked
// before every write and a non-nil error fails that write as a failed
// commit would. For tests that fail the store in-process (a full disk
// while the issuer is answering); never set in production.
func WithStoreFault(fault store.Fault) Option {
	return func(o *options) { o.storeFault = fault }
}

// WithStartFault asks fault before every step of New (lifecycle.Cleanup.Step)
// and fails the step it returns an error for, so that a test sees a failed
// start close everything it opened. For tests; never set in production.
func WithStartFault(fault func(step string) error) Option {
	return func(o *options) { o.startFault = fault }
}
