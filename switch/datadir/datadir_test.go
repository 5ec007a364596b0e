package datadir

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustAcquire(t *testing.T, dirs ...string) *Lock {
	t.Helper()
	l, err := Acquire(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release() })
	return l
}

func wantInUse(t *testing.T, err error, dir string, pid int) {
	t.Helper()
	var ie *InUseError
	if !errors.Is(err, ErrInUse) || !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an InUseError", err)
	}
	want := fmt.Sprintf("data folder %s is in use by another switchd (pid %d); each instance needs its own data_dir", dir, pid)
	if ie.Dir != dir || ie.PID != pid || err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

func TestSecondLockOnAFolderFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by Acquire
	first := mustAcquire(t, dir)
	_, err := Acquire(dir)
	wantInUse(t, err, dir, os.Getpid())
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	mustAcquire(t, dir) // free again
}

func TestLockSpansEveryFolder(t *testing.T) {
	data, journal, vault := t.TempDir(), t.TempDir(), t.TempDir()
	link := filepath.Join(t.TempDir(), "data-link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	// The same folder twice, or through a symlink, is one lock, not a
	// conflict with itself.
	mustAcquire(t, data, journal, data, link, vault)
	for _, dirs := range [][]string{{journal}, {vault}, {link}, {t.TempDir(), vault}} {
		_, err := Acquire(dirs...)
		wantInUse(t, err, dirs[len(dirs)-1], os.Getpid())
	}
}

func TestFailedAcquireLeavesNothingLocked(t *testing.T) {
	free, busy := t.TempDir(), t.TempDir()
	mustAcquire(t, busy)
	if _, err := Acquire(free, busy); !errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
	mustAcquire(t, free) // the partial lock on free was released
}

func TestUnknownHolderPID(t *testing.T) {
	dir := t.TempDir()
	l := mustAcquire(t, dir)
	if err := l.files[0].Truncate(0); err != nil { // a holder that has not written its PID yet
		t.Fatal(err)
	}
	_, err := Acquire(dir)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by another switchd; each instance") {
		t.Fatalf("err = %v", err)
	}
}

// holderEnv makes the test binary a process that locks a folder, says so
// and waits to be killed (TestLockDiesWithItsProcess).
const holderEnv = "DATADIR_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		if _, err := Acquire(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// TestLockDiesWithItsProcess: another process's lock names its PID, and
// the kernel releases it when that process is killed (no stale lock).
func TestLockDiesWithItsProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, len("locked"))
	if _, err := out.Read(buf); err != nil || string(buf) != "locked" {
		t.Fatalf("holder process: %q, %v", buf, err)
	}
	_, err = Acquire(dir)
	wantInUse(t, err, dir, cmd.Process.Pid)

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	mustAcquire(t, dir)
}
