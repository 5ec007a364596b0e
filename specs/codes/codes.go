// Package codes is the DE 39 response-code table, kept as data in
// response_codes.json, with named values for the codes the switch produces.
package codes

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// Code is a two-character DE 39 response code.
type Code string

// Codes the switch itself produces.
const (
	Approved          Code = "00"
	InvalidTxn        Code = "12"
	InvalidAmount     Code = "13"
	InvalidCard       Code = "14"
	OriginalNotFound  Code = "25"
	FormatError       Code = "30"
	ExpiredToken      Code = "33"
	IncorrectPIN      Code = "55"
	NotPermitted      Code = "57"
	Suspended         Code = "62"
	SecurityViolation Code = "63"
	IssuerUnavailable Code = "91"
	NoRoute           Code = "92"
	Duplicate         Code = "94"
	ReconcileError    Code = "95"
	SystemError       Code = "96"
)

// Issuer codes the switch watches (metrics series created at start).
const (
	DoNotHonour       Code = "05"
	InsufficientFunds Code = "51"
)

// Info describes one response code.
type Info struct {
	Code     Code   `json:"code"`
	Name     string `json:"name"`
	Meaning  string `json:"meaning"`
	Approved bool   `json:"approved"`
}

//go:embed response_codes.json
var raw []byte

var table = mustParse(raw)

func mustParse(b []byte) map[Code]Info {
	var list []Info
	if err := json.Unmarshal(b, &list); err != nil {
		panic(fmt.Sprintf("codes: response_codes.json: %v", err))
	}
	m := make(map[Code]Info, len(list))
	for _, i := range list {
		m[i.Code] = i
	}
	return m
}

// Lookup returns the table entry for c and whether it is known.
func Lookup(c Code) (Info, bool) {
	i, ok := table[c]
	return i, ok
}

// All returns every known code.
func All() []Info {
	out := make([]Info, 0, len(table))
	for _, i := range table {
		out = append(out, i)
	}
	return out
}

// String returns the code's two characters.
func (c Code) String() string { return string(c) }

// IsApproved reports whether c is an approval (00).
func (c Code) IsApproved() bool { return c == Approved }
