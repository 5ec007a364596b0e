// Command switchd is the ISO 8583 payment switch daemon.
package main

import (
	"fmt"
	"os"

	"github.com/kbpay/switch/switch/switchd"
)

func main() {
	if err := startPprof(os.Getenv(pprofAddrEnv), os.Getenv(pprofContentionEnv), os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "switchd: %v\n", err)
		os.Exit(2)
	}
	os.Exit(switchd.Main(os.Args[1:], os.Stdout, os.Stderr))
}
