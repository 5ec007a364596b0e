// Package datadir locks the folders a switchd instance keeps its embedded
// state in (vault, journal, key store), so that a second instance started
// on the same folder stops at once instead of recovering, reversing or
// overwriting the live instance's transactions.
//
// The lock is flock(2) on a file named LOCK in each folder: exclusive,
// held for the life of the process, and released by the kernel when the
// process dies however it dies, so a crash never leaves a stale lock. The
// file holds the holder's PID for the error message; it is never removed.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file in each locked folder.
const FileName = "LOCK"

// ErrInUse is a folder locked by another process (or another Lock of this
// one); errors.Is matches an *InUseError with it.
var ErrInUse = errors.New("data folder in use by another switchd")

// InUseError names the folder and, when the lock file says, the PID of the
// process holding it.
type InUseError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *InUseError) Error() string {
	holder := "another switchd"
	if e.PID > 0 {
		holder = fmt.Sprintf("another switchd (pid %d)", e.PID)
	}
	return fmt.Sprintf("data folder %s is in use by %s; each instance needs its own data_dir", e.Dir, holder)
}

// Is makes errors.Is(err, ErrInUse) hold.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Lock holds the locks on one or more folders until Release.
type Lock struct {
	files []*os.File
}

// Acquire creates each folder if missing (0700) and locks it, without
// waiting: a folder locked elsewhere fails with an *InUseError and leaves
// nothing locked. The same folder named twice (or through a symlink) is
// locked once.
func Acquire(dirs ...string) (*Lock, error) {
	l := &Lock{}
	seen := map[string]bool{}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			_ = l.Release()
			return nil, fmt.Errorf("creating data folder %s: %w", dir, err)
		}
		key, err := canonical(dir)
		if err != nil {
			_ = l.Release()
			return nil, err
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		f, err := lockDir(dir)
		if err != nil {
			_ = l.Release()
			return nil, err
		}
		l.files = append(l.files, f)
	}
	return l, nil
}

// Release unlocks every folder; a nil Lock or a second call does nothing.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, f := range l.files {
		if err := unlock(f); err != nil {
			errs = append(errs, fmt.Errorf("unlocking %s: %w", f.Name(), err))
		}
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", f.Name(), err))
		}
	}
	l.files = nil
	return errors.Join(errs...)
}

func canonical(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving data folder %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	return abs, nil
}

// lockDir opens dir/LOCK and locks it; on success it writes our PID.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if !held {
		pid := holderPID(f)
		_ = f.Close()
		return nil, &InUseError{Dir: dir, PID: pid}
	}
	if err := writePID(f); err != nil {
		_ = unlock(f)
		_ = f.Close()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return f, nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holderPID reads the PID the holder wrote (0 when it has not yet, or the
// file says something else).
func holderPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
