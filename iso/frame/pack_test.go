package frame

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	iso8583errors "github.com/moov-io/iso8583/errors"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"

	"github.com/kbpay/switch/internal/raceflag"
	"github.com/kbpay/switch/specs"
)

// packSpecs are the switch's dialects and two made from the terminal
// one: "tertiary" adds fields past 128 (a third bitmap), among them a BCD
// field, and defines the presence bits 65 and 129 as fields (never
// packed); "fixed" has a 16-byte bitmap that never expands (no presence
// bits: field 65 is an ordinary one).
func packSpecs() map[string]*iso8583.MessageSpec {
	terminal := specs.MustLoad(specs.TerminalDialect)
	tertiary := &iso8583.MessageSpec{Name: "tertiary", Fields: maps.Clone(terminal.Fields)}
	tertiary.Fields[65] = field.NewBinary(&field.Spec{Length: 8, Description: "Presence Bit", Enc: encoding.Binary, Pref: prefix.Binary.Fixed})
	tertiary.Fields[129] = tertiary.Fields[65]
	tertiary.Fields[130] = field.NewString(&field.Spec{Length: 3, Description: "Test Fixed", Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed})
	tertiary.Fields[150] = field.NewString(&field.Spec{Length: 19, Description: "Test BCD", Enc: encoding.BCD, Pref: prefix.BCD.LL})
	tertiary.Fields[192] = field.NewBinary(&field.Spec{Length: 99, Description: "Test Binary", Enc: encoding.Binary, Pref: prefix.Binary.LL})
	fixed := &iso8583.MessageSpec{Name: "fixed", Fields: maps.Clone(terminal.Fields)}
	fixed.Fields[65] = tertiary.Fields[65]
	fixed.Fields[1] = field.NewBitmap(&field.Spec{Length: 16, Description: "Bitmap", Enc: encoding.Binary, Pref: prefix.Binary.Fixed, DisableAutoExpand: true})
	return map[string]*iso8583.MessageSpec{
		specs.TerminalDialect: terminal,
		specs.IssuerDialect:   specs.MustLoad(specs.IssuerDialect),
		"tertiary":            tertiary,
		"fixed":               fixed,
	}
}

// testPAN is a test card number (not a real card's): failure messages
// never show packed bytes, which would carry it.
const testPAN = "9410000000000005"

// setAll sets text fields (an id above 1000 sets field id-1000 as binary,
// from hex) on m.
func setAll(t testing.TB, m *iso8583.Message, fields map[int]string) {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		var err error
		if id > 1000 {
			var b []byte
			if _, err = fmt.Sscanf(fields[id], "%x", &b); err == nil || fields[id] == "" {
				err = m.BinaryField(id-1000, b)
			}
		} else {
			err = m.Field(id, fields[id])
		}
		if err != nil {
			t.Fatalf("setting field %d: %v", id%1000, err)
		}
	}
}

// checkSamePacking packs m with appendPacked (behind a prefix, which
// must stay) and with m.Pack(), and fails unless the bytes, or the
// errors, are the same.
func checkSamePacking(t testing.TB, what string, m *iso8583.Message) {
	t.Helper()
	checkSame(t, what, m, func(dst []byte) ([]byte, error) { return appendPacked(dst, m) })
}

// checkSame is checkSamePacking for what pack appends.
func checkSame(t testing.TB, what string, m *iso8583.Message, pack func(dst []byte) ([]byte, error)) {
	t.Helper()
	prefix := []byte("prefix")
	got, gotErr := pack(slices.Clip(prefix))
	want, wantErr := m.Pack()
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("%s: appendPacked lost what dst held", what)
	}
	got = got[len(prefix):]
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%s: appendPacked error %v, msg.Pack() error %v", what, gotErr, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("%s: appendPacked error\n%v\nmsg.Pack() error\n%v", what, gotErr, wantErr)
		}
		var pe *iso8583errors.PackError
		if !errors.As(gotErr, &pe) {
			t.Fatalf("%s: appendPacked error %T is no *PackError", what, gotErr)
		}
		if len(got) != 0 {
			t.Fatalf("%s: appendPacked appended %d bytes and failed", what, len(got))
		}
	case !bytes.Equal(got, want):
		// No bytes in the message: they would carry the card number.
		t.Fatalf("%s: appendPacked gave %d bytes, msg.Pack() %d, first difference at byte %d",
			what, len(got), len(want), firstDifference(got, want))
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// issuerRequest is a sale as the switch sends it to an issuer; terminalAnswer
// an approval as it answers a terminal.
var (
	issuerRequest = map[int]string{0: "0200", 2: testPAN, 3: "000000", 4: "000000001000", 7: "1125101500",
		11: "000001", 12: "101500", 13: "1125", 14: "2812", 18: "5411", 22: "051", 25: "00", 32: "12345678",
		37: "533010000001", 41: "TERM0001", 42: "MERCHANT0000001", 43: "KB PAY TEST SHOP SEOUL KR",
		48: "TKN0123456789ABCDEF", 49: "410", 1052: "0123456789abcdef",
		1055: "9f2608a1b2c3d4e5f607089f2701809f100706010a03a00000"}
	terminalAnswer = map[int]string{0: "0210", 3: "000000", 4: "000000001000", 7: "1125101500", 11: "000001",
		12: "101500", 13: "1125", 37: "533010000001", 38: "A12345", 39: "00", 41: "TERM0001",
		42: "MERCHANT0000001", 49: "410"}
)

