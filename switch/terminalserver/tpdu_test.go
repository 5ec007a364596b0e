package terminalserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/pipeline"
)

// TestAnswersEchoTheirOwnTPDU: two terminals multiplexed over one
// connection, each with its own TPDU; both requests are read before
// either is answered, and each answer carries its own request's TPDU
// with destination and source swapped, not the last one read.
func TestAnswersEchoTheirOwnTPDU(t *testing.T) {
	tpdus := map[string]isotest.TPDU{ // by STAN
		"000101": {0x60, 0x01, 0x11, 0x02, 0x22},
		"000202": {0x60, 0x03, 0x33, 0x04, 0x44},
	}
	var entered sync.WaitGroup
	entered.Add(len(tpdus))
	// Every request waits for all of them: the answers are written only
	// once the connection has read both.
	handler := pipeline.HandlerFunc(func(ctx context.Context, txn *pipeline.Txn) error {
		entered.Done()
		entered.Wait()
		txn.Code = codes.Approved
		return nil
	})
	l := newTestListener(t, func(c *config.Listener) { c.Header = "binary2+tpdu" }, handler)
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", l.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for stan, tpdu := range tpdus {
		req := iso8583.NewMessage(l.spec)
		req.MTI(specs.MTINetworkMgmt)
		for id, v := range map[int]string{specs.TransmissionDateTime: "1201083000", specs.STAN: stan, specs.NetworkMgmtCode: specs.NetMgmtEcho} {
			if err := req.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		isotest.WriteTPDUFrame(t, nc, tpdu, req)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	for range tpdus {
		tpdu, resp, err := isotest.ReadTPDUFrame(r, l.spec)
		if err != nil {
			t.Fatal(err)
		}
		stan, _ := resp.GetString(specs.STAN)
		sent, ok := tpdus[fmt.Sprintf("%06s", stan)]
		if !ok {
			t.Fatalf("answer with unknown STAN %q", stan)
		}
		if want := isotest.Swapped(sent); tpdu != want {
			t.Errorf("answer to STAN %s carries TPDU % x, want % x (its request's % x swapped)", stan, tpdu, want, sent)
		}
	}
}
