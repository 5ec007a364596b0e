package embedded

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// logged reports whether v has device token counts appended to the use
// log and none waiting to be appended.
func logged(v *vault) bool {
	v.counts.mu.Lock()
	defer v.counts.mu.Unlock()
	return len(v.counts.pending) == 0 && v.counts.inflight == nil && len(v.counts.batches) > 0
}

// TestAppendLeavesTheVaultFileAlone: device token uses reach the use log
// without a commit to the vault file (whose commits drop the token
// reader's page cache); a fold then adds them to the tokens rows.
func TestAppendLeavesTheVaultFileAlone(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir, Options{Instance: store.Instance{Name: "test"}, foldEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	if err := s.v.Insert(ctx, dev); err != nil {
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
	waitFor(t, "the uses' append to the log", func() bool { return logged(s.v) })
	if after := version(); after != before {
		t.Errorf("the vault file changed (data_version %d -> %d) when use counts were appended", before, after)
	}
	var inLog int
	if err := sqlFile(t, filepath.Join(dir, "vault-uses.db")).QueryRowContext(ctx,
		`SELECT coalesce(sum(n), 0) FROM use_log WHERE token = ?`, dev.Token).Scan(&inLog); err != nil || inLog != 3 {
		t.Fatalf("the use log holds %d uses (%v), want 3", inLog, err)
	}
	if got, err := s.v.Get(ctx, dev.Token); err != nil || got.UseCount != 3 {
		t.Fatalf("read with the uses logged: count %d, %v", got.UseCount, err)
	}
	if more, err := s.v.foldChunk(); err != nil || more {
		t.Fatalf("fold: more %v, %v", more, err)
	}
	var stored int
	if err := outside.QueryRowContext(ctx, `SELECT use_count FROM tokens WHERE token = ?`, dev.Token).Scan(&stored); err != nil || stored != 3 {
		t.Fatalf("after the fold the row holds %d uses (%v), want 3", stored, err)
	}
	if got, err := s.v.Get(ctx, dev.Token); err != nil || got.UseCount != 3 {
		t.Fatalf("read after the fold: count %d, %v (folded counts added twice?)", got.UseCount, err)
	}
}

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

// TestUseCountsSurviveACrash: a process that appended device token uses
// to the log and ended without closing the vault loses none of them: the
// next open folds them.
func TestUseCountsSurviveACrash(t *testing.T) {
	const uses = 5
	if dir := os.Getenv("VAULT_CRASH_DIR"); dir != "" {
		crashAfterAppend(t, dir, uses)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUseCountsSurviveACrash$")
	cmd.Env = append(os.Environ(), "VAULT_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("the crashing process: %v\n%s", err, out)
	}
	s := openAt(t, dir, true)
	got, err := s.v.Get(context.Background(), vaultToken(1, store.DeviceToken, time.Now()).Token)
	if err != nil || got.UseCount != uses {
		t.Fatalf("after the crash: use count %d (%v), want %d", got.UseCount, err, uses)
	}
	var left int
	if err := sqlFile(t, filepath.Join(dir, "vault-uses.db")).QueryRow(`SELECT count(*) FROM use_log`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left in the use log after the recovery (%v)", left, err)
	}
}

// crashAfterAppend is the crashing process: uses, their append, exit 3.
func crashAfterAppend(t *testing.T, dir string, uses int) {
	s, err := OpenDir(dir, Options{Durable: true, Instance: store.Instance{Name: "test"}, foldEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	dev := vaultToken(1, store.DeviceToken, now)
	if err := s.v.Insert(ctx, dev); err != nil {
		t.Fatal(err)
	}
	for range uses {
		if _, err := s.v.Use(ctx, dev.Token, now); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the uses' append to the log", func() bool { return logged(s.v) })
	os.Exit(3)
}

// TestUseLogRecovery: at open, the rows of writers no longer open are
// folded past their mark (a fold committed before its rows were deleted
// is not added again), then deleted with the mark; a writer still open
// in this process keeps its rows.
func TestUseLogRecovery(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	now := time.Now()
	first := openAt(t, dir, false)
	dev, other := vaultToken(1, store.DeviceToken, now), vaultToken(2, store.DeviceToken, now)
	if err := first.v.InsertMany(ctx, []store.TokenRecord{dev, other}); err != nil {
		t.Fatal(err)
	}
	live := first.v.countLog.writer
	logFile, vaultFile := sqlFile(t, filepath.Join(dir, "vault-uses.db")), sqlFile(t, filepath.Join(dir, "vault.db"))
	rows := []struct {
		writer string
		token  string
		n      int
	}{
		{"dead", dev.Token, 1},   // id 1: folded before the crash (the mark)
		{"dead", dev.Token, 2},   // id 2: folded before the crash (the mark)
		{live, other.Token, 7},   // id 3: the open handle's own
		{"dead", dev.Token, 4},   // id 4: not folded
		{"dead", other.Token, 8}, // id 5: not folded
	}
	for _, r := range rows {
		if _, err := logFile.Exec(`INSERT INTO use_log (writer, token, n, last) VALUES (?, ?, ?, ?)`, r.writer, r.token, r.n, now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vaultFile.Exec(`UPDATE tokens SET use_count = 3 WHERE token = ?`, dev.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := vaultFile.Exec(`INSERT INTO use_folds (writer, through) VALUES ('dead', 2), ('gone', 99)`); err != nil {
		t.Fatal(err)
	}
	second := openAt(t, dir, false)
	for tok, want := range map[string]int{dev.Token: 3 + 4, other.Token: 8} {
		if got, err := second.v.Get(ctx, tok); err != nil || got.UseCount != want {
			t.Errorf("%s after the recovery: use count %d (%v), want %d", tok[:6], got.UseCount, err, want)
		}
	}
	var writers []string
	q, err := logFile.Query(`SELECT writer FROM use_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var w string
		if err := q.Scan(&w); err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if len(writers) != 1 || writers[0] != live {
		t.Errorf("rows left in the log by writer: %q, want only the open handle's", writers)
	}
	var marks int
	if err := vaultFile.QueryRow(`SELECT count(*) FROM use_folds`).Scan(&marks); err != nil || marks != 0 {
		t.Errorf("%d fold marks left (%v), want none", marks, err)
	}
}