func TestPackMatchesMoov(t *testing.T) {
	tests := []struct {
		name   string
		fields map[int]string
		after  func(*iso8583.Message) // applied once the fields are set
	}{
		{name: "MTI only", fields: map[int]string{0: "0800"}},
		{name: "no MTI", fields: map[int]string{11: "000001", 39: "00"}},
		{name: "nothing set", fields: map[int]string{}},
		{name: "issuer request", fields: issuerRequest},
		{name: "terminal answer", fields: terminalAnswer},
		{name: "sign-on (secondary bitmap)", fields: map[int]string{0: "0800", 7: "1125101500", 11: "000002", 70: "001"}},
		{name: "reversal (secondary bitmap, DE 90, 95)", fields: map[int]string{0: "0420", 2: testPAN, 3: "000000",
			4: "000000001000", 11: "000003", 41: "TERM0001", 90: "020000000100000000000000000000000000000000",
			95: "000000000500"}},
		{name: "MACs (DE 64 and 128)", fields: map[int]string{0: "0200", 11: "000004", 1064: "0102030405060708", 1128: "a1a2a3a4a5a6a7a8"}},
		{name: "only DE 128", fields: map[int]string{0: "0200", 1128: "a1a2a3a4a5a6a7a8"}},
		{name: "empty optional fields", fields: map[int]string{0: "0200", 11: "000005", 44: "", 48: "", 39: "", 1055: ""}},
		{name: "padded fields", fields: map[int]string{0: "0210", 37: "1", 38: "A", 43: "SHOP"}},
		{name: "unset after set", fields: issuerRequest, after: func(m *iso8583.Message) {
			m.UnsetField(2)
			m.UnsetField(55)
		}},
		{name: "stale bitmap", fields: map[int]string{0: "0200", 11: "000006"}, after: func(m *iso8583.Message) {
			_ = m.BinaryField(1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}},
		{name: "bitmap field unset", fields: map[int]string{0: "0200", 11: "000007"}, after: func(m *iso8583.Message) {
			_, _ = m.Pack() // the message now has its bitmap
			m.UnsetField(1)
		}},
		{name: "third bitmap", fields: map[int]string{0: "0200", 11: "000008", 130: "ABC", 150: "1234567", 1192: "00ff"}},
		{name: "DE 192 only", fields: map[int]string{0: "0200", 1192: "00ff"}},
		{name: "presence bits set", fields: map[int]string{0: "0200", 11: "000009", 1065: "0102030405060708", 1129: "0102030405060708"}},
	}
	for specName, spec := range packSpecs() {
		for _, tt := range tests {
			t.Run(specName+"/"+tt.name, func(t *testing.T) {
				fields := maps.Clone(tt.fields)
				for id := range fields {
					if _, ok := spec.Fields[id%1000]; !ok {
						delete(fields, id) // the fields past 128 are in one spec
					}
				}
				m := iso8583.NewMessage(spec)
				setAll(t, m, fields)
				if tt.after != nil {
					tt.after(m)
				}
				checkSamePacking(t, "first pack", m)
				checkSamePacking(t, "packed again", m)
			})
		}
	}
}

func TestPackErrorsMatchMoov(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		fields map[int]string
	}{
		{"fixed field too short", specs.TerminalDialect, map[int]string{0: "0200", 3: "12345"}},
		{"fixed field too long", specs.IssuerDialect, map[int]string{0: "0200", 11: "0000001"}},
		{"LL field too long", specs.TerminalDialect, map[int]string{0: "0200", 2: testPAN + "0000"}},
		{"LLL field too long", specs.IssuerDialect, map[int]string{0: "0200", 54: strings.Repeat("1", 121)}},
		{"not ASCII", specs.TerminalDialect, map[int]string{0: "0200", 41: "TÉRM001"}},
		{"binary field too short", specs.TerminalDialect, map[int]string{0: "0200", 1052: "01020304"}},
		{"hex binary field too long", specs.IssuerDialect, map[int]string{0: "0200", 1064: "010203040506070809"}},
		{"bad MTI", specs.IssuerDialect, map[int]string{0: "02000", 11: "000001"}},
		{"secondary field", specs.TerminalDialect, map[int]string{0: "0800", 70: "0001"}},
		{"two bad fields: the first", specs.TerminalDialect, map[int]string{0: "0200", 4: "1", 41: "TOO LONG TERMINAL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Codec{Spec: specs.MustLoad(tt.spec)}
			m := iso8583.NewMessage(c.Spec)
			setAll(t, m, tt.fields)
			if _, err := m.Pack(); err == nil {
				t.Fatal("msg.Pack() packs it")
			}
			checkSamePacking(t, "appendPacked", m)
			// The codec's error is moov's, as before, behind "packing message".
			_, moovErr := m.Pack()
			_, err := c.Pack(m)
			if want := "packing message: " + moovErr.Error(); err == nil || err.Error() != want {
				t.Fatalf("Codec.Pack error %v, want %s", err, want)
			}
			var pe *iso8583errors.PackError
			if !errors.As(err, &pe) {
				t.Fatalf("Codec.Pack error %T does not unwrap to a *PackError", err)
			}
		})
	}
}

