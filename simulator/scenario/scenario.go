// Package scenario runs field-test scenarios, written in YAML, against any
// ISO 8583 switch that speaks the terminal dialect: named steps with the
// message to send, the expected response code and optional checks on other
// fields, variables carried between steps, and a pass/fail report (table,
// summary line, JUnit XML). Each scenario's terminal behaves like a real
// POS terminal (terminal.POS): one outstanding request, its own timeout,
// and an automatic net cancel when an answer does not arrive.
//
// Steps that need this project's own tools, the issuer emulator's admin
// API (issuer_admin) or the switch's token provisioning API (token_api),
// are skipped when their address is not given, so the same suite runs
// against a foreign switch. The file format is described in
// simulator/scenarios/README.md.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Requirements a scenario or step can name besides variables.
const (
	// RequireIssuerAdmin is the issuer emulator's admin API (--issuer-admin).
	RequireIssuerAdmin = "issuer_admin"
	// RequireTokenAPI is the switch's token provisioning API (--admin).
	RequireTokenAPI = "token_api"
)

// Scenario is one scenario file (or one document of a multi-document file).
type Scenario struct {
	// Name identifies the scenario in the report (required).
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Terminal is DE 41 of the scenario's POS (default --terminal). POS
	// terminals with the same ID, switch and keys are shared between the
	// scenarios of a run, and so is their batch.
	Terminal string `yaml:"terminal"`
	// Merchant is DE 42 (default --merchant).
	Merchant string `yaml:"merchant"`
	// Switch overrides --switch (host:port), e.g. another listener.
	Switch string `yaml:"switch"`
	// Spec and Header override the dialect and length header.
	Spec   string `yaml:"spec"`
	Header string `yaml:"header"`
	// Timeout is the POS's response timeout (default --timeout, 30s).
	Timeout time.Duration `yaml:"timeout"`
	// MACKey (hex, 16 bytes) makes the terminal keyed: DE 64/128 retail MAC.
	MACKey string `yaml:"mac_key"`
	// PINKey (hex) is the static terminal PIN key (default the demo TPK).
	PINKey string `yaml:"pin_key"`
	// DUKPTBDK (hex) makes the terminal a TDES DUKPT PIN device.
	DUKPTBDK string `yaml:"dukpt_bdk"`
	// Requires names what the scenario needs: issuer_admin, token_api or a
	// variable that must be defined. Token and issuer steps add their own.
	Requires []string `yaml:"requires"`
	// Vars are scenario variables (expanded against the run's variables).
	Vars     map[string]string `yaml:"vars"`
	Setup    Setup             `yaml:"setup"`
	Steps    []Step            `yaml:"steps"`
	Teardown []Step            `yaml:"teardown"`

	// File is the file the scenario came from.
	File string `yaml:"-"`
}

// Setup runs before the steps.
type Setup struct {
	// Tokens are provisioned through the switch's token API; each token
	// number is stored in the variable named by the token's name.
	Tokens []TokenSpec `yaml:"tokens"`
}

// TokenSpec is one token to provision.
type TokenSpec struct {
	Name       string   `yaml:"name"`
	PAN        string   `yaml:"pan"`
	Expiry     string   `yaml:"expiry"`
	Kind       string   `yaml:"kind"` // device (default) or one-time
	Merchants  []string `yaml:"merchants"`
	EntryModes []string `yaml:"entry_modes"`
}

// Step is one named step: exactly one of Send, Token, Issuer or Sleep.
type Step struct {
	Name string `yaml:"name"`
	// Requires skips just this step when not met.
	Requires []string `yaml:"requires"`
	// Timeout overrides the POS's response timeout for this request.
	Timeout time.Duration `yaml:"timeout"`
	Send    *Send         `yaml:"send"`
	Expect  *Expect       `yaml:"expect"`
	// Save stores fields in variables: name -> DE number or field name of
	// the response, or request.N for the request.
	Save   map[string]string `yaml:"save"`
	Token  *TokenAction      `yaml:"token"`
	Issuer *IssuerAction     `yaml:"issuer"`
	Sleep  time.Duration     `yaml:"sleep"`
}

// TokenAction changes tokens through the switch's token API.
type TokenAction struct {
	Issue   *TokenSpec `yaml:"issue"`
	Suspend string     `yaml:"suspend"`
	Resume  string     `yaml:"resume"`
	Delete  string     `yaml:"delete"`
}

