package switchd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kbpay/switch/internal/cli"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/settle"
	"github.com/kbpay/switch/switch/storage"
)

// settleMain is `switchd settle --date YYYY-MM-DD [--config FILE] [--out DIR]`.
func settleMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchd settle", flag.ContinueOnError)
	path := fs.String("config", "", "YAML configuration file (default: built-in)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "settlement day YYYY-MM-DD (local time)")
	out := fs.String("out", "settlement", "folder for the CSV files")
	if code, done := cli.Parse(fs, args, switchdUsage, stdout, stderr); done {
		return code
	}
	if code, done := cli.NoArgs(fs, stderr); done {
		return code
	}
	day, err := time.ParseInLocation("2006-01-02", *date, time.Local)
	if err != nil {
		fmt.Fprintf(stderr, "switchd settle: --date %q is not YYYY-MM-DD\n", *date)
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "switchd settle: %v\n", err)
			return 1
		}
	}
	st, err := storage.Open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "switchd settle: %v\n", err)
		return 1
	}
	defer st.Close()
	lines, err := settle.Lines(context.Background(), st.Lookup(), day)
	if err != nil {
		fmt.Fprintf(stderr, "switchd settle: %v\n", err)
		return 1
	}
	paths, err := settle.Write(lines, day, *out)
	if err != nil {
		fmt.Fprintf(stderr, "switchd settle: %v\n", err)
		return 1
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	if len(paths) == 0 {
		fmt.Fprintf(stdout, "switchd settle: nothing settled on %s\n", *date)
	}
	return 0
}
