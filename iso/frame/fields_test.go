package frame

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/iso/fields"
	"github.com/kbpay/switch/specs"
)

// fieldsOf is m as Fields: its MTI, and every other field copied (shared:
// the same spec).
func fieldsOf(t testing.TB, m *iso8583.Message) *Fields {
	t.Helper()
	mti, _ := m.GetMTI()
	f, err := NewFields(m.GetSpec(), mti)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range slices.Sorted(maps.Keys(m.GetFields())) {
		if id > 1 {
			if err := f.Copy(m, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// copied is what building an answer as a message made of src's fields:
// a message of spec with src's MTI and every field fields.Copy moves.
func copied(t testing.TB, spec *iso8583.MessageSpec, src *iso8583.Message) (*iso8583.Message, error) {
	t.Helper()
	m := iso8583.NewMessage(spec)
	mti, _ := src.GetMTI()
	if err := fields.SetString(m, 0, mti); err != nil {
		t.Fatal(err)
	}
	for _, id := range slices.Sorted(maps.Keys(src.GetFields())) {
		if id > 1 {
			if err := fields.Copy(m, src, id); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// TestFieldsPackLikeAMessage: Fields copied from a message pack to the
// bytes (or fail with the error) of a message built by fields.Copy from
// the same one, in each spec, for messages filled at random (about one
// in five with a value its field refuses); Message() packs the same.
func TestFieldsPackLikeAMessage(t *testing.T) {
	for name, spec := range packSpecs() {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8583, 2026))
			for i := range 300 {
				src := randomMessage(t, rng, spec)
				want, err := copied(t, spec, src)
				if err != nil {
					t.Fatal(err)
				}
				f := fieldsOf(t, src)
				what := fmt.Sprintf("message %d", i)
				checkSame(t, what, want, f.appendPacked)
				m, err := f.Message()
				if err != nil {
					t.Fatalf("%s: Message: %v", what, err)
				}
				checkSame(t, what+" as a message", want, func(dst []byte) ([]byte, error) { return appendPacked(dst, m) })
			}
		})
	}
}

// TestFieldsCopyAcrossSpecs: a field copied from a message of another
// dialect (an issuer's answer into a terminal's) moves its value as
// fields.Copy does.
func TestFieldsCopyAcrossSpecs(t *testing.T) {
	issuer, terminal := specs.MustLoad(specs.IssuerDialect), specs.MustLoad(specs.TerminalDialect)
	src := iso8583.NewMessage(issuer)
	setAll(t, src, issuerRequest)
	want, err := copied(t, terminal, src)
	if err != nil {
		t.Fatal(err)
	}
	mti, _ := src.GetMTI()
	f, err := NewFields(terminal, mti)
	if err != nil {
		t.Fatal(err)
	}
	for id := range src.GetFields() {
		if err := f.Copy(src, id); err != nil {
			t.Fatalf("DE %d: %v", id, err)
		}
	}
	checkSame(t, "issuer request into the terminal dialect", want, f.appendPacked)
	if got, _ := want.GetString(specs.RRN); f.GetString(specs.RRN) != got || !f.Has(specs.RRN) {
		t.Errorf("DE 37 %q, want %q", f.GetString(specs.RRN), got)
	}
}

// TestFieldsSetAgain: setting a field again replaces it, and a shared
// field is never changed by it.
func TestFieldsSetAgain(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	req := iso8583.NewMessage(spec)
	setAll(t, req, terminalAnswer)
	f := fieldsOf(t, req)
	if err := f.SetString(specs.ResponseCode, "05"); err != nil {
		t.Fatal(err)
	}
	if got, _ := req.GetString(specs.ResponseCode); got != "00" {
		t.Fatalf("the request's DE 39 became %q", got)
	}
	_ = req.Field(specs.ResponseCode, "05")
	checkSame(t, "DE 39 set again", req, f.appendPacked)
	if f.Has(specs.PAN) || f.GetString(specs.PAN) != "" {
		t.Error("DE 2 reported set")
	}
	if err := f.SetString(999, "x"); err == nil {
		t.Error("SetString of a field the spec lacks succeeded")
	}
	_, _ = req.Pack() // the request has its bitmap now
	if f.SetString(1, "x") == nil || f.Copy(req, 1) == nil {
		t.Error("the bitmap (field 1) was set: it is made when the message is packed")
	}
}