// IssuerAction drives the issuer emulator's admin API.
type IssuerAction struct {
	// Name is the issuer (card-a, card-b, prepaid).
	Name string `yaml:"name"`
	// Mode is normal or silent.
	Mode string `yaml:"mode"`
	// Latency is a duration such as 200ms.
	Latency string `yaml:"latency"`
	// Fault replaces the issuer's fault injection; an empty mapping clears it.
	Fault *Fault `yaml:"fault"`
	// Balance reads (and saves or checks) an account's balance.
	Balance *BalanceCheck `yaml:"balance"`
}

// Fault mirrors the emulator's POST /issuers/{name}/fault parameters.
type Fault struct {
	Drop             int    `yaml:"drop"`
	Late             string `yaml:"late"`
	Disconnect       bool   `yaml:"disconnect"`
	ChargeWhenSilent bool   `yaml:"charge_when_silent"`
}

// BalanceCheck reads an account's balance from the emulator's ledger.
type BalanceCheck struct {
	PAN string `yaml:"pan"`
	// Save stores the balance in this variable.
	Save string `yaml:"save"`
	// Equals checks the balance (after variable expansion).
	Equals string `yaml:"equals"`
	// Within keeps checking Equals until it holds, for at most this long.
	Within time.Duration `yaml:"within"`
}

// FieldValue is one data element of a Send.
type FieldValue struct {
	ID    int
	Value string
	// Unset removes a field the runner would otherwise fill in (YAML null).
	Unset bool
}

// Send is the request of a step. In YAML it is one mapping holding the
// options below and the fields, by DE number or by name (FieldNames), also
// under a nested `fields:` mapping.
type Send struct {
	// MTI defaults to 0200.
	MTI string
	// Ref names an earlier step: a 0400 repeats its request's fields and
	// names it in DE 90 (a merchant cancel); a refund (0200 with processing
	// code 20xxxx) takes DE 37 and 38 from its response.
	Ref string
	// Remaining makes a 0400 partial: DE 95 carries what remains after it.
	Remaining string
	// Totals "batch" fills the 0500's totals from the POS's batch.
	Totals string
	// PIN and PINPAN build DE 52 (format 0) under the terminal's PIN key,
	// bound to PINPAN (default DE 2). Never printed.
	PIN    string
	PINPAN string
	// MAC is auto (default: sign when keyed), none or wrong.
	MAC    string
	Fields []FieldValue
}

// FieldNames maps the friendly names usable in send, expect and save to
// ISO 8583:1987 data elements.
var FieldNames = map[string]int{
	"pan": 2, "processing_code": 3, "amount": 4, "transmission_time": 7, "stan": 11,
	"local_time": 12, "local_date": 13, "expiry": 14, "entry_mode": 22, "acquirer_id": 32,
	"forwarding_id": 33, "track2": 35, "rrn": 37, "approval_code": 38, "rc": 39, "response_code": 39,
	"terminal_id": 41, "merchant_id": 42, "private_data": 48, "currency": 49, "pin_block": 52,
	"icc_data": 55, "network_code": 70, "original_data": 90, "replacement_amounts": 95,
}

// ParseField resolves a DE number (2-128) or a name from FieldNames.
func ParseField(s string) (int, error) {
	if id, ok := FieldNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return id, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "de"))
	if err != nil || n < 2 || n > 128 {
		return 0, fmt.Errorf("unknown field %q (want a DE number 2-128 or one of %s)", s, fieldNameList())
	}
	return n, nil
}

func fieldNameList() string {
	names := make([]string, 0, len(FieldNames))
	for n := range FieldNames {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

var sendOptions = map[string]bool{"mti": true, "ref": true, "remaining": true, "totals": true,
	"pin": true, "pin_pan": true, "mac": true, "fields": true}

// UnmarshalYAML reads the send mapping: options and fields side by side.
func (s *Send) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: send must be a mapping", node.Line)
	}
	seen := map[int]int{}
	addField := func(k, v *yaml.Node) error {
		id, err := ParseField(k.Value)
		if err != nil {
			return fmt.Errorf("line %d: send: %w", k.Line, err)
		}
		if line, dup := seen[id]; dup {
			return fmt.Errorf("line %d: send: DE %d already given on line %d", k.Line, id, line)
		}
		seen[id] = k.Line
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			s.Fields = append(s.Fields, FieldValue{ID: id, Unset: true})
		case v.Kind == yaml.ScalarNode:
			s.Fields = append(s.Fields, FieldValue{ID: id, Value: v.Value})
		default:
			return fmt.Errorf("line %d: send: DE %d must be a single value", v.Line, id)
		}
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		key := strings.ToLower(k.Value)
		if !sendOptions[key] {
			if err := addField(k, v); err != nil {
				return err
			}
			continue
		}
		if key == "fields" {
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: send: fields must be a mapping", v.Line)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if err := addField(v.Content[j], v.Content[j+1]); err != nil {
					return err
				}
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: send: %s must be a single value", v.Line, key)
		}
		dst := map[string]*string{"mti": &s.MTI, "ref": &s.Ref, "remaining": &s.Remaining, "totals": &s.Totals,
			"pin": &s.PIN, "pin_pan": &s.PINPAN, "mac": &s.MAC}[key]
		*dst = v.Value
	}
	return nil
}

