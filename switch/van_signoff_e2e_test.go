package payswitch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// TestShutdownSignsOffVANLinks: SIGTERM's drain (Shutdown) answers a
// signed-on VAN link's sales in flight at the issuer, then sends the link
// an 0800 with DE 70 002 before closing it; the VAN's 0810 ends the wait.
func TestShutdownSignsOffVANLinks(t *testing.T) {
	const n = 10
	h := newVANHarness(t, func(*config.Listener) {})
	van := h.salesInFlight(t, n)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- h.sw.Shutdown(ctx)
	}()
	answersThenSignOff(t, van, n)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if got := h.logs.FilterMessage("link signed off").Len(); got != 1 {
		t.Fatalf("%d link sign-offs logged, want 1 (answered 0810)", got)
	}
}

// salesInFlight signs a VAN link on and sends n sales that the issuer
// holds for a second; it returns once the issuer has them all.
func (h vanHarness) salesInFlight(t *testing.T, n int) *rawConn {
	t.Helper()
	van := h.dial(t)
	if _, rc := van.exchange(t, netMgmt(t, specs.NetMgmtSignOn, "000001")); rc != "00" {
		t.Fatalf("sign-on answered %s", rc)
	}
	h.issuers["card-a"].SetLatency(time.Second)
	var buf []byte
	for i := range n {
		m := withField(t, purchaseMsg(t, cardA, fmt.Sprintf("%06d", 10+i), 100), specs.TerminalID, fmt.Sprintf("D%07d", i))
		buf = append(buf, frameOf(t, m)...)
	}
	if _, err := van.Write(buf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "sales at the issuer", func() bool {
		got := 0
		for _, r := range h.issuers["card-a"].Received() {
			if r.MTI == "0200" {
				got++
			}
		}
		return got == n
	})
	return van
}

// answersThenSignOff reads n sale answers (0210 00) and then the
// switch's 0800 DE 70 002, which it answers 0810 00.
func answersThenSignOff(t *testing.T, van *rawConn, n int) {
	t.Helper()
	answered := 0
	for {
		m, err := van.read(t, 20*time.Second)
		if err != nil {
			t.Fatalf("after %d answers: %v", answered, err)
		}
		mti, _ := m.GetMTI()
		if mti == specs.MTINetworkMgmt {
			if code, _ := m.GetString(specs.NetworkMgmtCode); code != specs.NetMgmtSignOff {
				t.Fatalf("switch sent 0800 DE 70 %q, want %s", code, specs.NetMgmtSignOff)
			}
			if answered != n {
				t.Fatalf("sign-off after %d of %d answers", answered, n)
			}
			resp := withField(t, withField(t, netMgmt(t, specs.NetMgmtSignOff, mustString(t, m, specs.STAN)), specs.ResponseCode, "00"), specs.TransmissionDateTime, mustString(t, m, specs.TransmissionDateTime))
			resp.MTI(specs.MTINetworkMgmtRsp)
			if _, err := van.Write(frameOf(t, resp)); err != nil {
				t.Fatal(err)
			}
			break
		}
		if rc, _ := m.GetString(specs.ResponseCode); mti != "0210" || rc != "00" {
			t.Fatalf("sale answered %s %s during the drain, want 0210 00", mti, rc)
		}
		answered++
	}
}

func mustString(t *testing.T, m *iso8583.Message, id int) string {
	t.Helper()
	v, err := m.GetString(id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestShutdownSignOffUnansweredDoesNotHold: a VAN that never answers the
// switch's 0800/002 does not hold the drain past the short sign-off wait.
func TestShutdownSignOffUnansweredDoesNotHold(t *testing.T) {
	h := newVANHarness(t, func(*config.Listener) {})
	van := h.dial(t)
	if _, rc := van.exchange(t, netMgmt(t, specs.NetMgmtSignOn, "000001")); rc != "00" {
		t.Fatalf("sign-on answered %s", rc)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- h.sw.Shutdown(ctx)
	}()
	m, err := van.read(t, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if mti, _ := m.GetMTI(); mti != specs.MTINetworkMgmt {
		t.Fatalf("switch sent %s, want 0800", mti)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown held by a VAN that does not answer its sign-off")
	}
	if got := h.logs.FilterMessage("link sign-off not answered").Len(); got != 1 {
		t.Fatalf("%d unanswered sign-offs logged, want 1", got)
	}
}
