package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store/embedded"
)

// TestFillVault: the filler lands in the data folder's vault, one row per
// token (in batches, the last one partial), every number Luhn-valid and in
// the token range; filling again is refused (duplicates), never doubled.
func TestFillVault(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := fillVault(ctx, dir, 10, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := embedded.OpenDir(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 250
	if err := insertFiller(ctx, st.Tokens(), n, 100); err == nil {
		t.Fatal("filling over the same tokens: no duplicate error")
	}
	if got, err := st.Tokens().Count(ctx); err != nil || got != 10 {
		t.Fatalf("vault holds %d tokens (%v), want 10", got, err)
	}
	other, err := embedded.OpenDir(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := insertFiller(ctx, other.Tokens(), n, 100); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Tokens().Count(ctx); err != nil || got != n {
		t.Fatalf("vault holds %d tokens (%v), want %d", got, err, n)
	}
	for _, i := range []int{0, 1, n - 1} {
		tok := fillerNumber(i)
		rec, err := other.Tokens().Get(ctx, tok)
		if err != nil || !pan.Luhn(tok) || tok[:4] != "9999" || len(rec.PANCiphertext) != 44 {
			t.Fatalf("filler %d: %v", i, err)
		}
	}
}

// TestPrepareVault: the first data folder waits for the template's fill,
// the next ones get a copy of it (the same tokens, no second fill), and a
// run wanting another count fills the template again.
func TestPrepareVault(t *testing.T) {
	ctx := context.Background()
	template, root := filepath.Join(t.TempDir(), "vault-template"), t.TempDir()
	count := func(dir string) int {
		t.Helper()
		st, err := embedded.OpenDir(dir, embedded.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		n, err := st.Tokens().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		n      int
		filled bool // the template is filled (again) for this folder
	}{{30, true}, {30, false}, {40, true}, {40, false}}
	for i, tc := range tests {
		var log strings.Builder
		dir := filepath.Join(root, fmt.Sprintf("round-%d", i), "data")
		if err := prepareVault(ctx, template, dir, tc.n, &log); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(log.String(), "written"); got != tc.filled {
			t.Errorf("folder %d: filled %v, want %v (%q)", i, got, tc.filled, log.String())
		}
		if got := count(dir); got != tc.n {
			t.Errorf("folder %d holds %d tokens, want %d", i, got, tc.n)
		}
	}
}
