// Package terminal simulates POS terminals and VAN links that speak ISO 8583 to the switch.
package terminal

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// Defaults applied by DefaultOptions and by Dial to zero Options fields.
const (
	DefaultAddr       = "127.0.0.1:8583"
	DefaultHeader     = "binary2"
	DefaultTerminalID = "TERM0001"
	DefaultMerchantID = "MERCHANT0000001"
	DefaultTimeout    = 30 * time.Second
)

// MaxSTAN is the largest systems trace audit number (DE 11, six digits);
// STANs run 1..MaxSTAN and then wrap to 1, never 000000.
const MaxSTAN = 999999

// Options configures a simulated terminal and its link to the switch.
type Options struct {
	// Addr is the switch's host:port. Default 127.0.0.1:8583.
	Addr string
	// Spec is a built-in dialect name or a JSON spec file. Default
	// specs.TerminalDialect.
	Spec string
	// Header is the length header: binary2 (default), ascii4 or bcd2.
	Header string
	// TerminalID goes into DE 41 (up to 8 characters). Default TERM0001.
	TerminalID string
	// MerchantID goes into DE 42 (up to 15 characters). Default
	// MERCHANT0000001.
	MerchantID string
	// Timeout bounds connecting and each request's wait for its response.
	// Default 30s.
	Timeout time.Duration
	// Logger receives connection events; nil means no logging. It never
	// receives a full PAN, a PIN, a PIN block or a key.
	Logger *zap.Logger
	// PINKey is the static terminal PIN key (TPK) in clear, 16 or 24 bytes
	// of TDES key, that encrypts PIN blocks. Default: the demo TPK
	// (devkeys.TPKHex).
	PINKey []byte
	// DUKPTBDK, when non-nil, makes the terminal a TDES DUKPT device
	// instead (16-byte BDK): each PIN block is encrypted under the PIN key
	// of a fresh KSN (devkeys.KSNPrefixTDES and the client's transaction
	// counter, from 1), and DE 62 carries the KSN. A real terminal holds
	// an initial key (IPEK) derived from the BDK, never the BDK itself;
	// this is a simulator.
	DUKPTBDK []byte
	// TLS, when set, connects over TLS with it (its Certificates for
	// mutual TLS, RootCAs and ServerName to check the switch). Default:
	// plain TCP.
	TLS *tls.Config
}

// DefaultOptions returns the options of a terminal on the local switch's
// terminal listener.
func DefaultOptions() Options {
	return Options{
		Addr:       DefaultAddr,
		Spec:       specs.TerminalDialect,
		Header:     DefaultHeader,
		TerminalID: DefaultTerminalID,
		MerchantID: DefaultMerchantID,
		Timeout:    DefaultTimeout,
		Logger:     zap.NewNop(),
		PINKey:     devkeys.Bytes(devkeys.TPKHex),
	}
}

// withDefaults fills every zero field of o from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	o.Addr = cmp.Or(o.Addr, d.Addr)
	o.Spec = cmp.Or(o.Spec, d.Spec)
	o.Header = cmp.Or(o.Header, d.Header)
	o.TerminalID = cmp.Or(o.TerminalID, d.TerminalID)
	o.MerchantID = cmp.Or(o.MerchantID, d.MerchantID)
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	o.Logger = cmp.Or(o.Logger, d.Logger)
	if o.PINKey == nil {
		o.PINKey = d.PINKey
	}
	return o
}

// prepared is o with its defaults filled in, checked, and its message
// dialect loaded.
func (o Options) prepared() (Options, *iso8583.MessageSpec, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return o, nil, fmt.Errorf("terminal: %w", err)
	}
	spec, err := specs.Load(o.Spec)
	if err != nil {
		return o, nil, fmt.Errorf("terminal: %w: %w", ErrConfig, err)
	}
	return o, spec, nil
}

// ErrConfig is wrapped by Dial's errors about the options themselves (an
// unknown spec or header, an over-long terminal or merchant ID, a PIN key
// of the wrong length), as opposed to failures to reach the switch.
var ErrConfig = errors.New("invalid terminal options")

// validate checks o after defaults are applied.
func (o Options) validate() error {
	if len(o.TerminalID) > 8 {
		return fmt.Errorf("%w: terminal ID %q is longer than 8 characters", ErrConfig, o.TerminalID)
	}
	if len(o.MerchantID) > 15 {
		return fmt.Errorf("%w: merchant ID %q is longer than 15 characters", ErrConfig, o.MerchantID)
	}
	return o.validateKeys()
}

