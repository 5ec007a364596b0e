package frame

import (
	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

// LoadDialect resolves a configured dialect: the named message spec
// (specs.Load) and the named length header (ParseHeader). Listeners,
// issuer links, the issuer emulator and the load generator all speak a
// dialect named this way.
func LoadDialect(spec, header string) (*iso8583.MessageSpec, Header, error) {
	s, err := specs.Load(spec)
	if err != nil {
		return nil, nil, err
	}
	h, err := ParseHeader(header)
	if err != nil {
		return nil, nil, err
	}
	return s, h, nil
}
