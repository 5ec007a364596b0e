package hostcmd

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// block is a syntactically valid 48-character version D key block.
var block = "D0048P0TB00E0000" + strings.Repeat("AB", 16)

func lmk(b string) Key { return Key{Scheme: 'S', Block: b} }

// commands are one of each command with every field set.
func commands() []Command {
	mac := GenerateMAC{ModeFlag: '0', InputFormat: '0', MACSize: '1', Algorithm: MACAlgISO9797Alg3, Padding: PadMethod1,
		KeyType: "FFF", Key: lmk(block), Message: []byte("0200\x00\x01binary\xff")}
	return []Command{
		&Diagnostics{},
		&TranslatePIN{Command: "CA", Source: lmk(block), Dest: lmk(block), MaxPIN: 12, Block: "0123456789ABCDEF",
			SourceFormat: FormatISO0, DestFormat: FormatISO0, Account: "123456789012"},
		&TranslatePIN{Command: "CC", Source: lmk(block), Dest: lmk(block), MaxPIN: 12, Block: "0123456789ABCDEF",
			SourceFormat: FormatISO0, DestFormat: FormatISO4, Account: "4111111111111111"},
		&TranslatePIN{Command: "CC", Source: lmk(block), Dest: lmk(block), MaxPIN: 12, Block: strings.Repeat("0148", 8),
			SourceFormat: FormatISO4, DestFormat: FormatISO4, Account: "5413330089010434571"},
		&TranslateDUKPT{BDK: lmk(block), ZPK: lmk(block), KSNDescriptor: "A05", KSN: "FFFF9876543210E00001",
			Block: "1B9C1845EB993A7A", SourceFormat: FormatISO0, DestFormat: FormatISO0, Account: "401234567890"},
		&mac,
		&VerifyMAC{GenerateMAC: mac, MAC: "A1C72E74EA3FA9B6"},
		&GenerateKey{Mode: '0', KeyType: "FFF", Scheme: 'S', Attr: KeyAttributes{Usage: "P0", Algorithm: "T2", ModeOfUse: 'B', Version: "00", Exportability: 'E'}},
		&GenerateKey{Mode: '1', KeyType: "FFF", Scheme: 'S', ZMK: lmk(block), Attr: KeyAttributes{Usage: "M6", Algorithm: "A3", ModeOfUse: 'C', Version: "01", Exportability: 'E'}},
		&ImportKey{KeyType: "FFF", ZMK: lmk(block), Key: Key{Scheme: 'R', Block: block}, Scheme: 'S'},
		&KeyCheckValue{KeyTypeCode: "FF", LengthFlag: 'F', Key: lmk(block)},
		&ImportZPK{ZMK: lmk(block), ZPK: "X" + strings.Repeat("0123456789ABCDEF", 2), KeySchemeLMK: 'S', KCVType: '1', ModeOfUse: 'B', Version: "00", Exportability: 'E'},
		&ImportZPK{ZMK: lmk(block), ZPK: "Y" + strings.Repeat("FEDCBA9876543210", 3), KeySchemeLMK: 'S', KCVType: '1', ModeOfUse: 'B', Version: "01", Exportability: 'N'},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.Code(), func(t *testing.T) {
			msg, err := Encode("0042", c)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			frame, err := AppendFrame(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadFrame(bytes.NewReader(frame))
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("frame round trip: %q, %v", got, err)
			}
			header, code, back, err := DecodeCommand(got, 4)
			if err != nil {
				t.Fatalf("DecodeCommand(%q): %v", msg, err)
			}
			if header != "0042" || code != c.Code() || !reflect.DeepEqual(back, c) {
				t.Errorf("round trip:\n got %s %s %+v\nwant %+v", header, code, back, c)
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good, err := Encode("0001", commands()[1])
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"unknown command":   []byte("0001ZZ"),
		"truncated":         good[:len(good)-3],
		"trailing byte":     append(append([]byte{}, good...), '9'),
		"no header":         []byte("00"),
		"bad key scheme":    bytes.Replace(good, []byte("SD0048"), []byte("XD0048"), 1),
		"PIN block not hex": bytes.Replace(good, []byte("0123456789ABCDEF"), []byte("0123456789ABCDEG"), 1),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := DecodeCommand(msg, 4); !errors.Is(err, ErrSyntax) {
				t.Errorf("DecodeCommand(%q) = %v, want ErrSyntax", msg, err)
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	cases := []struct {
		resp  Response
		parse func([]byte) (any, error)
		want  any
	}{
		{Response{Header: "0007", Code: "ND", Error: OK, Body: DiagnosticsAnswer{LMKCheck: "0123456789ABCDEF", Firmware: "1500-SIM0"}.Encode()},
			func(b []byte) (any, error) { return ParseDiagnostics(b) }, DiagnosticsAnswer{LMKCheck: "0123456789ABCDEF", Firmware: "1500-SIM0"}},
		{Response{Header: "0007", Code: "CB", Error: OK, Body: PINAnswer{PINLength: 4, Block: "0123456789ABCDEF", Format: FormatISO0}.Encode()},
			func(b []byte) (any, error) { return ParsePINAnswer(b, FormatISO0) }, PINAnswer{PINLength: 4, Block: "0123456789ABCDEF", Format: FormatISO0}},
		{Response{Header: "0007", Code: "M7", Error: OK, Body: MACAnswer{MAC: "A1C72E74EA3FA9B6"}.Encode()},
			func(b []byte) (any, error) { return ParseMACAnswer(b) }, MACAnswer{MAC: "A1C72E74EA3FA9B6"}},
		{Response{Header: "0007", Code: "A1", Error: OK, Body: KeyAnswer{LMK: lmk(block), ZMK: Key{Scheme: 'R', Block: block}, KCV: "08D7B4"}.Encode()},
			func(b []byte) (any, error) { return ParseKeyAnswer(b, true, true) }, KeyAnswer{LMK: lmk(block), ZMK: Key{Scheme: 'R', Block: block}, KCV: "08D7B4"}},
	}
	for _, tc := range cases {
		t.Run(tc.resp.Code, func(t *testing.T) {
			back, err := DecodeResponse(EncodeResponse(tc.resp), 4)
			if err != nil || !reflect.DeepEqual(back, tc.resp) {
				t.Fatalf("DecodeResponse = %+v, %v", back, err)
			}
			got, err := tc.parse(back.Body)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parse = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if ResponseCode("NC") != "ND" || ResponseCode("M8") != "M9" || ResponseCode("A0") != "A1" || ResponseCode("x") != "" {
		t.Errorf("ResponseCode is not the second letter + 1")
	}
}

// FuzzDecodeCommand: whatever DecodeCommand accepts encodes back to a
// message that decodes to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range commands() {
		msg, err := Encode("0001", c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		header, _, c, err := DecodeCommand(msg, 4)
		if err != nil {
			return
		}
		again, err := Encode(header, c)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", msg, err)
		}
		_, _, back, err := DecodeCommand(again, 4)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("re-encoded %q does not decode to the same command: %v", again, err)
		}
	})
}
