package bench

import (
	"context"
	"io"
	"testing"

	"github.com/kbpay/switch/switch/pan"
	"github.com/kbpay/switch/switch/store/embedded"
)

// TestFillVault: the filler lands in the data folder's vault, one row per
// token, every number Luhn-valid and in the token range.
func TestFillVault(t *testing.T) {
	dir := t.TempDir()
	const n = vaultBatch + 123 // two batches, the second partial
	if err := fillVault(context.Background(), dir, n, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := embedded.OpenDir(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.Tokens().Count(context.Background()); err != nil || got != n {
		t.Fatalf("vault holds %d tokens (%v), want %d", got, err, n)
	}
	for _, i := range []int{0, 1, n - 1} {
		tok := fillerNumber(i)
		rec, err := st.Tokens().Get(context.Background(), tok)
		if err != nil || !pan.Luhn(tok) || tok[:4] != "9999" || len(rec.PANCiphertext) != 44 {
			t.Fatalf("filler %d: %v", i, err)
		}
	}
}
