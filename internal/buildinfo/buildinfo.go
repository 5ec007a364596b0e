// Package buildinfo says which build a binary is: version and commit from
// the linker (-ldflags "-X github.com/kbpay/switch/internal/buildinfo.Version=v1.2.3
// -X github.com/kbpay/switch/internal/buildinfo.Commit=abc1234"), else from
// the module and VCS information Go embeds (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker; see the package comment and the Makefile.
var (
	Version = ""
	Commit  = ""
)

// Info is one binary's build.
type Info struct {
	Version   string // v1.2.3, or "devel" for an untagged build
	Commit    string // VCS revision (12 hex digits), "unknown" when not known
	Modified  bool   // built from a work tree with uncommitted changes
	GoVersion string
}

// Get reads the build information.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if len(info.Commit) > 12 {
		info.Commit = info.Commit[:12]
	}
	return info
}

// String is the one line `NAME version` prints.
func (i Info) String() string {
	dirty := ""
	if i.Modified {
		dirty = " (modified)"
	}
	return fmt.Sprintf("version %s, commit %s%s, %s %s/%s", i.Version, i.Commit, dirty, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}
