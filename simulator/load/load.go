// Package load is termsim's load generator: open-loop arrivals at a target
// rate (latency measured from each request's intended send time, so a
// stalled switch cannot hide behind coordinated omission) or a closed loop
// of N requests in flight, over a pool of simulated terminals or VAN links
// speaking ISO 8583. It records latency in an HDR histogram, prints a live
// progress line and a summary, and writes report.json and a self-contained
// report.html.
//
// It works against any ISO 8583 switch that answers 0200 and 0400 by STAN:
// the dialect (--spec), length header, terminal and merchant IDs and the
// card numbers are all options. Targets outside 127.0.0.0/8 and ::1 are
// refused unless Config.AllowRemote is set, and every run ends by itself
// (Config.Duration, at most MaxDuration, or Config.Count).
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/terminal"
)

// Limits and defaults.
const (
	MaxDuration      = time.Hour
	MaxRate          = 100_000
	MaxTerminals     = 10_000
	MaxClosed        = 10_000
	DefaultTimeout   = 5 * time.Second
	DefaultTerminals = 4
	DefaultAmountMin = 100
	DefaultAmountMax = 999
	// DefaultTerminalPrefix starts each terminal ID (DE 41); the rest is
	// the terminal's number, zero-padded to 8 characters: LT000001.
	DefaultTerminalPrefix = "LT"
	// DefaultMaxInFlight caps the requests in flight at once in open loop
	// with VAN links; arrivals beyond it wait in the generator and their
	// wait counts in their latency.
	DefaultMaxInFlight = 4096
)

// DemoCards are the Luhn-valid demo card numbers of the demo issuers (one
// per BIN 9410, 9420, 9430: the BIN, zeros, the check digit), used when no
// cards are given; simulator/scenarios/demo-cards.env lists the same.
var DemoCards = []string{demoCard("9410"), demoCard("9420"), demoCard("9430")}

func demoCard(bin string) string {
	partial := bin + "00000000000"
	return partial + string(pan.CheckDigit(partial))
}

// Arrival processes of the open loop.
const (
	Uniform = "uniform" // evenly spaced: 1/rate apart
	Poisson = "poisson" // exponential gaps with mean 1/rate
)

// ErrConfig is wrapped by every error about the configuration itself (as
// opposed to failures to reach or load the target).
var ErrConfig = errors.New("invalid load configuration")

// ErrRemoteTarget is wrapped when the target is outside loopback and
// AllowRemote is not set.
var ErrRemoteTarget = errors.New("target is not a loopback address (127.0.0.0/8 or ::1)")

// Config is one load run.
type Config struct {
	// Link to the switch; zero values take terminal's defaults.
	Addr, Spec, Header, MerchantID string
	// TerminalPrefix starts every terminal ID; default DefaultTerminalPrefix.
	TerminalPrefix string
	// AllowRemote permits a target outside 127.0.0.0/8 and ::1.
	AllowRemote bool

	// Rate is the open loop's target arrivals per second; Closed > 0
	// selects the closed loop instead (Rate must then be 0).
	Rate float64
	// Arrivals is Uniform (default) or Poisson.
	Arrivals string
	// Closed is the number of workers that each send back-to-back.
	Closed int
	// Duration ends the run (arrivals stop; answers are awaited for at most
	// Timeout more). At most MaxDuration; zero with Count set means
	// MaxDuration.
	Duration time.Duration
	// Count, when > 0, ends the run after that many requests.
	Count int64
	// Terminals is the number of terminal connections (each with its own
	// terminal ID). Default DefaultTerminals.
	Terminals int
	// OneOutstanding allows one request in flight per terminal (POS-like);
	// otherwise each terminal is a VAN link with many in flight.
	OneOutstanding bool
	// MaxInFlight caps requests in flight in open loop with VAN links.
	// Default DefaultMaxInFlight.
	MaxInFlight int

	// Mix chooses the request types. Default 100% purchases.
	Mix Mix
	// Cards are the card numbers (or tokens) DE 2 carries; default
	// DemoCards, plus generated demo cards when the run needs more money
	// than they hold. Never printed except masked 6+4.
	Cards []string
	// SwitchMetrics is the switch's /metrics URL, scraped before and after
	// the run to split its time from the issuers' (Report.SwitchTime);
	// "" skips it.
	SwitchMetrics string
	// CardsAreTokens says Cards are tokens (only shown in the report).
	CardsAreTokens bool
	// AmountMin..AmountMax is the range of purchase amounts (minor units).
	AmountMin, AmountMax int64
	// Currency is DE 49; default terminal.DefaultCurrency.
	Currency string

	// Timeout is each request's wait for its answer; default DefaultTimeout.
	Timeout time.Duration
	// NoNetCancel disables the 0400 sent for every purchase that timed out.
	NoNetCancel bool
	// Seed makes the mix, amounts and Poisson gaps reproducible; 0 is
	// random.
	Seed uint64

	// Logger receives connection events; nil means none.
	Logger *zap.Logger
	// Progress, when non-nil, receives a live progress line (\r-updated)
	// every ProgressInterval (default 250ms).
	Progress         io.Writer
	ProgressInterval time.Duration
}

