// Command switchd is the ISO 8583 payment switch daemon.
package main

import (
	"os"

	"github.com/kbpay/switch/switch/switchd"
)

func main() {
	os.Exit(switchd.Main(os.Args[1:], os.Stdout, os.Stderr))
}
