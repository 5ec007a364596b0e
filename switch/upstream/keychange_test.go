package upstream

import (
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/internal/isotest"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
)

// TestIssuerKeyChangeIsNotAcknowledged: an issuer's 0800 key change (DE
// 70 161) is refused (DE 39 12): the switch cannot take a zone key under
// the zone master key through its HSM interface yet, and acknowledging it
// would make the issuer switch keys while the switch still translates
// PINs under the old one. Sign-on, sign-off and echo are still 00.
func TestIssuerKeyChangeIsNotAcknowledged(t *testing.T) {
	spec := specs.MustLoad(specs.IssuerDialect)
	answers := make(chan string, 4)
	addr := isotest.Serve(t, spec, func(c *connection.Connection, req *iso8583.Message) {
		if !isotest.SignOn(c, spec, req) {
			return
		}
		if code, _ := req.GetString(specs.NetworkMgmtCode); code != specs.NetMgmtSignOn {
			return
		}
		go func() {
			for i, code := range []string{specs.NetMgmtKeyChange, specs.NetMgmtEcho} {
				m := iso8583.NewMessage(spec)
				m.MTI(specs.MTINetworkMgmt)
				_ = m.Field(specs.TransmissionDateTime, "1201101500")
				_ = m.Field(specs.STAN, "90000"+string(rune('1'+i)))
				_ = m.Field(specs.NetworkMgmtCode, code)
				resp, err := c.Send(m)
				if err != nil {
					answers <- "error: " + err.Error()
					continue
				}
				rc, _ := resp.GetString(specs.ResponseCode)
				answers <- code + ":" + rc
			}
		}()
	})
	l := newLink(t, addr, func(rc *config.IssuerRoute) { rc.Header = "binary2" })
	waitFor(t, "sign-on", func() bool { return l.Up() == 1 })
	for _, want := range []string{"161:12", "301:00"} {
		select {
		case got := <-answers:
			if got != want {
				t.Fatalf("issuer's 0800 answered %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the issuer's 0800")
		}
	}
}
