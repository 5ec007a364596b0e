package storetest

import (
	_ "embed"
	"encoding/json"
)

// The suite's token numbers live in a documented fixture, not in code.
//
//go:embed testdata/tokens.json
var tokensJSON []byte

// tokenNumbers are the suite's token numbers (testdata/tokens.json).
type tokenNumbers struct {
	Device   string `json:"device"`
	OneTime  string `json:"one_time"`
	Unknown  string `json:"unknown"`
	BatchA   string `json:"batch_a"`
	BatchB   string `json:"batch_b"`
	BatchBad string `json:"batch_bad"`
}

var tokens = func() tokenNumbers {
	var t tokenNumbers
	if err := json.Unmarshal(tokensJSON, &t); err != nil {
		panic("storetest: testdata/tokens.json: " + err.Error())
	}
	return t
}()
