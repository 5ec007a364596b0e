package pipeline

import (
	"fmt"
	"slices"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
)

// Mapper is an Upstream that carries its route's mapping rules
// (config.Mapping): which terminal fields travel, constant fields, and the
// issuer's DE 39 mapped to the switch's.
type Mapper interface {
	RouteMapping() config.Mapping
}

// MappedUpstream is an issuer link with its route's mapping rules.
type MappedUpstream struct {
	Upstream
	Mapping config.Mapping
}

// RouteMapping returns the route's mapping rules.
func (m MappedUpstream) RouteMapping() config.Mapping { return m.Mapping }

// mappingOf is up's mapping; a link without one maps as before (every
// field the dialect defines travels, no constants, DE 39 as answered).
func mappingOf(up Upstream) config.Mapping {
	if m, ok := up.(Mapper); ok {
		return m.RouteMapping()
	}
	return config.Mapping{}
}

// travels reports whether terminal field id goes to the issuer under m.
func travels(m config.Mapping, id int) bool {
	if slices.Contains(m.Drop, id) {
		return false
	}
	return len(m.Fields) == 0 || slices.Contains(m.Fields, id)
}

// setConstants sets m's constant fields the issuer's dialect defines on
// req (a constant replaces what the terminal sent).
func setConstants(req *iso8583.Message, m config.Mapping) error {
	for id, v := range m.Constants {
		if _, ok := req.GetSpec().Fields[id]; !ok {
			continue
		}
		if err := fields.SetString(req, id, v); err != nil {
			return fmt.Errorf("setting constant DE %d: %w", id, err)
		}
	}
	return nil
}

// mapCode is the issuer's DE 39 rc as the switch answers it: mapped when
// the route maps it, else unchanged. An approval is never mapped, nor is
// anything mapped to one (validation refuses both; this guards a mapping
// built without it).
func mapCode(m config.Mapping, rc codes.Code) codes.Code {
	to, ok := m.ResponseCodes[string(rc)]
	if !ok || rc.IsApproved() || codes.Code(to).IsApproved() {
		return rc
	}
	return codes.Code(to)
}

// Hold keeps stan owned on the link beyond one exchange, when it can.
func (m MappedUpstream) Hold(stan string) { hold(m.Upstream, stan) }
