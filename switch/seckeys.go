package payswitch

import (
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/pipeline"
)

// securityKeys builds the per-listener MAC and PIN keys and the per-route
// zone PIN keys from the configuration.
func (s *Switch) securityKeys() {
	s.macKeys = map[string]pipeline.MACKey{}
	s.pinSrc = map[string]pipeline.PINSource{}
	s.pinDst = map[string]pipeline.PINDest{}
	for _, l := range s.cfg.Listeners {
		if l.MAC != nil {
			s.macKeys[l.Name] = pipeline.MACKey{Key: l.MAC.Key, Algorithm: hsm.MACAlgorithm(l.MAC.Algorithm)}
		}
		if l.PIN != nil {
			s.pinSrc[l.Name] = pipeline.PINSource{Key: l.PIN.Key, Format: hsm.PINFormat(l.PIN.Format), DUKPT: l.PIN.DUKPT}
		}
	}
	for _, r := range s.cfg.Routes {
		if r.PIN != nil {
			s.pinDst[r.Name] = pipeline.PINDest{Key: r.PIN.Key, Format: hsm.PINFormat(r.PIN.Format)}
		}
	}
}
