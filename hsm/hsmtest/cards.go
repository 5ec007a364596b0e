package hsmtest

import (
	_ "embed"
	"encoding/json"
)

// The suite's test card numbers live in a documented fixture, not in code.
//
//go:embed testdata/cards.json
var cardsJSON []byte

type testCards struct {
	PAN      string   `json:"pan"`
	WrongPAN string   `json:"wrong_pan"`
	Lengths  []string `json:"lengths"`
}

var cards = func() testCards {
	var c testCards
	if err := json.Unmarshal(cardsJSON, &c); err != nil {
		panic("hsmtest: testdata/cards.json: " + err.Error())
	}
	return c
}()
