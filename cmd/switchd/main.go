// Command switchd is the ISO 8583 payment switch daemon.
package main

import (
	"os"

	payswitch "github.com/kbpay/switch/switch"
)

func main() {
	os.Exit(payswitch.Main(os.Args[1:], os.Stdout, os.Stderr))
}
