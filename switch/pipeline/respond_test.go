package pipeline

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// answeredTxns are transactions as the terminal server answers them: an
// issuer's approval and decline, an issuer leg never answered, a repeat
// answered from its journal row, a switch decline before any issuer leg.
func answeredTxns(t testing.TB) map[string]*Txn {
	run := func(amount string, up *fakeIssuer) *Txn {
		txn := &Txn{Request: request(t, "0200", purchase("9410000000000005", amount)), MTI: "0200"}
		_ = Process(context.Background(), newChain(t, up), txn)
		return txn
	}
	issuer := specs.MustLoad(specs.IssuerDialect)
	return map[string]*Txn{
		"approved":   run("000000015000", &fakeIssuer{spec: issuer}),
		"declined":   run("000000005100", &fakeIssuer{spec: issuer}),
		"unanswered": run("000000015000", &fakeIssuer{spec: issuer, err: errUpstreamDown}),
		"repeat": {Request: request(t, "0200", purchase("9410000000000005", "000000015000")), MTI: "0200",
			Code: codes.Approved, RRN: "512345000001", ApprovalCode: "B2C3D4"},
		"switch decline": {Request: request(t, "0420", with(purchase("9410000000000005", "000000015000"), specs.RRN, "512345000002")),
			MTI: "0420", Code: codes.FormatError},
	}
}

// TestAnswerPacksAsRespond: the answer packed from its fields is, byte
// for byte, the frame of the message Respond builds (which a keyed
// listener signs), and carries what the terminal needs.
func TestAnswerPacksAsRespond(t *testing.T) {
	for name, txn := range answeredTxns(t) {
		t.Run(name, func(t *testing.T) {
			c := &frame.Codec{Spec: txn.Request.GetSpec()}
			a, err := Answer(txn)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Respond(txn)
			if err != nil {
				t.Fatal(err)
			}
			var fromFields, fromMessage bytes.Buffer
			if err := frame.NewWriter(c, &fromFields).AnswerFields(a, nil); err != nil {
				t.Fatal(err)
			}
			if err := frame.NewWriter(c, &fromMessage).Send(m); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fromFields.Bytes(), fromMessage.Bytes()) {
				t.Fatalf("answer packed from its fields: %d bytes, from Respond's message %d", fromFields.Len(), fromMessage.Len())
			}
			for _, id := range []int{specs.ResponseCode, specs.RRN, specs.ApprovalCode, specs.STAN, specs.TerminalID} {
				if got, _ := m.GetString(id); a.GetString(id) != got {
					t.Errorf("DE %d: %q from the fields, %q in the message", id, a.GetString(id), got)
				}
			}
			if a.GetString(specs.ResponseCode) != string(txn.Code) || (txn.Code == codes.Approved && a.GetString(specs.RRN) == "") {
				t.Errorf("DE 39 %q, DE 37 %q for code %s", a.GetString(specs.ResponseCode), a.GetString(specs.RRN), txn.Code)
			}
		})
	}
}

// BenchmarkAnswer builds an approval's answer and packs it into a frame,
// as a message (Respond, Writer.Send) and from its fields (Answer,
// Writer.AnswerFields).
func BenchmarkAnswer(b *testing.B) {
	txn := answeredTxns(b)["approved"]
	w := frame.NewWriter(&frame.Codec{Spec: txn.Request.GetSpec()}, io.Discard)
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := Respond(txn)
			if err == nil {
				err = w.Send(m)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a, err := Answer(txn)
			if err == nil {
				err = w.AnswerFields(a, nil)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
