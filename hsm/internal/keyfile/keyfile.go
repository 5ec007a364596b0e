// Package keyfile writes the HSM backends' key-store files: one atomic
// replace, so a crash leaves the old store or the new one, never half.
package keyfile

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteAtomic replaces path with data: a temporary file in the same
// directory (mode 0600), fsync, rename over path, then fsync of the
// directory so the rename itself survives a crash. On error the temporary
// file is removed and path is untouched.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
