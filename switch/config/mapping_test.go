package config

import (
	"strings"
	"testing"
)

func TestMappingValidation(t *testing.T) {
	tests := []struct {
		name    string
		mapping Mapping
		wantErr string // substring; "" means valid
	}{
		{name: "none"},
		{name: "fields, drop, constants and codes", mapping: Mapping{Fields: []int{3, 4, 41}, Drop: []int{55},
			Constants: map[int]string{32: "123456"}, ResponseCodes: map[string]string{"05": "51", "14": "56"}}},
		{name: "dropping the PAN", mapping: Mapping{Drop: []int{2}}, wantErr: "mapping.drop DE 2 is set by the switch"},
		{name: "dropping the STAN", mapping: Mapping{Drop: []int{11}}, wantErr: "mapping.drop DE 11 is set by the switch"},
		{name: "a constant RRN", mapping: Mapping{Constants: map[int]string{37: "000000000001"}}, wantErr: "mapping.constants DE 37 is set by the switch"},
		{name: "a constant PIN block", mapping: Mapping{Constants: map[int]string{52: "00"}}, wantErr: "mapping.constants DE 52"},
		{name: "a constant MAC", mapping: Mapping{Constants: map[int]string{64: "00"}}, wantErr: "mapping.constants DE 64"},
		{name: "dropping the MAC", mapping: Mapping{Drop: []int{128}}, wantErr: "mapping.drop DE 128"},
		{name: "field out of range", mapping: Mapping{Fields: []int{129}}, wantErr: "outside 2..128"},
		{name: "empty constant", mapping: Mapping{Constants: map[int]string{32: ""}}, wantErr: "mapping.constants DE 32 is empty"},
		{name: "dropped and constant", mapping: Mapping{Drop: []int{32}, Constants: map[int]string{32: "1"}}, wantErr: "both dropped and a constant"},
		{name: "a decline mapped to approval", mapping: Mapping{ResponseCodes: map[string]string{"05": "00"}}, wantErr: "nothing maps to or from 00"},
		{name: "an approval mapped to a decline", mapping: Mapping{ResponseCodes: map[string]string{"00": "05"}}, wantErr: "nothing maps to or from 00"},
		{name: "a code not two characters", mapping: Mapping{ResponseCodes: map[string]string{"5": "51"}}, wantErr: "two characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Routes[0].Mapping = tt.mapping
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMappingParses(t *testing.T) {
	c, err := Parse([]byte(`
routes:
  - name: card-x
    bins: ["5555"]
    addrs: ["127.0.0.1:7000"]
    mapping:
      fields: [3, 4, 41]
      drop: [55]
      constants: {32: "123456"}
      response_codes: {"05": "51"}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Routes[0].Mapping
	if len(m.Fields) != 3 || m.Drop[0] != 55 || m.Constants[32] != "123456" || m.ResponseCodes["05"] != "51" {
		t.Errorf("mapping = %+v", m)
	}
}
