package issuer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// Defaults applied by New to empty Config fields.
const (
	// DefaultOpenToBuy is every account's available balance in KRW unless
	// Config.DefaultBalance or Config.Balances say otherwise.
	DefaultOpenToBuy int64 = 1_000_000
	// DefaultHeader is the issuers' length header: 4 ASCII digits.
	DefaultHeader = "ascii4"
)

// Config describes one emulated issuer host.
type Config struct {
	// Name identifies the issuer in logs (card-a, card-b, prepaid).
	Name string `yaml:"name"`
	// Addr is the TCP listen address; 127.0.0.1:0 picks a free port.
	Addr string `yaml:"addr"`
	// Addrs are more endpoints of the same issuer (one ledger): each
	// listens too and can be taken down or made silent on its own.
	Addrs []string `yaml:"addrs,omitempty"`
	// BINs are the card number prefixes the issuer owns. Every Luhn-valid
	// PAN under one of them is an account.
	BINs []string `yaml:"bins"`
	// DefaultBalance is every account's opening open-to-buy in KRW
	// (0 means DefaultOpenToBuy).
	DefaultBalance int64 `yaml:"default_balance"`
	// Balances overrides the opening balance of single PANs.
	Balances map[string]int64 `yaml:"balances"`
	// Latency delays every authorisation, financial and reversal response
	// by a fixed amount. Leave it 0 when LatencyDist is set.
	Latency time.Duration `yaml:"latency"`
	// LatencyDist draws each response's delay from a distribution (fixed,
	// uniform, lognormal, pareto); Kind "" means fixed Latency.
	LatencyDist LatencyDist `yaml:"latency_dist"`
	// Seed seeds the issuer's random draws (latency, fault percentages,
	// garbage bytes) so that a run can be replayed; 0 means time-based
	// (Issuer.Seed tells which).
	Seed uint64 `yaml:"seed"`
	// Fault is the base fault injection from the start (Issuer.SetFault).
	Fault Fault `yaml:"fault"`
	// Schedule switches faults on and off at offsets since Start
	// (Issuer.SetSchedule).
	Schedule []ScheduledFault `yaml:"schedule"`
	// Spec is a built-in dialect name or a JSON spec path ("" means
	// specs.IssuerDialect).
	Spec string `yaml:"spec"`
	// Header is the length header: binary2, ascii4 or bcd2 ("" means ascii4).
	Header string `yaml:"header"`
	// ZPK is the clear zone PIN key shared with the switch, hex (16 or 24
	// bytes, TDES): PIN blocks (DE 52) arrive as ISO 9564 format 0 under it
	// ("" means devkeys.ZPKHex).
	ZPK string `yaml:"zpk"`
	// ZMK is the clear zone master key shared with the switch, hex (16 or
	// 24 bytes, TDES): ChangeKey sends a new ZPK under it ("" means no key
	// exchange).
	ZMK string `yaml:"zmk"`
	// PIN is every account's PIN: 4-12 digits ("" means devkeys.DemoPIN).
	PIN string `yaml:"pin"`
	// PINs overrides the PIN of single PANs.
	PINs map[string]string `yaml:"pins"`
	// Reversals says whether the host takes reversals (0400, 0420, 0421).
	// nil means true: card issuers reverse an approval on request. A
	// prepaid host (gift certificates, local currency) sets it to false and
	// answers reversals 12; the switch restores such balances with a 0200
	// refund (DE 3 20xxxx) by reference instead: DE 90 names the sale, and
	// the host credits what remains of it, at most once
	// (docs/giveback.md). A pointer, so that a Config literal that leaves
	// it out gets the default; set it with Bool(false).
	Reversals *bool `yaml:"reversals"`
}

// Bool returns a pointer to v, for Config.Reversals.
func Bool(v bool) *bool { return &v }

// AcceptsReversals reports whether the issuer takes reversals (Reversals
// unset means true).
func (c Config) AcceptsReversals() bool { return c.Reversals == nil || *c.Reversals }

