package payswitch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/switch/pipeline"
)

// newDispatcher builds the stage lists (pipeline.CardLists) over the
// switch's parts; the order of every list is checked here, at start.
func (s *Switch) newDispatcher(reg prometheus.Registerer) (*pipeline.Dispatcher, error) {
	return pipeline.NewDispatcher(pipeline.CardLists(pipeline.Deps{
		HSM:      s.pinmac,
		Ledger:   s.ledger,
		Tokens:   tokenPath{s.tokens},
		OverRate: s.traffic.RefusedOverRate,
	}), pipeline.NewStageTimer(reg))
}
