package payshield

import (
	"errors"
	"time"
)

// Defaults of Options.
const (
	DefaultAddr         = "127.0.0.1:1500"
	DefaultHeaderLength = 4
	DefaultConnections  = 2
	DefaultPipeline     = 16
	DefaultTimeout      = 2 * time.Second
)

// Options configures Open.
type Options struct {
	// Addr is the HSM's host port. Default DefaultAddr.
	Addr string
	// HeaderLength is the message header length the HSM is configured
	// with (1 to 9); headers number the commands so that pipelined
	// answers are matched. Default DefaultHeaderLength.
	HeaderLength int
	// Connections is the size of the connection pool. Default
	// DefaultConnections.
	Connections int
	// Pipeline is how many commands may be outstanding per connection.
	// Default DefaultPipeline.
	Pipeline int
	// Timeout bounds one command: waiting for a free slot, connecting,
	// sending and the answer. Default DefaultTimeout.
	Timeout time.Duration
	// KeyStore is the file of the switch's keys as LMK key blocks (JSON).
	// Required. Created empty when missing.
	KeyStore string
}

func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.HeaderLength == 0 {
		o.HeaderLength = DefaultHeaderLength
	}
	if o.Connections == 0 {
		o.Connections = DefaultConnections
	}
	if o.Pipeline == 0 {
		o.Pipeline = DefaultPipeline
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.KeyStore == "":
		return o, errors.New("payshield: no key store path")
	case o.HeaderLength < 1 || o.HeaderLength > 9:
		return o, errors.New("payshield: header length must be 1 to 9 characters")
	case o.Connections < 1 || o.Pipeline < 1 || o.Timeout < 0:
		return o, errors.New("payshield: connections, pipeline and timeout must be positive")
	}
	return o, nil
}