// TestRepackMatchesMoov unpacks frames the codec packed, changes them
// and packs them again.
func TestRepackMatchesMoov(t *testing.T) {
	changes := []struct {
		name   string
		change func(*iso8583.Message) error
	}{
		{"answer it", func(m *iso8583.Message) error {
			m.MTI("0210")
			return m.Field(39, "05")
		}},
		{"drop the card", func(m *iso8583.Message) error { m.UnsetField(2); m.UnsetField(55); return nil }},
		{"add a MAC", func(m *iso8583.Message) error { return m.BinaryField(128, []byte("MACMACMA")) }},
		{"add DE 70", func(m *iso8583.Message) error { return m.Field(70, "301") }},
		{"empty DE 48", func(m *iso8583.Message) error { return m.Field(48, "") }},
	}
	for _, name := range []string{specs.TerminalDialect, specs.IssuerDialect} {
		for _, h := range []Header{Binary2, ASCII4, BCD2, Binary4, TPDU{Length: ASCII4, Initiate: [5]byte{0x60, 0, 0x12, 0, 0x34}}} {
			c := &Codec{Header: h, MaxLength: DefaultMaxLength, Spec: specs.MustLoad(name)}
			for _, ch := range changes {
				t.Run(fmt.Sprintf("%s/%s/%s", name, h, ch.name), func(t *testing.T) {
					m := iso8583.NewMessage(c.Spec)
					setAll(t, m, issuerRequest)
					frame, err := c.Pack(m)
					if err != nil {
						t.Fatal(err)
					}
					checkFrame(t, c, frame, m)
					body, err := ReadFrame(bytes.NewReader(frame), h, 0)
					if err != nil {
						t.Fatal(err)
					}
					got, err := c.Unpack(body)
					if err != nil {
						t.Fatal(err)
					}
					if err := ch.change(got); err != nil {
						t.Fatal(err)
					}
					checkSamePacking(t, "repacked", got)
					if frame, err = c.Pack(got); err != nil {
						t.Fatal(err)
					}
					checkFrame(t, c, frame, got)
				})
			}
		}
	}
}

// checkFrame fails unless frame is a fresh header of c's framing and
// msg.Pack().
func checkFrame(t *testing.T, c *Codec, frame []byte, msg *iso8583.Message) {
	t.Helper()
	body, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	want, err := AppendFrame(c.header(), nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("Codec.Pack gave %d bytes, header and msg.Pack() %d, first difference at byte %d",
			len(frame), len(want), firstDifference(frame, want))
	}
}

// TestPackRandomMessagesMatchMoov fills every field of each spec, at
// random (a fixed seed), and packs with both; about one message in five
// has a value its field refuses.
func TestPackRandomMessagesMatchMoov(t *testing.T) {
	for name, spec := range packSpecs() {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8583, 1987))
			failed := 0
			for i := range 500 {
				m := randomMessage(t, rng, spec)
				if _, err := m.Pack(); err != nil {
					failed++
				}
				checkSamePacking(t, fmt.Sprintf("message %d", i), m)
			}
			if failed == 0 || failed > 250 {
				t.Fatalf("%d of 500 messages did not pack: the values are not what the test means", failed)
			}
		})
	}
}

