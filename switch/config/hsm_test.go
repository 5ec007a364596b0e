package config

import (
	"strings"
	"testing"
)

func TestValidateHSMRoles(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(h *HSM)
		wantErr string // substring; "" = valid
		pinMAC  string // PINMACBackend() when valid
	}{
		{"default: software for both roles", func(*HSM) {}, "", "software"},
		{"payshield for PIN/MAC", func(h *HSM) { h.PINMAC = "payshield" }, "", "payshield"},
		{"pkcs11 for PIN/MAC, software data", func(h *HSM) { h.PINMAC, h.PKCS11.TokenLabel = "pkcs11", "t" }, "", "pkcs11"},
		{"same backend named twice", func(h *HSM) { h.PINMAC = "software" }, "", "software"},
		{"payshield cannot protect data", func(h *HSM) { h.Backend = "payshield" }, "payshield serves only hsm.pin_mac", ""},
		{"unknown PIN/MAC backend", func(h *HSM) { h.PINMAC = "thales" }, `hsm.pin_mac "thales"`, ""},
		{"pkcs11 PIN/MAC needs a token", func(h *HSM) { h.PINMAC = "pkcs11" }, "token_label is required", ""},
		{"payshield pool of nothing", func(h *HSM) { h.PINMAC, h.Payshield.Connections = "payshield", -1 }, "connections and pipeline", ""},
		{"payshield header too long", func(h *HSM) { h.PINMAC, h.Payshield.HeaderLength = "payshield", 33 }, "header_length", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c.HSM)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if got := c.HSM.PINMACBackend(); got != tt.pinMAC {
					t.Errorf("PIN/MAC backend %q, want %q", got, tt.pinMAC)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}
