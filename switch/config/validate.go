package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// checkName reports a missing name, or one seen already among the kind's
// (listener, route); seen collects them.
func checkName(bad func(string, ...any), seen map[string]bool, where, kind, name string) {
	if name == "" {
		bad("%s: name is required", where)
	} else if seen[name] {
		bad("%s: duplicate %s name", where, kind)
	}
	seen[name] = true
}

// Validate reports every problem it finds, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Listeners) == 0 {
		bad("no listeners configured")
	}
	c.Runtime.validate(bad)
	names := map[string]bool{}
	for i, l := range c.Listeners {
		where := fmt.Sprintf("listeners[%d] (%s)", i, l.Name)
		checkName(bad, names, where, "listener", l.Name)
		checkAddr(bad, where, l.Addr)
		checkDialect(bad, where, l.Spec, l.Header)
		if l.MaxFrame < 32 || l.MaxFrame > 65535 {
			bad("%s: max_frame %d outside 32..65535", where, l.MaxFrame)
		}
		if l.MaxConnections < 1 || l.MaxInFlight < 1 || l.IdleTimeout < 0 {
			bad("%s: max_connections, max_in_flight and idle_timeout must be positive", where)
		}
		checkPIN(bad, where, l.PIN)
		if l.PIN != nil && l.PIN.ZMK != "" {
			bad("%s: pin.zmk is for routes: a terminal key is not exchanged over the link", where)
		}
		checkServerTLS(bad, where, l.TLS)
		if l.MAC != nil {
			if l.MAC.Key == "" {
				bad("%s: mac.key is required", where)
			}
			if l.MAC.Algorithm != "retail" && l.MAC.Algorithm != "cmac" {
				bad("%s: mac.algorithm %q: want retail or cmac", where, l.MAC.Algorithm)
			}
		}
	}
	checkAddr(bad, "admin", c.Admin.Addr)
	c.checkDuplicateAddrs(bad)
	if t := c.Admin.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		bad("admin.tls: cert_file and key_file are both required")
	}
	if (c.InstanceID < 0 && !c.InstanceIDFromStore()) || c.InstanceID > 99 {
		bad("instance_id %d outside 0..99", c.InstanceID)
	}
	checkInstanceName(bad, c.InstanceName)
	c.Store.check(bad)
	if w := c.Journal.GroupWait; w != nil && (*w < 0 || *w > 10*time.Millisecond) {
		bad("journal.group_wait %s outside 0..10ms", *w)
	}
	if n := c.Journal.GroupSize; n < 1 || n > 256 {
		bad("journal.group_size %d outside 1..256", n)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}

	c.validateHSM(bad)
	if !isDigits(c.Tokens.BIN) || len(c.Tokens.BIN) > 8 {
		bad("tokens.bin %q must be 1-8 digits", c.Tokens.BIN)
	}

	routeNames := map[string]bool{}
	bins := map[string]string{}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d] (%s)", i, r.Name)
		checkName(bad, routeNames, where, "route", r.Name)
		if len(r.BINs) == 0 {
			bad("%s: at least one BIN prefix is required", where)
		}
		for _, b := range r.BINs {
			if !isDigits(b) || len(b) > 11 {
				bad("%s: BIN prefix %q must be 1-11 digits", where, b)
			} else if other, dup := bins[b]; dup {
				bad("%s: BIN prefix %s is already routed to %s", where, b, other)
			} else if strings.HasPrefix(b, c.Tokens.BIN) || strings.HasPrefix(c.Tokens.BIN, b) {
				bad("%s: BIN prefix %s overlaps the token range %s", where, b, c.Tokens.BIN)
			}
			bins[b] = r.Name
		}
		checkRouteLinks(bad, where, r)
		checkMapping(bad, where, r.Mapping)
		checkDialect(bad, where, r.Spec, r.Header)
		checkPIN(bad, where, r.PIN)
		if r.GiveBack != "reversal" && r.GiveBack != "refund" {
			bad("%s: give_back %q: want reversal or refund", where, r.GiveBack)
		}
		for _, rc := range r.SettleCodes {
			if len(rc) != 2 {
				bad("%s: settle_codes: %q is not a 2-character response code", where, rc)
			}
		}
		if r.PIN != nil && r.PIN.DUKPT {
			bad("%s: a zone PIN key cannot be DUKPT", where)
		}
		checkKeyExchange(bad, where, r)
		if r.STANQuarantine < r.Timeout {
			bad("%s: stan_quarantine %s is shorter than the timeout %s: a late answer could match a newer request", where, r.STANQuarantine, r.Timeout)
		}
		if r.Timeout < 0 || r.EchoInterval < 0 || r.ReconnectWait < 0 || r.MaxReconnectWait < r.ReconnectWait {
			bad("%s: durations must be positive and max_reconnect_wait >= reconnect_wait", where)
		}
	}
	return errors.Join(errs...)
}

func checkPIN(bad func(string, ...any), where string, p *PINKey) {
	if p == nil {
		return
	}
	if p.Key == "" {
		bad("%s: pin.key is required", where)
	}
	if p.Format != 0 && p.Format != 4 {
		bad("%s: pin.format %d: want 0 (TDES) or 4 (AES)", where, p.Format)
	}
}

func checkAddr(bad func(string, ...any), where, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		bad("%s: address %q: %v", where, addr, err)
	}
	checkAddrPort(bad, where, addr)
}

func checkDialect(bad func(string, ...any), where, spec, header string) {
	if _, err := specs.Load(spec); err != nil {
		bad("%s: %v", where, err)
	}
	if _, err := frame.ParseHeader(header); err != nil {
		bad("%s: %v", where, err)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}