// randomMessage is a message of spec with a random MTI and about one
// field in four from DE 2 on set at random (setRandom).
func randomMessage(t *testing.T, rng *rand.Rand, spec *iso8583.MessageSpec) *iso8583.Message {
	m := iso8583.NewMessage(spec)
	m.MTI(fmt.Sprintf("0%d%d0", 1+rng.IntN(8), rng.IntN(4)))
	for _, id := range slices.Sorted(maps.Keys(spec.Fields)) {
		if id >= 2 && rng.IntN(4) == 0 {
			setRandom(t, rng, m, id, spec.Fields[id])
		}
	}
	return m
}

// setRandom sets field id of m to a random value of a length its spec
// takes (fixed or up to the maximum), now and then one longer.
func setRandom(t *testing.T, rng *rand.Rand, m *iso8583.Message, id int, f field.Field) {
	spec := f.Spec()
	n := spec.Length
	if !strings.HasSuffix(spec.Pref.Inspect(), ".Fixed") {
		n = rng.IntN(min(spec.Length, 60) + 1)
	}
	if rng.IntN(100) == 0 {
		n++ // refused
	}
	var err error
	switch f.(type) {
	case *field.Binary:
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		err = m.BinaryField(id, b)
	default:
		const digits, text = "0123456789", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ abcxyz-/."
		chars := text
		if spec.Enc == encoding.BCD {
			chars = digits
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		err = m.Field(id, string(b))
	}
	if err != nil {
		t.Fatalf("setting field %d: %v", id, err)
	}
}

// TestCodecPackAllocations: a frame is packed into a pooled buffer, not
// through msg.Pack()'s growing slices and a copy behind the header
// (through msg.Pack(): issuer request 70, 70 and 68 allocations, terminal
// answer 43, 43 and 41; packed into the pool: 58, 57, 57 and 33, 32, 32,
// most of them the fields' own Pack).
func TestCodecPackAllocations(t *testing.T) {
	if raceflag.Enabled {
		t.Skip("the race detector allocates, and sync.Pool drops buffers at random under it")
	}
	tests := []struct {
		name   string
		spec   string
		fields map[int]string
		// allocations at most: below what msg.Pack() makes
		pack, write, send float64
	}{
		{"issuer request", specs.IssuerDialect, issuerRequest, 62, 62, 62},
		{"terminal answer", specs.TerminalDialect, terminalAnswer, 37, 37, 37},
	}
	for _, tt := range tests {
		c := &Codec{Header: Binary2, MaxLength: DefaultMaxLength, Spec: specs.MustLoad(tt.spec)}
		m := iso8583.NewMessage(c.Spec)
		setAll(t, m, tt.fields)
		w := NewWriter(c, io.Discard)
		for _, run := range []struct {
			what string
			max  float64
			f    func() error
		}{
			{"Codec.Pack", tt.pack, func() error { _, err := c.Pack(m); return err }},
			{"Codec.WriteMessage", tt.write, func() error { return c.WriteMessage(io.Discard, m) }},
			{"Writer.Send", tt.send, func() error { return w.Send(m) }},
		} {
			var err error
			n := testing.AllocsPerRun(200, func() {
				if e := run.f(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatalf("%s %s: %v", tt.name, run.what, err)
			}
			t.Logf("%s: %s %v allocs", tt.name, run.what, n)
			if n > run.max {
				t.Errorf("%s: %s %v allocs, want ≤ %v", tt.name, run.what, n, run.max)
			}
		}
	}
}

// BenchmarkWriterSend sends an issuer request and a terminal answer
// through a Writer to io.Discard: the packing of one message each leg.
func BenchmarkWriterSend(b *testing.B) {
	for _, tt := range []struct {
		name   string
		spec   string
		fields map[int]string
	}{
		{"issuer request", specs.IssuerDialect, issuerRequest},
		{"terminal answer", specs.TerminalDialect, terminalAnswer},
	} {
		b.Run(tt.name, func(b *testing.B) {
			c := &Codec{Header: Binary2, MaxLength: DefaultMaxLength, Spec: specs.MustLoad(tt.spec)}
			m := iso8583.NewMessage(c.Spec)
			setAll(b, m, tt.fields)
			w := NewWriter(c, io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Send(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
