package config

import "slices"

// HSM backends by role: payshield serves PIN translation and MACs only;
// PANs at rest stay on the software or PKCS#11 backend.
var (
	dataBackends   = []string{"software", "pkcs11"}
	pinMACBackends = []string{"software", "pkcs11", "payshield"}
)

// validateHSM checks the hsm section: a known backend for each role and
// what the chosen backends require.
func (c *Config) validateHSM(bad func(format string, a ...any)) {
	if !slices.Contains(dataBackends, c.HSM.Backend) {
		bad("hsm.backend %q: want software or pkcs11 (payshield serves only hsm.pin_mac)", c.HSM.Backend)
	}
	if c.HSM.PINMAC != "" && !slices.Contains(pinMACBackends, c.HSM.PINMAC) {
		bad("hsm.pin_mac %q: want software, pkcs11 or payshield", c.HSM.PINMAC)
	}
	uses := func(name string) bool { return c.HSM.Backend == name || c.HSM.PINMACBackend() == name }
	if uses("pkcs11") && c.HSM.PKCS11.TokenLabel == "" {
		bad("hsm.pkcs11.token_label is required for the pkcs11 backend")
	}
	if uses("payshield") {
		p := c.HSM.Payshield
		if p.HeaderLength < 0 || p.HeaderLength > 32 {
			bad("hsm.payshield.header_length %d outside 0..32", p.HeaderLength)
		}
		if p.Connections < 1 || p.Pipeline < 1 {
			bad("hsm.payshield.connections and pipeline must be at least 1")
		}
		if p.Timeout <= 0 {
			bad("hsm.payshield.timeout must be positive")
		}
	}
}
