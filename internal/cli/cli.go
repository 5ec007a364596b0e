// Package cli holds what every kbpay command line does the same way:
// --help prints the usage on stdout and exits 0, a bad flag or a stray
// argument is one line on stderr and exit status 2, `version` and
// --version print the build.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kbpay/switch/internal/buildinfo"
)

// ExitUsage is the exit status of a command line that could not be parsed.
const ExitUsage = 2

// Parse parses args with fs (whose own output is silenced). done is true
// when the caller must return code at once: after --help (usage on
// stdout, 0) or a bad flag (one line on stderr, ExitUsage).
func Parse(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, strings.TrimSpace(usage))
			return 0, true
		}
		return Usagef(stderr, fs.Name(), "%v", err), true
	}
	return 0, false
}

// Usagef prints one usage error line and returns ExitUsage.
func Usagef(stderr io.Writer, name, format string, a ...any) int {
	prog, _, _ := strings.Cut(name, " ")
	fmt.Fprintf(stderr, "%s: %s (%s --help shows the usage)\n", name, fmt.Sprintf(format, a...), prog)
	return ExitUsage
}

// NoArgs reports a stray argument left after the flags.
func NoArgs(fs *flag.FlagSet, stderr io.Writer) (code int, done bool) {
	if fs.NArg() == 0 {
		return 0, false
	}
	return Usagef(stderr, fs.Name(), "unexpected argument %q", fs.Arg(0)), true
}

// Version prints "NAME version ..., commit ..., goX.Y" on w.
func Version(w io.Writer, name string) int {
	fmt.Fprintf(w, "%s %s\n", name, buildinfo.Get())
	return 0
}
