package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// TestReadsSeeEveryCommit: the token reader's reads share a snapshot, yet
// a read that starts after a commit through any handle on the file (this
// one or another) returned sees it: a token issued, a status changed, a
// one-time number used, use counts flushed. Each case first reads another
// token, so that the snapshot is open before the commit.
func TestReadsSeeEveryCommit(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name string
		// commit makes the change through w; check reads it through r.
		commit func(t *testing.T, w *vault, tok store.TokenRecord)
		check  func(t *testing.T, r *vault, tok store.TokenRecord)
		issued bool // tok is issued before the snapshot opens
		kind   store.TokenKind
	}{
		{name: "token issued", kind: store.DeviceToken,
			commit: func(t *testing.T, w *vault, tok store.TokenRecord) {
				if err := w.Insert(ctx, tok); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r *vault, tok store.TokenRecord) {
				if _, err := r.Get(ctx, tok.Token); err != nil {
					t.Errorf("the token issued before the read: %v", err)
				}
			}},
		{name: "tokens issued in bulk", kind: store.DeviceToken,
			commit: func(t *testing.T, w *vault, tok store.TokenRecord) {
				if err := w.InsertMany(ctx, []store.TokenRecord{tok}); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r *vault, tok store.TokenRecord) {
				if _, err := r.Get(ctx, tok.Token); err != nil {
					t.Errorf("the token issued before the read: %v", err)
				}
			}},
		{name: "status changed", kind: store.DeviceToken, issued: true,
			commit: func(t *testing.T, w *vault, tok store.TokenRecord) {
				if _, err := w.SetStatus(ctx, tok.Token, store.TokenSuspended, now); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r *vault, tok store.TokenRecord) {
				if rec, err := r.Get(ctx, tok.Token); err != nil || rec.Status != store.TokenSuspended {
					t.Errorf("after the suspension: %s, %v", rec.Status, err)
				}
			}},
		{name: "one-time number used", kind: store.OneTimeToken, issued: true,
			commit: func(t *testing.T, w *vault, tok store.TokenRecord) {
				if _, err := w.Use(ctx, tok.Token, now); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r *vault, tok store.TokenRecord) {
				if rec, err := r.Get(ctx, tok.Token); err != nil || rec.UseCount != 1 {
					t.Errorf("after the use: count %d, %v; want 1", rec.UseCount, err)
				}
			}},
		{name: "use counts flushed", kind: store.DeviceToken, issued: true,
			commit: func(t *testing.T, w *vault, tok store.TokenRecord) {
				if _, err := w.Use(ctx, tok.Token, now); err != nil {
					t.Fatal(err)
				}
				waitFlushed(t, w, tok.Token)
			},
			check: func(t *testing.T, r *vault, tok store.TokenRecord) {
				if rec, err := r.Get(ctx, tok.Token); err != nil || rec.UseCount != 1 {
					t.Errorf("after the flush: count %d, %v; want 1", rec.UseCount, err)
				}
			}},
	}
	for _, tc := range tests {
		for _, through := range []string{"this handle", "another handle"} {
			t.Run(tc.name+" through "+through, func(t *testing.T) {
				dir := t.TempDir()
				r := openAt(t, dir, false).v
				w := r
				if through == "another handle" {
					w = openAt(t, dir, false).v
				}
				first, tok := vaultToken(1, store.DeviceToken, now), vaultToken(2, tc.kind, now)
				issue := []store.TokenRecord{first}
				if tc.issued {
					issue = append(issue, tok)
				}
				if err := r.InsertMany(ctx, issue); err != nil {
					t.Fatal(err)
				}
				openSnapshot(t, r, first.Token)
				tc.commit(t, w, tok)
				tc.check(t, r, tok)
			})
		}
	}
}

// openSnapshot reads token twice through v: the first read runs alone
// (the tokens were just issued), the second begins a snapshot the reads
// after it share while nothing is committed.
func openSnapshot(t *testing.T, v *vault, token string) {
	t.Helper()
	for range 2 {
		if _, err := v.Get(context.Background(), token); err != nil {
			t.Fatal(err)
		}
	}
	if !v.reader.snapshotOpen() {
		t.Fatal("no snapshot open after two reads")
	}
}

// TestIdleReaderLetsTheWALGo: a reader left idle ends its snapshot (after
// maxStateAge at most), so the WAL frames written after it can be
// checkpointed and the WAL started again.
func TestIdleReaderLetsTheWALGo(t *testing.T) {
	dir, v, dev := deviceTokenVault(t)
	ctx := context.Background()
	openSnapshot(t, v, dev.Token)
	outside := sqlFile(t, filepath.Join(dir, "vault.db"))
	if _, err := outside.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	// A commit after the snapshot: a reader still in it keeps the WAL from
	// being started again.
	if _, err := outside.ExecContext(ctx, `UPDATE tokens SET updated_at = updated_at + 1 WHERE token = ?`, dev.Token); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the WAL started again after the last read (the reader ends its snapshot)", func() bool {
		var busy, frames, done int
		if err := outside.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &done); err != nil {
			t.Fatal(err)
		}
		return busy == 0
	})
}
