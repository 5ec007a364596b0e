// Package fields sets and copies ISO 8583 message fields (moov-io
// messages) without the copies moov's string and byte setters make: the
// switch builds four messages per sale, field by field.
package fields

import (
	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// SetString sets field id of m (0: the MTI) to v. A field the dialect
// defines as a String (nearly all of both built-in ones) takes v itself:
// moov's Field copies the value twice on the way in ([]byte(v), then
// string(b)), two allocations for every field of the four messages a sale
// builds. Any other kind of field is set through Field, as before.
func SetString(m *iso8583.Message, id int, v string) error {
	if _, ok := m.GetSpec().Fields[id].(*field.String); !ok {
		return m.Field(id, v)
	}
	// Field with "" creates the field (or keeps the one set) without
	// copying anything; the value then goes in as it is.
	if err := m.Field(id, ""); err != nil {
		return err
	}
	f, ok := m.GetField(id).(*field.String)
	if !ok { // a spec whose prototype makes another kind of instance
		return m.Field(id, v)
	}
	f.SetValue(v)
	return nil
}

// Copy copies field id from src to dst when src has it and dst's spec
// defines it; the raw value moves, whatever each dialect's encoding is.
// A String field's value moves as it is (no []byte round trip).
func Copy(dst, src *iso8583.Message, id int) error {
	if _, ok := dst.GetSpec().Fields[id]; !ok {
		return nil
	}
	sf := src.GetField(id)
	if sf == nil {
		return nil
	}
	if s, ok := sf.(*field.String); ok {
		// Bytes would be []byte(value): the same value, copied.
		if v := s.Value(); v != "" {
			return SetString(dst, id, v)
		}
		return nil
	}
	b, err := src.GetBytes(id)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return dst.BinaryField(id, b)
}
