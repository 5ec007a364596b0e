package specs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/moov-io/iso8583/field"
	moovspecs "github.com/moov-io/iso8583/specs"
)

// TestLeanPackingIsMoovs: every text field of both dialects packs and
// unpacks exactly as moov's default packer does it (bytes, lengths and
// errors), for values that fit, short, long, empty and not ASCII, and
// for frames that are short, badly prefixed or not ASCII.
func TestLeanPackingIsMoovs(t *testing.T) {
	for _, name := range []string{TerminalDialect, IssuerDialect} {
		raw, err := builtin.ReadFile(name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		moov, err := moovspecs.ImportJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		ours := MustLoad(name)
		lean := 0
		for id, f := range ours.Fields {
			s, ok := f.(*field.String)
			if !ok {
				continue
			}
			if _, ok := s.Spec().Packer.(asciiText); ok {
				lean++
			}
			want := moov.Fields[id].(*field.String).Spec()
			n := s.Spec().Length
			values := []string{"", "7", strings.Repeat("4", n), strings.Repeat("5", max(n-1, 0)),
				strings.Repeat("6", n+1), "caf\xe9", strings.Repeat("9", 1000)}
			for _, v := range values {
				a := field.NewString(s.Spec())
				a.SetValue(v)
				b := field.NewString(want)
				b.SetValue(v)
				got, gerr := a.Pack()
				exp, eerr := b.Pack()
				if !bytes.Equal(got, exp) || fmt.Sprint(gerr) != fmt.Sprint(eerr) {
					t.Errorf("%s DE %d pack %q: %q %v, moov %q %v", name, id, v, got, gerr, exp, eerr)
				}
			}
			frames := [][]byte{nil, []byte("1"), []byte("0"), []byte("02AB"), []byte("002ABC"), []byte("99"),
				[]byte("+1X"), []byte("-1X"), []byte("01\xff"), []byte("001\xff"),
				[]byte(strings.Repeat("0", 3) + strings.Repeat("Z", 2000)),
				[]byte("012 AB  padded     "), []byte(strings.Repeat("A ", 600))}
			for _, fr := range frames {
				a, b := field.NewString(s.Spec()), field.NewString(want)
				gn, gerr := a.Unpack(fr)
				en, eerr := b.Unpack(fr)
				if gn != en || a.Value() != b.Value() || fmt.Sprint(gerr) != fmt.Sprint(eerr) {
					t.Errorf("%s DE %d unpack %q: %d %q %v, moov %d %q %v", name, id, fr, gn, a.Value(), gerr, en, b.Value(), eerr)
				}
			}
		}
		if lean == 0 {
			t.Errorf("%s: no field packs the lean way", name)
		}
	}
}
