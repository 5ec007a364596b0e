package embedded

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// sqlFile opens an SQLite file on the side, closed when the test ends.
func sqlFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestUseCountsLeaveTheVaultFileAlone: device token use counts are
// written to the use counts file, not the vault file (whose every commit
// drops the token reader's page cache); every read adds them to the
// tokens row's count, and a one-time number's use still counts in its
// row.
func TestUseCountsLeaveTheVaultFileAlone(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, true)
	ctx := context.Background()
	now := time.Now()
	dev, one := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.OneTimeToken, now)
	dev.UseCount = 2 // counted in the row before (an older vault)
	if err := s.v.InsertMany(ctx, []store.TokenRecord{dev, one}); err != nil {
		t.Fatal(err)
	}
	outside := sqlFile(t, filepath.Join(dir, "vault.db"))
	version := func() (v int64) {
		t.Helper()
		// One connection: data_version moves when another one committed.
		if err := outside.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	for range 3 {
		if _, err := s.v.Use(ctx, dev.Token, now); err != nil {
			t.Fatal(err)
		}
	}
	waitFlushed(t, s.v, dev.Token)
	if after := version(); after != before {
		t.Errorf("the vault file changed (data_version %d -> %d) when use counts were flushed", before, after)
	}
	var counted int
	if err := sqlFile(t, filepath.Join(dir, "vault-uses.db")).QueryRowContext(ctx,
		`SELECT n FROM use_counts WHERE token = ?`, dev.Token).Scan(&counted); err != nil || counted != 3 {
		t.Fatalf("the use counts file holds %d uses (%v), want 3", counted, err)
	}
	if _, err := s.v.Use(ctx, one.Token, now); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func(token string) (store.TokenRecord, error){
		"Get": func(token string) (store.TokenRecord, error) { return s.v.Get(ctx, token) },
		"FindByPANHash": func(token string) (store.TokenRecord, error) {
			recs, err := s.v.FindByPANHash(ctx, dev.PANHash)
			for _, r := range recs {
				if r.Token == token {
					return r, err
				}
			}
			return store.TokenRecord{}, err
		},
	}
	for name, read := range reads {
		for tok, want := range map[string]int{dev.Token: 2 + 3, one.Token: 1} {
			if got, err := read(tok); err != nil || got.UseCount != want {
				t.Errorf("%s of %s: use count %d (%v), want %d", name, tok[:6], got.UseCount, err, want)
			}
		}
	}
}
