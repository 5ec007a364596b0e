// Command benchrelay is the bare frame relay of `make bench` (package
// bench/relay): terminals -> one multiplexed issuer connection, answers
// matched by STAN, nothing else (with -log, each frame made durable
// first). It runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/kbpay/switch/bench/relay"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8683", "terminal listener `address`")
	upstream := flag.String("upstream", "127.0.0.1:9101", "issuer `address` (one connection)")
	spec := flag.String("spec", "terminal87", "message `dialect` of both sides (no translation)")
	header := flag.String("header", "binary2", "length `header` of both sides")
	log := flag.String("log", "", "`file` every frame is made durable in before it is passed on (the durable relay; default none)")
	flag.Parse()
	r, err := relay.Dial(relay.Config{Upstream: *upstream, Spec: *spec, Header: *header, Log: *log,
		Errorf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, "benchrelay: "+format+"\n", a...) }})
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrelay: %v\n", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrelay: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { _ = r.Serve(ln) }()
	code := 0
	select {
	case <-ctx.Done():
	case <-r.Down(): // it stopped by itself; the reason is logged above
		code = 1
	}
	_ = ln.Close()
	_ = r.Close()
	if frames, groups := r.Journaled(); groups > 0 {
		fmt.Fprintf(os.Stderr, "benchrelay: %d frames made durable in %d groups (%.1f a group)\n", frames, groups, float64(frames)/float64(groups))
	}
	stop()
	os.Exit(code)
}
