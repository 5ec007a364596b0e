// Command switchd is the ISO 8583 payment switch daemon.
package main

import (
	"fmt"
	"os"

	payswitch "github.com/kbpay/switch/switch"
)

func main() {
	if err := startPprof(os.Getenv(pprofAddrEnv), os.Getenv(pprofContentionEnv), os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "switchd: %v\n", err)
		os.Exit(2)
	}
	os.Exit(payswitch.Main(os.Args[1:], os.Stdout, os.Stderr))
}
