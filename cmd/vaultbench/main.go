// Command vaultbench loads a token vault with millions of tokens through an
// HSM backend and measures load time, file size and detokenization latency.
package main

import (
	"context"
	"os"

	"github.com/kbpay/switch/switch/vault/vaultbench"
)

func main() {
	os.Exit(vaultbench.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
