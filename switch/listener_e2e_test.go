package payswitch_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
	payswitch "github.com/kbpay/switch/switch"
	"github.com/kbpay/switch/switch/config"
)

// startQuietSwitch starts a switch on cfg without logs (a flood of odd
// frames must not fill an in-memory log observer in a heap test).
func startQuietSwitch(t *testing.T, cfg config.Config) *payswitch.Switch {
	t.Helper()
	cfg, err := config.Parse(mustYAML(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	sw, err := payswitch.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	})
	return sw
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestKeyedListenerDoesNotKeepUnhandledFrames: an unauthenticated sender
// floods a keyed listener with frames the switch never serves (answers
// without a request, with and without DE 11); once they are read, the
// switch's live heap must not hold them (it kept every raw frame before).
func TestKeyedListenerDoesNotKeepUnhandledFrames(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners = []config.Listener{{Name: "keyed", Addr: "127.0.0.1:0", MAC: &config.MACKey{Key: "mac-demo", Algorithm: "retail"}}}
	sw := startQuietSwitch(t, cfg)
	spec := specs.MustLoad(specs.TerminalDialect)
	bulk := strings.Repeat("X", 999) // ~4 KiB a frame
	odd := func(mti, stan string) []byte {
		m := iso8583.NewMessage(spec)
		m.MTI(mti)
		_ = m.Field(specs.ResponseCode, "00")
		if stan != "" {
			_ = m.Field(specs.STAN, stan)
		}
		for _, id := range []int{48, 61, 62, 63} {
			_ = m.Field(id, bulk)
		}
		return frameOf(t, m)
	}
	const frames = 12_000 // ~48 MiB on the wire
	base := liveHeap()
	rc := dialRaw(t, sw.ListenerAddr("keyed"))
	for i := 0; i < frames; i++ {
		var f []byte
		switch i % 4 {
		case 0:
			f = odd("0210", "")
		case 1:
			f = odd("0410", "")
		case 2:
			f = odd("0810", fmt.Sprintf("%06d", i))
		default:
			f = odd("0230", fmt.Sprintf("%06d", i))
		}
		if _, err := rc.Write(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	// A request without a MAC is answered 63: by then every frame before
	// it has been read (one reader per connection, in order).
	if _, err := rc.Write(frameOf(t, purchaseMsg(t, cardA, "000001", 100))); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.read(t, 60*time.Second)
	if err != nil {
		t.Fatalf("no answer after the flood: %v", err)
	}
	if code, _ := resp.GetString(specs.ResponseCode); code != "63" {
		t.Fatalf("DE 39 %s, want 63", code)
	}
	// The connection stays open: what it holds must be bounded while it
	// lives. Before the fix ~100 MiB stayed live here.
	const bound = 24 << 20
	var grown int64
	testnet.EventuallyOK(t, 20*time.Second, "a bounded live heap", func() error {
		if grown = int64(liveHeap()) - int64(base); grown >= bound {
			return fmt.Errorf("live heap grew %d MiB over %d unhandled frames (bound %d MiB)", grown>>20, frames, bound>>20)
		}
		return nil
	})
	t.Logf("live heap grew %d KiB over %d frames", grown>>10, frames)
}
