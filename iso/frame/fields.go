package frame

import (
	"errors"
	"fmt"
	"slices"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"

	"github.com/kbpay/switch/iso/fields"
)

// Fields is a message to send, kept as its MTI and field instances
// rather than as an iso8583.Message: it packs to the bytes an
// iso8583.Message holding the same fields packs to, without building
// one. An answer is mostly its request's fields echoed: Copy from a
// message of the same spec shares the request's field instance (nothing
// created, nothing copied), where building an iso8583.Message creates a
// field for each and sets its value, and packing it clones the message's
// field map to sort it.
//
// A shared instance is only read (packed, its value read), never
// changed: setting a field again replaces the entry with a new instance.
// The message a field was copied from must not change until the Fields
// is sent. Fields is not safe for concurrent use.
type Fields struct {
	spec *iso8583.MessageSpec
	set  []setField // by field number; the MTI as field 0, no bitmap
	buf  [24]setField
}

// NewFields starts a message of spec with MTI mti.
func NewFields(spec *iso8583.MessageSpec, mti string) (*Fields, error) {
	f := &Fields{spec: spec}
	f.set = f.buf[:0]
	if err := f.SetString(0, mti); err != nil {
		return nil, fmt.Errorf("setting the MTI: %w", err)
	}
	return f, nil
}

// SetString sets field id (0: the MTI) to v, as fields.SetString sets it
// on a message; an empty v sets the field too (it packs as its spec packs
// an empty value).
func (f *Fields) SetString(id int, v string) error {
	if id == 1 {
		return errBitmapField
	}
	inst, err := f.newField(id)
	if err != nil {
		return err
	}
	if s, ok := inst.(*field.String); ok {
		s.SetValue(v)
		f.put(id, inst)
		return nil
	}
	return f.setBytes(id, inst, []byte(v))
}

// Copy sets field id from src when src has it with a value that is not
// empty and f's spec defines it, as fields.Copy does on a message: the
// same spec's field is shared, another spec's value moves into a field of
// f's spec.
func (f *Fields) Copy(src *iso8583.Message, id int) error {
	if id == 1 {
		return errBitmapField
	}
	if _, ok := f.spec.Fields[id]; !ok {
		return nil
	}
	sf := src.GetField(id)
	if sf == nil {
		return nil
	}
	if s, ok := sf.(*field.String); ok {
		switch {
		case s.Value() == "":
			return nil
		case src.GetSpec() == f.spec:
			f.put(id, sf)
			return nil
		}
		return f.SetString(id, s.Value())
	}
	b, err := sf.Bytes()
	if err != nil || len(b) == 0 {
		return err
	}
	if src.GetSpec() == f.spec {
		f.put(id, sf)
		return nil
	}
	inst, err := f.newField(id)
	if err != nil {
		return err
	}
	return f.setBytes(id, inst, b)
}

// setBytes sets inst, a new field id, to b and puts it in.
func (f *Fields) setBytes(id int, inst field.Field, b []byte) error {
	if err := inst.SetBytes(b); err != nil {
		return fmt.Errorf("setting bytes for field %d: %w", id, err)
	}
	f.put(id, inst)
	return nil
}

// Has reports whether field id is set.
func (f *Fields) Has(id int) bool {
	_, ok := f.find(id)
	return ok
}

// GetString is field id's value ("" when it is not set or does not read).
func (f *Fields) GetString(id int) string {
	i, ok := f.find(id)
	if !ok {
		return ""
	}
	if s, ok := f.set[i].field.(*field.String); ok {
		return s.Value()
	}
	v, _ := f.set[i].field.String()
	return v
}

// Message builds the iso8583.Message holding the same fields (for what
// needs one: a MAC over the packed message, a log line's fields).
func (f *Fields) Message() (*iso8583.Message, error) {
	m := iso8583.NewMessage(f.spec)
	for _, e := range f.set {
		if err := setOn(m, e); err != nil {
			return nil, fmt.Errorf("setting DE %d: %w", e.id, err)
		}
	}
	return m, nil
}

// setOn sets e.id of m to e.field's value, an empty one too.
func setOn(m *iso8583.Message, e setField) error {
	if s, ok := e.field.(*field.String); ok {
		return fields.SetString(m, e.id, s.Value())
	}
	b, err := e.field.Bytes()
	if err != nil {
		return err
	}
	return m.BinaryField(e.id, b)
}

// appendPacked appends the message packed, as appendPacked packs an
// iso8583.Message holding the same fields, to dst.
func (f *Fields) appendPacked(dst []byte) ([]byte, error) {
	proto, ok := f.spec.Fields[1].(*field.Bitmap)
	if !ok { // moov refuses such a spec (NewMessage, Unpack) before it gets here
		return dst, fmt.Errorf("spec %s: field 1 is %T, not a bitmap", f.spec.Name, f.spec.Fields[1])
	}
	bitmap := field.NewBitmap(proto.Spec())
	var buf [40]setField
	set := append(buf[:0], f.set...)
	at, _ := slices.BinarySearchFunc(set, 1, bySetID)
	set = slices.Insert(set, at, setField{1, bitmap})
	return appendSet(dst, bitmap, set)
}

// errBitmapField: the bitmap (field 1) is made from the fields when the
// message is packed, never set.
var errBitmapField = errors.New("field 1 is the bitmap, made when the message is packed")

func (f *Fields) newField(id int) (field.Field, error) {
	proto, ok := f.spec.Fields[id]
	if !ok {
		return nil, fmt.Errorf("field %d is not defined in the spec", id)
	}
	return field.NewInstanceOf(proto), nil
}

func (f *Fields) find(id int) (int, bool) {
	return slices.BinarySearchFunc(f.set, id, bySetID)
}

// put sets field id to inst, in field-number order.
func (f *Fields) put(id int, inst field.Field) {
	if i, ok := f.find(id); ok {
		f.set[i].field = inst
	} else {
		f.set = slices.Insert(f.set, i, setField{id, inst})
	}
}

func bySetID(e setField, id int) int { return e.id - id }