// DefaultIssuers returns the demo issuers: two card issuers, which take
// reversals, and a prepaid (gift certificate / local currency) issuer,
// which does not, on loopback.
func DefaultIssuers() []Config {
	mk := func(name, addr, bin string) Config {
		return Config{
			Name:           name,
			Addr:           addr,
			BINs:           []string{bin},
			DefaultBalance: DefaultOpenToBuy,
			Spec:           specs.IssuerDialect,
			Header:         DefaultHeader,
			ZPK:            devkeys.ZPKHex,
			PIN:            devkeys.DemoPIN,
		}
	}
	prepaid := mk("prepaid", "127.0.0.1:9103", "9430")
	prepaid.Reversals = Bool(false) // refunds (0200, DE 3 20xxxx) only
	return []Config{
		mk("card-a", "127.0.0.1:9101", "9410"),
		mk("card-b", "127.0.0.1:9102", "9420"),
		prepaid,
	}
}

// withDefaults returns c with empty fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.DefaultBalance == 0 {
		c.DefaultBalance = DefaultOpenToBuy
	}
	if c.Spec == "" {
		c.Spec = specs.IssuerDialect
	}
	if c.Header == "" {
		c.Header = DefaultHeader
	}
	if c.ZPK == "" {
		c.ZPK = devkeys.ZPKHex
	}
	if c.PIN == "" {
		c.PIN = devkeys.DemoPIN
	}
	return c
}

// validate checks the fields that need no loading (spec and header are
// checked by New).
func (c Config) validate() error {
	if c.Name == "" {
		return errors.New("issuer name is empty")
	}
	if c.Addr == "" {
		return fmt.Errorf("issuer %q: listen address is empty", c.Name)
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("issuer %q: addrs[%d] is empty", c.Name, i)
		}
	}
	if len(c.BINs) == 0 {
		return fmt.Errorf("issuer %q: no BIN prefixes", c.Name)
	}
	for _, b := range c.BINs {
		if !allDigits(b) || len(b) > 11 {
			return fmt.Errorf("issuer %q: BIN prefix %q is not 1-11 digits", c.Name, b)
		}
	}
	if c.DefaultBalance < 0 {
		return fmt.Errorf("issuer %q: default balance %d is negative", c.Name, c.DefaultBalance)
	}
	if c.Latency < 0 {
		return fmt.Errorf("issuer %q: latency %s is negative", c.Name, c.Latency)
	}
	if c.LatencyDist.Kind != "" {
		if c.Latency != 0 {
			return fmt.Errorf("issuer %q: %w", c.Name, errLatencyAndDist)
		}
		if err := c.LatencyDist.Validate(); err != nil {
			return fmt.Errorf("issuer %q: latency_dist: %w", c.Name, err)
		}
	} else if c.LatencyDist != (LatencyDist{}) {
		return fmt.Errorf("issuer %q: latency_dist without a kind (want fixed, uniform, lognormal or pareto)", c.Name)
	}
	if err := c.Fault.Validate(); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	if err := validateSchedule(c.Schedule); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	for p, bal := range c.Balances {
		if !pan.Luhn(p) || !c.owns(p) {
			return fmt.Errorf("issuer %q: balance override for %s: not a Luhn-valid PAN under the issuer's BINs", c.Name, pan.Mask(p))
		}
		if bal < 0 {
			return fmt.Errorf("issuer %q: balance override for %s is negative", c.Name, pan.Mask(p))
		}
	}
	if _, err := c.zmk(); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	if _, err := c.zpk(); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	// PIN errors never show the PIN itself.
	if !validPIN(c.PIN) {
		return fmt.Errorf("issuer %q: PIN is not 4-12 digits", c.Name)
	}
	for p, pin := range c.PINs {
		if !pan.Luhn(p) || !c.owns(p) {
			return fmt.Errorf("issuer %q: PIN override for %s: not a Luhn-valid PAN under the issuer's BINs", c.Name, pan.Mask(p))
		}
		if !validPIN(pin) {
			return fmt.Errorf("issuer %q: PIN override for %s is not 4-12 digits", c.Name, pan.Mask(p))
		}
	}
	return nil
}

// zpk decodes the zone PIN key: hex, 16 or 24 bytes (double or triple
// length TDES). Errors never show the key.
func (c Config) zpk() ([]byte, error) {
	k, err := hex.DecodeString(c.ZPK)
	if err != nil {
		return nil, errors.New("zpk is not valid hex")
	}
	if len(k) != 16 && len(k) != 24 {
		return nil, fmt.Errorf("zpk must be 16 or 24 bytes (32 or 48 hex digits) of TDES key, got %d bytes", len(k))
	}
	return k, nil
}

