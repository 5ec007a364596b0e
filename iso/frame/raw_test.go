package frame

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/specs"
)

// TestKeptRawIsReleasedWithTheMessage: frames read with KeepRaw whose
// message nobody takes (a response-class MTI the connection drops, a frame
// without DE 11, ...) must not stay in the codec once the message is gone;
// a taken one is gone at once.
func TestKeptRawIsReleasedWithTheMessage(t *testing.T) {
	c := terminalCodec(t)
	c.KeepRaw = true
	var stream bytes.Buffer
	for _, mti := range []string{"0210", "0410", "0810", "0200"} {
		msg := iso8583.NewMessage(c.Spec)
		msg.MTI(mti)
		_ = msg.Field(specs.ResponseCode, "00")
		b, err := c.Pack(msg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2500; i++ {
			stream.Write(b)
		}
	}
	r := bytes.NewReader(stream.Bytes())
	taken := 0
	for i := 0; r.Len() > 0; i++ {
		msg, err := c.ReadMessage(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i%10 == 0 { // the ones a handler gets
			if raw := c.TakeRaw(msg); len(raw) == 0 {
				t.Fatalf("frame %d: TakeRaw returned nothing", i)
			}
			if raw := c.TakeRaw(msg); raw != nil {
				t.Fatalf("frame %d: TakeRaw returned the frame twice", i)
			}
			taken++
		}
	}
	if taken == 0 {
		t.Fatal("no frames read")
	}
	testnet.EventuallyOK(t, 10*time.Second, "dropped messages' frames released", func() error {
		runtime.GC()
		if n := c.keptFrames(); n != 0 {
			return fmt.Errorf("%d frames still kept after their messages were dropped", n)
		}
		return nil
	})
}

func (c *Codec) keptFrames() int {
	n := 0
	c.raw.Range(func(any, any) bool { n++; return true })
	return n
}
