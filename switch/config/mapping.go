package config

import (
	"slices"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// Mapping is how a route's issuer-leg request is built from the
// terminal's and how the issuer's DE 39 reaches the terminal.
type Mapping struct {
	// Fields are the data elements that travel to the issuer; empty: every
	// field the issuer's dialect defines (the switch-owned ones are always
	// set by the switch).
	Fields []int `yaml:"fields"`
	// Drop are data elements never sent to this issuer.
	Drop []int `yaml:"drop"`
	// Constants are set on every request to this issuer, give-backs
	// included (e.g. DE 32, the acquiring institution).
	Constants map[int]string `yaml:"constants"`
	// ResponseCodes maps the issuer's DE 39 to the switch's, for the
	// terminal and the journal; unmapped codes pass through. Nothing maps
	// to or from "00": the approval decision is the issuer's.
	ResponseCodes map[string]string `yaml:"response_codes"`
}

// SwitchOwnedFields are the data elements the switch sets on the issuer
// leg itself: the bitmap, DE 2 (the real PAN), DE 11 and DE 37 (assigned
// per issuer link), DE 39, the PIN block (translated) and its KSN (DE 62),
// and the MACs. A route's mapping cannot drop or set them.
var SwitchOwnedFields = []int{1, specs.PAN, specs.STAN, specs.RRN, specs.ResponseCode,
	specs.PINBlock, 62, specs.MAC, specs.MAC2}

func checkMapping(bad func(string, ...any), where string, m Mapping) {
	checkIDs := func(key string, ids []int) {
		for _, id := range ids {
			switch {
			case id < 2 || id > 128:
				bad("%s: mapping.%s DE %d outside 2..128", where, key, id)
			case key != "fields" && slices.Contains(SwitchOwnedFields, id):
				bad("%s: mapping.%s DE %d is set by the switch and cannot be dropped or overridden", where, key, id)
			}
		}
	}
	checkIDs("fields", m.Fields)
	checkIDs("drop", m.Drop)
	for id, v := range m.Constants {
		checkIDs("constants", []int{id})
		if v == "" {
			bad("%s: mapping.constants DE %d is empty", where, id)
		}
		if slices.Contains(m.Drop, id) {
			bad("%s: mapping DE %d is both dropped and a constant", where, id)
		}
	}
	for from, to := range m.ResponseCodes {
		if len(from) != 2 || len(to) != 2 {
			bad("%s: mapping.response_codes %q: %q: codes are two characters", where, from, to)
		}
		if codes.Code(from).IsApproved() || codes.Code(to).IsApproved() {
			bad("%s: mapping.response_codes %q: %q: nothing maps to or from 00 (the approval decision is the issuer's)", where, from, to)
		}
	}
}
