package specs

import (
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
)

// asciiText packs and unpacks an ASCII text field (String, ASCII encoding,
// ASCII fixed or LL.. length prefix): what moov's default packer does, in
// one allocation instead of one per byte-slice growth (its ASCII encoder
// appends byte by byte, its length prefix goes through fmt.Sprintf) and,
// unpacking, without copying the value (a String field copies it into its
// own string). Anything out of the ordinary (too long, not ASCII, a bad
// length prefix) goes the default way, for the same errors.
type asciiText struct{ digits int } // length-prefix digits, 0: fixed

// leanPacking gives spec's ASCII text fields the asciiText packer: the
// switch packs or unpacks four messages per sale, field by field.
func leanPacking(spec *iso8583.MessageSpec) {
	for _, f := range spec.Fields {
		s, ok := f.(*field.String)
		if !ok || s.Spec() == nil {
			continue
		}
		fs := s.Spec()
		if fs.Enc != encoding.ASCII || fs.Pref == nil || fs.Packer != nil || fs.Unpacker != nil {
			continue
		}
		var digits int
		switch in := fs.Pref.Inspect(); {
		case in == "ASCII.Fixed":
		case strings.HasPrefix(in, "ASCII.") && strings.Trim(in[len("ASCII."):], "L") == "":
			digits = len(in) - len("ASCII.")
		default:
			continue
		}
		fs.Packer, fs.Unpacker = asciiText{digits}, asciiText{digits}
	}
}

// Pack is moov's default packing of value.
func (a asciiText) Pack(value []byte, spec *field.Spec) ([]byte, error) {
	if spec.Pad != nil {
		value = spec.Pad.Pad(value, spec.Length)
	}
	n := len(value)
	if !ascii(value) || (a.digits == 0 && n != spec.Length) || (a.digits > 0 && (n > spec.Length || n >= pow10(a.digits))) {
		return defaultPack(value, spec)
	}
	out := make([]byte, a.digits+n)
	for i, v := a.digits-1, n; i >= 0; i, v = i-1, v/10 {
		out[i] = byte('0' + v%10)
	}
	copy(out[a.digits:], value)
	return out, nil
}

// Unpack is moov's default unpacking of data; the value it returns is
// part of data (a String field copies it).
func (a asciiText) Unpack(data []byte, spec *field.Spec) ([]byte, int, error) {
	n := spec.Length
	if a.digits > 0 {
		if len(data) < a.digits {
			return defaultUnpack(data, spec)
		}
		n = 0
		for _, c := range data[:a.digits] {
			if c < '0' || c > '9' {
				return defaultUnpack(data, spec)
			}
			n = n*10 + int(c-'0')
		}
		if n > spec.Length {
			return defaultUnpack(data, spec)
		}
	}
	if len(data)-a.digits < n || !ascii(data[a.digits:a.digits+n]) {
		return defaultUnpack(data, spec)
	}
	value := data[a.digits : a.digits+n : a.digits+n]
	if spec.Pad != nil {
		value = spec.Pad.Unpad(value)
	}
	return value, a.digits + n, nil
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c > 127 {
			return false
		}
	}
	return true
}

func pow10(d int) int {
	p := 1
	for range d {
		p *= 10
	}
	return p
}

// defaultPack is moov's defaultPacker.Pack (unexported there) once value
// is padded.
func defaultPack(value []byte, spec *field.Spec) ([]byte, error) {
	encoded, err := spec.Enc.Encode(value)
	if err != nil {
		return nil, fmt.Errorf("failed to encode content: %w", err)
	}
	prefix, err := spec.Pref.EncodeLength(spec.Length, len(value))
	if err != nil {
		return nil, fmt.Errorf("failed to encode length: %w", err)
	}
	return append(prefix, encoded...), nil
}

// defaultUnpack is moov's defaultUnpacker.Unpack (unexported there).
func defaultUnpack(data []byte, spec *field.Spec) ([]byte, int, error) {
	n, prefix, err := spec.Pref.DecodeLength(spec.Length, data)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to decode length: %w", err)
	}
	value, read, err := spec.Enc.Decode(data[prefix:], n)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to decode content: %w", err)
	}
	if spec.Pad != nil {
		value = spec.Pad.Unpad(value)
	}
	return value, read + prefix, nil
}
