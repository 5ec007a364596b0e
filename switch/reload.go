package payswitch

import (
	"context"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
	"github.com/kbpay/switch/switch/reconfig"
	"github.com/kbpay/switch/switch/terminalserver"
	"github.com/kbpay/switch/switch/upstream"
)

// The running configuration and its reload are switch/reconfig; this is
// what it gets from the switch.

// ErrReloadRefused wraps every reason a reload changed nothing.
var ErrReloadRefused = reconfig.ErrRefused

// ReloadSummary says what a reload changed.
type ReloadSummary = reconfig.Summary

// WithConfigFile names the configuration file POST /v1/reload re-reads
// (switchd passes its --config).
func WithConfigFile(path string) Option {
	return func(o *options) { o.configFile = path }
}

// ReloadFile re-reads the configuration file (WithConfigFile) and
// reloads it.
func (s *Switch) ReloadFile(ctx context.Context) (ReloadSummary, error) {
	return s.running.ReloadFile(ctx)
}

// Reload applies cfg as a diff of the running configuration, without
// dropping a connection or a transaction in flight (reconfig.Running.Reload
// says what changes in place and what needs a restart).
func (s *Switch) Reload(ctx context.Context, cfg config.Config) (ReloadSummary, error) {
	return s.running.Reload(ctx, cfg)
}

// ReloadRoutes applies cfg as a diff of the running configuration (what
// SIGHUP and POST /v1/reload do): see Reload.
func (s *Switch) ReloadRoutes(cfg config.Config) error {
	_, err := s.Reload(context.Background(), cfg)
	return err
}

// newLink builds a route's link in this instance's STAN partition (New
// sets the partition once the store has told the instance number; a
// relinked route's link shares the old one's STANs, partition included).
func (s *Switch) newLink(rc config.IssuerRoute, opts ...upstream.Option) (*upstream.Link, error) {
	l, err := upstream.New(rc, s.log, s.linkMetrics, append([]upstream.Option{
		upstream.WithLateResponseHandler(func(route string, msg *iso8583.Message) { s.recovery.LateAnswer(route, msg) }),
		upstream.WithRRNs(func() (string, error) { return s.rrns.Next() }),
		upstream.WithKeyExchange(func() hsm.HSM { return s.hsms.PINMAC }),
		upstream.WithKeyStore(func() upstream.KeyStore {
			if s.store == nil {
				return nil // the store opens after the links
			}
			return s.store
		}),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	l.PartitionSTANs(s.instance, s.cfg.Store.STANPartitions)
	return l, nil
}

// reloadHooks is the switch as a reload sees it (reconfig.Switch).
type reloadHooks struct{ s *Switch }

var _ reconfig.Switch = reloadHooks{}

func (h reloadHooks) NewLink(rc config.IssuerRoute, opts ...upstream.Option) (*upstream.Link, error) {
	return h.s.newLink(rc, opts...)
}

func (h reloadHooks) NewListener(lc config.Listener) (*terminalserver.Listener, error) {
	return h.s.newListener(lc)
}

func (h reloadHooks) CheckKeys(needs []keyring.Need) error {
	return keyring.Missing(h.s.ctx, h.s.hsms.PINMAC, needs)
}

func (h reloadHooks) StartSAF(route string) { h.s.saf.AddRoute(h.s.ctx, route) }

func (h reloadHooks) HoldGroups(wait time.Duration, size int) bool {
	if h.s.holdGroups == nil {
		return false
	}
	h.s.holdGroups(wait, size)
	return true
}
