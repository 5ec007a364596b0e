package payswitch

import (
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/pipeline"
)

// securityKeys builds the per-route zone PIN keys from the configuration
// (a listener's keys are its policy: terminalserver, built with the listener).
func (s *Switch) securityKeys() {
	s.pinDst = map[string]pipeline.PINDest{}
	for _, r := range s.cfg.Routes {
		if r.PIN != nil {
			s.pinDst[r.Name] = pipeline.PINDest{Key: r.PIN.Key, Format: hsm.PINFormat(r.PIN.Format)}
		}
	}
}
