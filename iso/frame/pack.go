package frame

import (
	"fmt"
	"slices"

	"github.com/moov-io/iso8583"
	iso8583errors "github.com/moov-io/iso8583/errors"
	"github.com/moov-io/iso8583/field"
)

// appendPacked appends msg packed as moov's msg.Pack() packs it (the
// same bytes, the same errors) to dst: moov builds the body in a slice of
// its own, grown field by field, after collecting the set field numbers
// into another; here the fields are packed straight into dst (a pooled
// frame buffer), so a message costs its fields' own packing only.
//
// It goes through moov's public API only, with moov's steps (message.go,
// Message.pack): the bitmap (field 1) is reset and gets the bit of every
// set field from 2 on that is not a bitmap presence bit (Bitmap.Set adds
// the presence bits of the secondary and tertiary bitmaps itself); then
// every set field, in field-number order, is packed with its own Pack,
// presence-bit fields but the bitmap left out. On error dst is returned
// as it was, with moov's error: a *errors.PackError (which
// iso8583-connection's write loop looks for to go on with the next
// message) around "failed to pack field N (description): ...".
//
// Caveat: moov's Pack holds the message's lock from the first field to
// the last; here each accessor locks on its own and the fields are packed
// unlocked, so a message must not be changed while it is being sent. No
// sender does: a Writer or Codec packs in the goroutine that sends, and a
// message the connection library writes is the one its sender is waiting
// on (Send, Reply), packed as soon as the write loop takes it.
func appendPacked(dst []byte, msg *iso8583.Message) ([]byte, error) {
	bitmap := msg.Bitmap() // creates and sets field 1 if it is not yet
	if msg.GetField(1) != field.Field(bitmap) {
		// Field 1 was unset (UnsetField) after the bitmap was made: moov
		// puts its bitmap back, which only moov can do.
		return appendMoovPacked(dst, msg)
	}
	var buf [40]setField
	return appendSet(dst, bitmap, setFields(buf[:0], msg))
}

// appendSet appends set, a message's fields in field-number order with
// bitmap among them as field 1, packed: bitmap reset and given the bit of
// every field from 2 on that is not a presence bit, then each field but
// the presence bits packed in order. On error dst is returned as it was.
func appendSet(dst []byte, bitmap *field.Bitmap, set []setField) ([]byte, error) {
	bitmap.Reset()
	for _, f := range set {
		if f.id >= 2 && !bitmap.IsBitmapPresenceBit(f.id) {
			bitmap.Set(f.id)
		}
	}
	start := len(dst)
	for _, f := range set {
		if f.id != 1 && bitmap.IsBitmapPresenceBit(f.id) {
			continue
		}
		packed, err := f.field.Pack()
		if err != nil {
			return dst[:start], &iso8583errors.PackError{
				Err: fmt.Errorf("failed to pack field %d (%s): %w", f.id, f.field.Spec().Description, err),
			}
		}
		dst = append(dst, packed...)
	}
	return dst, nil
}

// appendMoovPacked is appendPacked by msg.Pack() itself.
func appendMoovPacked(dst []byte, msg *iso8583.Message) ([]byte, error) {
	packed, err := msg.Pack()
	if err != nil {
		return dst, err
	}
	return append(dst, packed...), nil
}

type setField struct {
	id    int
	field field.Field
}

// setFields appends msg's set fields, in field-number order, to dst.
func setFields(dst []setField, msg *iso8583.Message) []setField {
	start := len(dst)
	for id, f := range msg.GetFields() {
		dst = append(dst, setField{id, f})
	}
	slices.SortFunc(dst[start:], func(a, b setField) int { return a.id - b.id })
	return dst
}
