package txnlog_test

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/pipeline"
	"github.com/kbpay/switch/switch/txnlog"
)

// TestLineMasksTheCard: the one line per transaction carries the card
// masked 6+4, in the card field and in the reason, never in clear.
func TestLineMasksTheCard(t *testing.T) {
	const card = "9410000000000005"
	core, logs := observer.New(zapcore.InfoLevel)
	txn := &pipeline.Txn{MTI: "0200", PAN: card, Route: "card-a", Code: codes.Code("91"), Received: time.Now(), Token: "9999000000000001"}
	txnlog.Write(zap.New(core), txn, nil, "issuer down for card "+card)

	lines := logs.All()
	if len(lines) != 1 || lines[0].Message != txnlog.Message {
		t.Fatalf("lines %v", lines)
	}
	f := lines[0].ContextMap()
	if f["card"] != "941000******0005" || f["route"] != "card-a" || f["rc"] != "91" || f["tokenized"] != true {
		t.Errorf("fields %v", f)
	}
	for k, v := range f {
		if s, ok := v.(string); ok && strings.Contains(s, card) {
			t.Errorf("field %s carries the full card: %q", k, s)
		}
	}
}
