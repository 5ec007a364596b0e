package buildinfo

import (
	"strings"
	"testing"
)

func TestLinkerValuesWin(t *testing.T) {
	Version, Commit = "v1.2.3", "0123456789abcdef"
	t.Cleanup(func() { Version, Commit = "", "" })
	got := Get()
	if got.Version != "v1.2.3" || got.Commit != "0123456789ab" || got.GoVersion == "" {
		t.Fatalf("%+v", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "version v1.2.3, commit 0123456789ab") || !strings.Contains(s, "go") {
		t.Errorf("%q", s)
	}
}

func TestDefaults(t *testing.T) {
	got := Get()
	if got.Version == "" || got.Commit == "" {
		t.Fatalf("%+v", got)
	}
}