// STANGenerator hands out systems trace audit numbers 1..MaxSTAN in turn,
// wrapping to 1; it never yields 000000. It is safe for concurrent use.
type STANGenerator struct {
	n atomic.Uint64 // the last value handed out, before reduction
}

// NewSTANGenerator returns a generator whose first STAN is start, brought
// into 1..MaxSTAN (0 and negative values start at 1).
func NewSTANGenerator(start int) *STANGenerator {
	if start < 1 {
		start = 1
	}
	g := &STANGenerator{}
	g.n.Store(uint64((start - 1) % MaxSTAN)) // the next Add yields start
	return g
}

// NewRandomSTANGenerator returns a generator starting at a random STAN, so
// that restarted simulators do not replay the previous run's numbers.
func NewRandomSTANGenerator() *STANGenerator {
	return NewSTANGenerator(1 + rand.IntN(MaxSTAN))
}

// NextInt returns the next STAN as a number in 1..MaxSTAN.
func (g *STANGenerator) NextInt() int {
	return int((g.n.Add(1)-1)%MaxSTAN) + 1
}

// Next returns the next STAN as six zero-padded digits.
func (g *STANGenerator) Next() string {
	return fmt.Sprintf("%06d", g.NextInt())
}

// NormalizeSTAN returns s as six zero-padded digits. DE 11 travels at full
// width ("000123"), so this only matters for STANs written short by hand
// ("123") or received from a peer that strips zeros. Values that are not
// 1-6 digits are returned unchanged.
func NormalizeSTAN(s string) string {
	if s == "" || len(s) > 6 || strings.Trim(s, "0123456789") != "" {
		return s
	}
	return strings.Repeat("0", 6-len(s)) + s
}

// stanRequestID matches responses to requests by their normalized STAN.
type stanRequestID struct{}

func (stanRequestID) GenerateRequestID(m *iso8583.Message) (string, error) {
	if m == nil {
		return "", errors.New("message required")
	}
	s, err := m.GetString(specs.STAN)
	if err != nil {
		return "", fmt.Errorf("reading STAN (DE 11): %w", err)
	}
	if s == "" {
		return "", errors.New("message has no STAN (DE 11)")
	}
	return NormalizeSTAN(s), nil
}

// Client is one simulated terminal (or VAN link) connected to the switch.
// Its methods are safe for concurrent use; responses are matched to
// requests by STAN.
type Client struct {
	opts Options
	spec *iso8583.MessageSpec
	conn *connection.Connection
	stan *STANGenerator
	ksn  ksnCounter // DUKPT transaction counter
	log  *zap.Logger
	now  func() time.Time
}

// Dial connects to the switch at opts.Addr. Zero fields of opts take their
// defaults. The context bounds the connection attempt.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	opts, spec, err := opts.prepared()
	if err != nil {
		return nil, err
	}
	header, err := frame.ParseHeader(opts.Header)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w: %w", ErrConfig, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("terminal: connecting to switch %s: %w", opts.Addr, err)
	}
	// A short response timeout (load tests use 1 ms to force timeouts) is
	// no reason to give up on the TCP connect itself.
	connectTimeout := max(opts.Timeout, 5*time.Second)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < connectTimeout {
		connectTimeout = max(time.Until(dl), time.Millisecond)
	}
	log := opts.Logger.With(zap.String("switch", opts.Addr), zap.String("terminal_id", opts.TerminalID))
	codec := &frame.Codec{
		Header: header,
		Spec:   spec,
		OnUndecodable: func(e *frame.UndecodableError) {
			log.Warn("undecodable message from switch", zap.String("mti", e.MTI), zap.Error(e.Err))
		},
	}
	var tlsOpt []connection.Option
	if t := opts.TLS; t != nil {
		tlsOpt = append(tlsOpt, connection.SetTLSConfig(func(c *tls.Config) {
			c.Certificates, c.RootCAs, c.ServerName = t.Certificates, t.RootCAs, t.ServerName
			c.GetClientCertificate = t.GetClientCertificate
		}))
	}
	conn, err := connection.New(opts.Addr, spec, nil, nil, append(tlsOpt,
		connection.SetMessageReader(codec),
		connection.SetMessageWriter(codec),
		connection.SendTimeout(opts.Timeout),
		connection.ConnectTimeout(connectTimeout),
		connection.SetRequestIDGenerator(stanRequestID{}),
		connection.ErrorHandler(func(err error) {
			log.Warn("switch connection error", zap.Error(err))
		}),
		connection.InboundMessageHandler(func(_ *connection.Connection, m *iso8583.Message) {
			mti, _ := m.GetMTI()
			stan, _ := m.GetString(specs.STAN)
			log.Warn("unmatched message from switch (late response or unsolicited)",
				zap.String("mti", mti), zap.String("stan", NormalizeSTAN(stan)))
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("terminal: creating connection to switch %s: %w", opts.Addr, err)
	}
	if err := conn.ConnectCtx(ctx); err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	log.Debug("connected to switch")
	return &Client{
		opts: opts,
		spec: spec,
		conn: conn,
		stan: NewRandomSTANGenerator(),
		log:  log,
		now:  time.Now,
	}, nil
}

// Options returns the client's options with defaults applied.
func (c *Client) Options() Options { return c.opts }

// Spec returns the message spec the client packs and unpacks with.
func (c *Client) Spec() *iso8583.MessageSpec { return c.spec }

// NextSTAN returns the next STAN of this client, for callers that build
// their own messages for Send.
func (c *Client) NextSTAN() string { return c.stan.Next() }

// NextKSN returns the next DUKPT key serial number of this client (the
// demo device's, see DemoKSN), for callers that build their own messages
// with NewPurchaseMessageKSN. Purchase draws one for each PIN purchase
// under DUKPT.
func (c *Client) NextKSN() []byte { return DemoKSN(c.ksn.next()) }

// Close waits for requests in flight (at most Options.Timeout) and closes
// the connection.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("terminal: closing connection to switch %s: %w", c.opts.Addr, err)
	}
	return nil
}

