package hosttool

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that notes how a test would end.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestMissingSkipsOutsideCIAndFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Missing(r, "haproxy not found (install the Debian package %s)", "haproxy")
			if tc.wantFail && (r.failed == "" || r.skipped != "") {
				t.Fatalf("CI=%q: failed %q skipped %q, want a failure", tc.ci, r.failed, r.skipped)
			}
			if !tc.wantFail && (r.skipped == "" || r.failed != "") {
				t.Fatalf("CI=%q: failed %q skipped %q, want a skip", tc.ci, r.failed, r.skipped)
			}
		})
	}
}

func TestLookupPrefersHighestVersion(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "15", "13"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "prog-under-test"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := Lookup("prog-under-test", filepath.Join(root, "*", "bin"))
	if want := filepath.Join(root, "15", "bin", "prog-under-test"); !ok || got != want {
		t.Fatalf("Lookup = %q, %v; want %q", got, ok, want)
	}
	if p, ok := Lookup("no-such-program-anywhere", filepath.Join(root, "*", "bin")); ok {
		t.Fatalf("found a program that does not exist: %s", p)
	}
}
