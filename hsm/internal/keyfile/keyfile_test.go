package keyfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomicReplacesWithMode0600AndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	for _, content := range []string{"first\n", "second\n"} {
		if err := WriteAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the folder, want only the key store", len(entries))
	}
}

func TestWriteAtomicLeavesTheOldFileOnError(t *testing.T) {
	if err := WriteAtomic(filepath.Join(t.TempDir(), "missing", "keys.json"), []byte("x")); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
}
