package terminalserver

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/tlsconf"
)

// handshakeTimeout bounds a TLS handshake when the listener has no frame
// timeout.
const handshakeTimeout = 10 * time.Second

// serveTLS completes the TLS handshake of an accepted socket (away from
// the accept loop) and serves it. A client without an acceptable
// certificate, or one speaking plain TCP, is refused and counted.
func (l *Listener) serveTLS(nc net.Conn, srv *tlsconf.Server) {
	defer l.wg.Done()
	tc := tls.Server(nc, srv.Config())
	d := l.cfg.FrameTimeout
	if d <= 0 {
		d = handshakeTimeout
	}
	ctx, cancel := context.WithTimeout(l.deps.Ctx, d)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.m.Refused.WithLabelValues(l.cfg.Name, "tls_handshake").Inc()
		l.log.Warn("TLS handshake refused", zap.String("remote", nc.RemoteAddr().String()), zap.String("reason", pan.Scrub(err.Error())))
		_ = nc.Close()
		return
	}
	l.log.Debug("TLS client", zap.String("remote", nc.RemoteAddr().String()), zap.String("client", tlsconf.PeerName(tc.ConnectionState())))
	if err := l.serveConn(tc); err != nil {
		l.log.Warn("starting connection", zap.Error(err))
		_ = tc.Close()
	}
}
