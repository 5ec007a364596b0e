package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
)

// vaultBatch is how many filler tokens one vault transaction inserts.
const vaultBatch = 20000

// fillVault writes n device tokens into the vault of switchd's data folder
// dataDir before switchd starts, straight through the store (no HSM, no
// API): numbers of the default token range (9999) no load presents,
// random bytes where the PAN's ciphertext and hash go (never decrypted: the
// load pays with the tokens provisioned afterwards through the API). The
// vault then has n rows of the real size around the ones the load uses.
func fillVault(ctx context.Context, dataDir string, n int, log io.Writer) error {
	st, err := embedded.OpenDir(dataDir, embedded.Options{})
	if err != nil {
		return fmt.Errorf("vault for %d tokens: %w", n, err)
	}
	start := time.Now()
	if err := insertFiller(ctx, st.Tokens(), n, vaultBatch); err != nil {
		_ = st.Close()
		return err
	}
	fmt.Fprintf(log, "   vault: %d tokens written in %v\n", n, time.Since(start).Round(time.Second))
	return st.Close()
}

// prepareVault gives switchd's data folder dataDir a vault of n filler
// tokens: filled into template/data the first time a run needs it (which
// takes minutes for millions), then copied from there (seconds), so every
// round and build starts from the same vault and only the first waits for
// the fill (a template filled for another n is filled again).
func prepareVault(ctx context.Context, template, dataDir string, n int, log io.Writer) error {
	filled, data := filepath.Join(template, "filled"), filepath.Join(template, "data")
	had, err := os.ReadFile(filled) // the template's token count
	if err == nil && string(had) != strconv.Itoa(n) {
		err = fs.ErrNotExist // filled for another count: again
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.RemoveAll(template); err != nil {
			return fmt.Errorf("vault template: %w", err)
		}
		if err := fillVault(ctx, data, n, log); err != nil {
			return err
		}
		if err := os.WriteFile(filled, []byte(strconv.Itoa(n)), 0o644); err != nil {
			return fmt.Errorf("vault template: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("vault template: %w", err)
	}
	start := time.Now()
	if err := os.CopyFS(dataDir, os.DirFS(data)); err != nil {
		return fmt.Errorf("copying the %d-token vault: %w", n, err)
	}
	fmt.Fprintf(log, "   vault: %d tokens copied in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

func insertFiller(ctx context.Context, v store.Tokens, n, batch int) error {
	now := time.Now().UTC()
	r := rand.New(rand.NewPCG(uint64(n), 9999))
	recs := make([]store.TokenRecord, 0, batch)
	for from := 0; from < n; from += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs = recs[:0]
		for i := from; i < min(n, from+batch); i++ {
			recs = append(recs, fillerToken(i, r, now))
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].Token < recs[j].Token })
		if err := v.InsertMany(ctx, recs); err != nil {
			return fmt.Errorf("filling the vault (%d of %d tokens): %w", from, n, err)
		}
	}
	return nil
}

// fillerNumber is the i-th filler token: a Luhn-valid number in 9999 from
// a bijection of i (unique, spread over the range like drawn ones).
func fillerNumber(i int) string {
	partial := fmt.Sprintf("9999%011d", (uint64(i)*48271+12345)%100000000000)
	return partial + string(pan.CheckDigit(partial))
}

// fillerToken is the i-th filler's record, random bytes from r where the
// PAN's ciphertext and hash go.
func fillerToken(i int, r *rand.Rand, now time.Time) store.TokenRecord {
	ct, hash := make([]byte, 44), make([]byte, 32) // AES-GCM of 16 digits; HMAC-SHA-256
	for j := range ct {
		ct[j] = byte(r.Uint32())
	}
	for j := range hash {
		hash[j] = byte(r.Uint32())
	}
	return store.TokenRecord{Token: fillerNumber(i), PANKey: "pan-data", PANKeyVersion: 1,
		PANCiphertext: ct, PANHash: hash, HashVersion: 1, MaskedPAN: "941000******0000", CardExpiry: "3012",
		ExpiresAt: now.AddDate(4, 0, 0), Status: store.TokenActive, Kind: store.DeviceToken, CreatedAt: now, UpdatedAt: now}
}
