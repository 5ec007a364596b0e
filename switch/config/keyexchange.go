package config

import "time"

// MinKeyExchangeEvery is the shortest key_exchange.every accepted: a
// schedule is hours or days; a few seconds is a typo.
const MinKeyExchangeEvery = time.Minute

// KeyExchange is a route's switch-initiated key change: every Every the
// switch sends the issuer an 0800 with DE 70 161 and no key, asking for a
// new zone PIN key, which the issuer sends in its own 0800/161 under
// pin.zmk (docs/links.md#key-exchange). Absent or every 0: off (the
// default); the issuer may still change the key on its own.
type KeyExchange struct {
	Every time.Duration `yaml:"every"`
}

// KeyExchangeEvery is the route's schedule, 0 when off.
func (r IssuerRoute) KeyExchangeEvery() time.Duration {
	if r.KeyExchange == nil {
		return 0
	}
	return r.KeyExchange.Every
}

func checkKeyExchange(bad func(string, ...any), where string, r IssuerRoute) {
	every := r.KeyExchangeEvery()
	switch {
	case every == 0:
	case every < MinKeyExchangeEvery:
		bad("%s: key_exchange.every %s is shorter than %s", where, every, MinKeyExchangeEvery)
	case r.PIN == nil || r.PIN.ZMK == "":
		bad("%s: key_exchange needs pin.zmk: the new key travels under the zone master key", where)
	}
}