func (c Config) withDefaults() Config {
	d := terminal.DefaultOptions()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.Spec = cmp.Or(c.Spec, d.Spec)
	c.Header = cmp.Or(c.Header, d.Header)
	c.MerchantID = cmp.Or(c.MerchantID, d.MerchantID)
	c.TerminalPrefix = cmp.Or(c.TerminalPrefix, DefaultTerminalPrefix)
	c.Arrivals = cmp.Or(c.Arrivals, Uniform)
	c.Terminals = cmp.Or(c.Terminals, DefaultTerminals)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	if c.Mix.total() == 0 {
		c.Mix = Mix{Purchase: 100}
	}
	if c.AmountMin == 0 && c.AmountMax == 0 {
		c.AmountMin, c.AmountMax = DefaultAmountMin, DefaultAmountMax
	}
	if len(c.Cards) == 0 {
		c.Cards = cardsFor(c) // enough demo cards not to run dry
	}
	c.Currency = cmp.Or(c.Currency, terminal.DefaultCurrency)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.Duration == 0 && c.Count > 0 {
		c.Duration = MaxDuration
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 250 * time.Millisecond
	}
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	return c
}

// validate checks c after defaults are applied.
func (c Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Closed < 0 || c.Closed > MaxClosed:
		return bad("closed loop of %d workers: give 1..%d", c.Closed, MaxClosed)
	case c.Closed > 0 && c.Rate != 0:
		return bad("give a rate (open loop) or a closed-loop size, not both")
	case c.Closed == 0 && (c.Rate <= 0 || c.Rate > MaxRate):
		return bad("rate %g per second: give 0 < rate <= %d (or a closed loop)", c.Rate, MaxRate)
	case c.Arrivals != Uniform && c.Arrivals != Poisson:
		return bad("arrivals %q: uniform or poisson", c.Arrivals)
	case c.Duration <= 0 && c.Count <= 0:
		return bad("a duration (or a count) is required: the run must end by itself")
	case c.Duration > MaxDuration:
		return bad("duration %s is longer than %s", c.Duration, MaxDuration)
	case c.Count < 0:
		return bad("count %d is negative", c.Count)
	case c.Terminals < 1 || c.Terminals > MaxTerminals:
		return bad("%d terminals: give 1..%d", c.Terminals, MaxTerminals)
	case c.Closed > 0 && c.OneOutstanding && c.Terminals < c.Closed:
		return bad("a closed loop of %d with one request outstanding per terminal needs at least %d terminals", c.Closed, c.Closed)
	case c.MaxInFlight < 1:
		return bad("max in flight %d: give at least 1", c.MaxInFlight)
	case c.Timeout <= 0:
		return bad("timeout must be positive")
	case c.AmountMin < 1 || c.AmountMax < c.AmountMin || c.AmountMax > terminal.MaxAmount:
		return bad("amount range %d..%d: give 1 <= min <= max", c.AmountMin, c.AmountMax)
	case len(c.Currency) != 3 || !isDigits(c.Currency):
		return bad("currency %q is not a 3-digit ISO 4217 code", c.Currency)
	case c.Mix.Purchase < 0 || c.Mix.Cancel < 0 || c.Mix.Refund < 0:
		return bad("mix weights must not be negative")
	case c.Mix.Purchase == 0:
		return bad("the mix needs purchases: cancels and refunds name earlier approved sales")
	}
	if digits := len(strconv.Itoa(c.Terminals)); len(c.TerminalPrefix)+digits > 8 {
		return bad("terminal prefix %q leaves no room for %d terminal numbers in an 8-character terminal ID", c.TerminalPrefix, c.Terminals)
	}
	if len(c.MerchantID) > 15 {
		return bad("merchant ID %q is longer than 15 characters", c.MerchantID)
	}
	for i, card := range c.Cards {
		if len(card) < 12 || len(card) > 19 || !isDigits(card) {
			return bad("card %d (%s) is not 12-19 digits", i+1, maskCard(card))
		}
	}
	return nil
}