// Expect is what a send step's answer must look like.
type Expect struct {
	// RC lists the acceptable response codes (DE 39).
	RC []string
	// MTI is the expected response MTI (default: the request's response MTI).
	MTI string
	// NoResponse expects no answer within the timeout.
	NoResponse bool
	// NetCancel checks the POS's automatic 0400 (shorthand: its rc).
	NetCancel *Expect
	// Fields checks response fields: "present", "absent", "/regexp/",
	// "!=value" or the exact value, after variable expansion.
	Fields []FieldCheck
	// MaxTime fails the step when the answer took longer.
	MaxTime time.Duration
}

// FieldCheck is one expected response field.
type FieldCheck struct {
	ID   int
	Want string
}

var expectKeys = map[string]bool{"rc": true, "mti": true, "no_response": true, "net_cancel": true, "fields": true, "max_time": true}

// UnmarshalYAML reads an expect mapping (or a bare response code).
func (e *Expect) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode {
		e.RC = []string{node.Value}
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expect must be a mapping or a response code", node.Line)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		switch k.Value {
		case "rc":
			switch v.Kind {
			case yaml.ScalarNode:
				e.RC = []string{v.Value}
			case yaml.SequenceNode:
				for _, c := range v.Content {
					if c.Kind != yaml.ScalarNode {
						return fmt.Errorf("line %d: expect.rc: want codes", c.Line)
					}
					e.RC = append(e.RC, c.Value)
				}
			default:
				return fmt.Errorf("line %d: expect.rc: want a code or a list of codes", v.Line)
			}
		case "mti":
			e.MTI = v.Value
		case "no_response":
			if err := v.Decode(&e.NoResponse); err != nil {
				return err
			}
		case "max_time":
			if err := v.Decode(&e.MaxTime); err != nil {
				return err
			}
		case "net_cancel":
			e.NetCancel = &Expect{}
			if err := e.NetCancel.UnmarshalYAML(v); err != nil {
				return err
			}
		case "fields":
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: expect.fields must be a mapping", v.Line)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				fk, fv := v.Content[j], v.Content[j+1]
				id, err := ParseField(fk.Value)
				if err != nil {
					return fmt.Errorf("line %d: expect.fields: %w", fk.Line, err)
				}
				want := fv.Value
				if fv.Tag == "!!null" {
					want = "absent"
				} else if fv.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: expect.fields: DE %d must be a single value", fv.Line, id)
				}
				e.Fields = append(e.Fields, FieldCheck{ID: id, Want: want})
			}
		default:
			return fmt.Errorf("line %d: expect: unknown key %q (want %s)", k.Line, k.Value, keyList(expectKeys))
		}
	}
	return nil
}

func keyList(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// Load reads scenario files and directories (their *.yaml and *.yml files,
// in name order, not recursive).
func Load(paths ...string) ([]*Scenario, error) {
	var out []*Scenario
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		files := []string{p}
		if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("scenario: %w", err)
			}
			files = files[:0]
			for _, e := range entries {
				ext := strings.ToLower(filepath.Ext(e.Name()))
				if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("scenario: no *.yaml files in %s", p)
			}
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("scenario: %w", err)
			}
			scs, err := Parse(raw, f)
			if err != nil {
				return nil, err
			}
			out = append(out, scs...)
		}
	}
	return out, nil
}

// Parse decodes the scenarios of one file (documents separated by ---);
// unknown keys are errors.
func Parse(raw []byte, file string) ([]*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var out []*Scenario
	for i := 1; ; i++ {
		var sc Scenario
		err := dec.Decode(&sc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if reflect.ValueOf(sc).IsZero() {
			continue // an empty document
		}
		sc.File = file
		if err := sc.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, &sc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no scenario", file)
	}
	return out, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// literal reports whether s has no variables, so it can be checked now.
func literal(s string) bool { return !strings.Contains(s, "${") }
