// Package hosttool finds programs from the machine's packages (PostgreSQL,
// HAProxy, promtool) for tests that run them. A test whose program is
// missing is skipped on a developer's machine and fails under CI=true: CI
// installs every such package (.ci/run), so a skip there would hide a gap.
package hosttool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true in the environment).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test because something it needs from the machine is
// absent: a skip with the reason, or under CI=true a failure.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: CI must run this test; .ci/run installs the package)", msg)
		return
	}
	t.Skipf("skipped: %s", msg)
}

// Find returns the path of program name: the first of dirs (glob patterns
// allowed; the highest version first when a pattern matches several) that
// holds it, else $PATH. When it is nowhere it calls Missing with pkg, the
// Debian package that provides it.
func Find(t testing.TB, name, pkg string, dirs ...string) string {
	t.Helper()
	if p, ok := Lookup(name, dirs...); ok {
		return p
	}
	Missing(t, "%s not found (install the Debian package %s)", name, pkg)
	return ""
}

// Lookup is Find without the test: the path and whether it was found.
func Lookup(name string, dirs ...string) (string, bool) {
	for _, pattern := range dirs {
		matches, _ := filepath.Glob(pattern)
		sortVersionsDescending(matches)
		for _, dir := range matches {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, true
			}
		}
	}
	p, err := exec.LookPath(name)
	return p, err == nil
}

// sortVersionsDescending orders paths such as /usr/lib/postgresql/9/bin and
// /usr/lib/postgresql/15/bin by the numbers in them, highest first.
func sortVersionsDescending(paths []string) {
	sort.SliceStable(paths, func(i, j int) bool {
		a, b := numbers(paths[i]), numbers(paths[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}

func numbers(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// Tail is the last max bytes of the file at path (a server's log), for
// failure messages.
func Tail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