// terminalID returns the ID (DE 41) of terminal i (0-based): the prefix and
// i+1 zero-padded to 8 characters.
func (c Config) terminalID(i int) string {
	n := strconv.Itoa(i + 1)
	return c.TerminalPrefix + strings.Repeat("0", 8-len(c.TerminalPrefix)-len(n)) + n
}

// Mix is the relative weight of each request type.
type Mix struct {
	Purchase, Cancel, Refund int
}

func (m Mix) total() int { return m.Purchase + m.Cancel + m.Refund }

// String renders the mix as ParseMix reads it.
func (m Mix) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		w    int
	}{{"purchase", m.Purchase}, {"cancel", m.Cancel}, {"refund", m.Refund}} {
		if p.w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", p.name, p.w))
		}
	}
	return strings.Join(parts, ",")
}

// ParseMix reads "purchase=90,cancel=8,refund=2" (weights, not necessarily
// summing to 100; sale and reversal are accepted as aliases).
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("%w: mix entry %q is not name=weight", ErrConfig, part)
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return Mix{}, fmt.Errorf("%w: mix weight %q of %s is not a non-negative integer", ErrConfig, val, name)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		var dst *int
		switch name {
		case "purchase", "sale":
			dst, name = &m.Purchase, "purchase"
		case "cancel", "reversal":
			dst, name = &m.Cancel, "cancel"
		case "refund":
			dst = &m.Refund
		default:
			return Mix{}, fmt.Errorf("%w: mix names purchase, cancel and refund, not %q", ErrConfig, name)
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("%w: %s appears twice in the mix", ErrConfig, name)
		}
		seen[name] = true
		*dst = w
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("%w: mix %q has no positive weight", ErrConfig, s)
	}
	return m, nil
}

// CheckTarget resolves addr (host:port) and returns the address to dial: the
// resolved IP and port. Unless allowRemote is set, every address the host
// resolves to must be loopback (127.0.0.0/8 or ::1); otherwise the error
// wraps ErrRemoteTarget. Dialing the checked IP, not the name, keeps a
// second lookup from landing elsewhere.
func CheckTarget(ctx context.Context, addr string, allowRemote bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: target %q is not host:port: %v", ErrConfig, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%w: target port %q is not 1-65535", ErrConfig, port)
	}
	if host == "" {
		return "", fmt.Errorf("%w: target %q has no host", ErrConfig, addr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		found, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
		if err != nil {
			return "", fmt.Errorf("resolving target host %q: %w", host, err)
		}
		ips = found
		sort.Slice(ips, func(i, j int) bool { return ips[i].Is4() && !ips[j].Is4() }) // prefer IPv4
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolving target host %q: no addresses", host)
	}
	if !allowRemote {
		for _, ip := range ips {
			if !isLoopback(ip) {
				return "", fmt.Errorf("%w: %s resolves to %s; load and failure tests only target this machine (give --allow-remote only where remote load is permitted)",
					ErrRemoteTarget, addr, ip)
			}
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}

func isLoopback(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.As4()[0] == 127
	}
	return ip == netip.IPv6Loopback()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