// zmk decodes the zone master key (nil when none is configured).
func (c Config) zmk() ([]byte, error) {
	if c.ZMK == "" {
		return nil, nil
	}
	k, err := hex.DecodeString(c.ZMK)
	if err != nil || (len(k) != 16 && len(k) != 24) {
		return nil, errors.New("zmk must be 32 or 48 hex digits of TDES key")
	}
	return k, nil
}

// pinFor returns the PIN of account p.
func (c Config) pinFor(p string) string {
	if pin, ok := c.PINs[p]; ok {
		return pin
	}
	return c.PIN
}

// validPIN reports whether s is 4-12 decimal digits (ISO 9564).
func validPIN(s string) bool {
	return len(s) >= 4 && len(s) <= 12 && allDigits(s)
}

// owns reports whether p lies under one of the issuer's BIN prefixes.
func (c Config) owns(p string) bool {
	for _, b := range c.BINs {
		if len(p) > len(b) && p[:len(b)] == b {
			return true
		}
	}
	return false
}

// File is the YAML layout read by LoadConfig:
//
//	issuers:
//	  - name: card-a
//	    addr: 127.0.0.1:9101
//	    bins: ["9410"]
//	    default_balance: 1000000
//	    balances: {"<card number>": 50000} # a Luhn-valid PAN under bins
//	    spec: issuer87              # built-in dialect or a JSON spec path
//	    header: ascii4              # binary2, ascii4 or bcd2
//	    zpk: <32 or 48 hex digits>  # clear zone PIN key
//	    zmk: <32 or 48 hex digits>  # clear zone master key: key changes (ChangeKey)
//	    pin: "1234"
//	    pins: {"<card number>": "0000"}
//	    reversals: true             # false: refunds only (prepaid)
//	    # latency: 20ms             # a fixed delay, or (not both) a distribution:
//	    latency_dist: {kind: lognormal, median: 20ms, p99: 300ms, max: 2s}
//	                  # {kind: fixed, value: 20ms} | {kind: uniform, min: 5ms, max: 50ms}
//	                  # | {kind: pareto, median: 20ms, p99: 300ms}
//	    seed: 42                    # 0 or absent: time-based
//	    fault: {drop_percent: 0, garbage_percent: 0, wrong_stan_percent: 0,
//	            late_by: 0s, late_percent: 0, disconnect: false, charge_when_silent: false}
//	    schedule:                   # offsets since start; a window replaces fault
//	      - {from: 10s, to: 15s, fault: {drop_percent: 100}}
//	      - {from: 30s, to: 40s, fault: {garbage_percent: 20}}
type File struct {
	Issuers []Config `yaml:"issuers"`
}

// LoadConfig reads a YAML file of the form `issuers: [ ...Config... ]`,
// applies defaults and validates every issuer (spec and header included).
func LoadConfig(path string) ([]Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading issuer config: %w", err)
	}
	cfgs, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("issuer config %s: %w", path, err)
	}
	return cfgs, nil
}

// ParseConfig is LoadConfig on YAML bytes. Unknown keys are errors, so a
// misspelt setting does not silently fall back to its default.
func ParseConfig(raw []byte) ([]Config, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding YAML: %w", err)
	}
	if len(f.Issuers) == 0 {
		return nil, errors.New("no issuers configured")
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	out := make([]Config, 0, len(f.Issuers))
	for i, c := range f.Issuers {
		c = c.withDefaults()
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("issuer #%d: %w", i+1, err)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("issuer #%d: duplicate name %q", i+1, c.Name)
		}
		if addrs[c.Addr] && !hasEphemeralPort(c.Addr) {
			return nil, fmt.Errorf("issuer %q: address %s already used by another issuer", c.Name, c.Addr)
		}
		names[c.Name], addrs[c.Addr] = true, true
		out = append(out, c)
	}
	return out, nil
}

// check is validate plus loading the spec and parsing the header.
func (c Config) check() error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := specs.Load(c.Spec); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	if _, err := frame.ParseHeader(c.Header); err != nil {
		return fmt.Errorf("issuer %q: %w", c.Name, err)
	}
	return nil
}

func hasEphemeralPort(addr string) bool {
	return len(addr) >= 2 && addr[len(addr)-2:] == ":0"
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