// Send sends msg as it is and waits for the response with the same STAN,
// for at most Options.Timeout or until ctx ends. Errors name MTI, STAN and
// switch address, never card data.
func (c *Client) Send(ctx context.Context, msg *iso8583.Message) (*iso8583.Message, error) {
	mti, _ := msg.GetMTI()
	stan, _ := msg.GetString(specs.STAN)
	stan = NormalizeSTAN(stan)
	what := fmt.Sprintf("terminal: %s STAN %s to switch %s", mti, stan, c.opts.Addr)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// The wait is bounded by Options.Timeout or by ctx's deadline, whichever
	// is sooner. When ctx's deadline is the binding limit, the connection's
	// send timeout may fire just before ctx itself reports it; that error
	// must still wrap context.DeadlineExceeded.
	timeout := c.opts.Timeout
	ctxBound := false
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = max(left, time.Millisecond)
			ctxBound = true
		}
	}
	type result struct {
		msg *iso8583.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.conn.Send(msg, connection.SendTimeout(timeout))
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w: %w", what, ctx.Err(), r.err)
		}
		if errors.Is(r.err, connection.ErrSendTimeout) {
			if ctxBound {
				return nil, fmt.Errorf("%s: no response within %s: %w: %w", what, timeout, context.DeadlineExceeded, r.err)
			}
			return nil, fmt.Errorf("%s: no response within %s: %w", what, timeout, r.err)
		}
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", what, r.err)
		}
		return r.msg, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// Purchase sends a 0200 purchase with the client's next STAN and returns
// the switch's answer. An error means no response arrived (or the purchase
// was invalid, wrapping ErrInvalidPurchase); a decline is a Result.
func (c *Client) Purchase(ctx context.Context, p Purchase) (Result, error) {
	stan := c.stan.Next()
	var ksn []byte
	if p.PIN != "" && c.opts.DUKPTBDK != nil {
		ksn = c.NextKSN()
	}
	msg, err := NewPurchaseMessageKSN(c.spec, p, stan, ksn, c.now(), c.opts)
	if err != nil {
		return Result{}, err
	}
	masked := p.MaskedPAN()
	start := time.Now()
	resp, err := c.Send(ctx, msg)
	latency := time.Since(start)
	if err != nil {
		c.log.Info("purchase got no response", zap.String("stan", stan), zap.String("pan", masked),
			zap.Duration("waited", latency), zap.Error(err))
		return Result{STAN: stan, MaskedPAN: masked, Latency: latency}, fmt.Errorf("purchase: %w", err)
	}
	r := newResult(resp, masked, latency)
	if want, _ := specs.ResponseMTI(specs.MTIFinancialRequest); r.MTI != want {
		c.log.Warn("unexpected response MTI", zap.String("mti", r.MTI), zap.String("want", want), zap.String("stan", stan))
	}
	c.log.Debug("purchase answered", zap.String("stan", r.STAN), zap.String("pan", masked),
		zap.String("rc", r.ResponseCode), zap.Duration("latency", latency))
	return r, nil
}
