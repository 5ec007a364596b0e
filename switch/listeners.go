package payswitch

import (
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/terminalserver"
)

// The wiring of the terminal and VAN listeners (switch/terminalserver):
// what they get from the switch. A reload changes their set
// (switch/reconfig).

// newListener builds the listener of lc over the switch's pipeline.
func (s *Switch) newListener(lc config.Listener) (*terminalserver.Listener, error) {
	return terminalserver.New(lc, terminalserver.Deps{
		Ctx: s.ctx, Handler: s.dispatch, PINMAC: s.pinmac, Txns: &s.txns,
		Metrics: s.traffic.Server(), Log: s.log,
	})
}

// ListenerAddr returns the bound address of the named listener ("" when
// unknown or not started), for tests that listen on port 0.
func (s *Switch) ListenerAddr(name string) string {
	if l := s.listeners.Find(name); l != nil {
		return l.Addr()
	}
	return ""
}

func (s *Switch) stopListeners() { s.listeners.StopAccepting() }
