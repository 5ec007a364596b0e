package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/internal/testnet"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
)

// card is a Luhn-valid test card under the emulator's BIN.
func card(bin string, n int) string {
	body := fmt.Sprintf("%s%0*d", bin, 15-len(bin), n)
	return body + string(pan.CheckDigit(body))
}

func pack(t *testing.T, spec *iso8583.MessageSpec, mti string, fields map[int]string) []byte {
	t.Helper()
	m := iso8583.NewMessage(spec)
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("DE %d: %v", id, err)
		}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSTANLocator(t *testing.T) {
	spec := specs.MustLoad(specs.TerminalDialect)
	loc, err := NewSTANLocator(spec)
	if err != nil {
		t.Fatal(err)
	}
	purchase := map[int]string{2: card("9410", 7), 3: "000000", 4: "000000001000", 7: "1201041500", 11: "123456",
		12: "041500", 13: "1201", 22: "051", 41: "LT000001", 42: "MERCHANT0000001", 49: "410"}
	long := map[int]string{2: "9410000000000000007", 3: "000000", 4: "000000001000", 7: "1201041500", 11: "654321"}
	reversal := map[int]string{3: "000000", 4: "000000001000", 7: "1201041500", 11: "000777", 41: "LT000001",
		90: "020012345612010415000000000000000000000000"}
	echo := map[int]string{7: "1201041500", 11: "000042", 70: "301"}
	for _, tc := range []struct {
		name, mti, want string
		fields          map[int]string
	}{
		{"purchase", "0200", "123456", purchase},
		{"19-digit PAN", "0200", "654321", long},
		{"secondary bitmap, no DE 2", "0400", "000777", reversal},
		{"network management", "0800", "000042", echo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := pack(t, spec, tc.mti, tc.fields)
			off, err := loc.Locate(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(body[off : off+6]); got != tc.want {
				t.Fatalf("DE 11 at %d reads %q, want %q", off, got, tc.want)
			}
		})
	}
	t.Run("no DE 11", func(t *testing.T) {
		body := pack(t, spec, "0800", map[int]string{7: "1201041500", 70: "301"})
		if _, err := loc.Locate(body); !errors.Is(err, ErrSTAN) {
			t.Fatalf("got %v, want ErrSTAN", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		body := pack(t, spec, "0200", purchase)
		for _, n := range []int{0, 3, 10, 20, 30} {
			if _, err := loc.Locate(body[:n]); !errors.Is(err, ErrSTAN) {
				t.Errorf("%d bytes: got %v, want ErrSTAN", n, err)
			}
		}
	})
}

// Several terminals send requests with the SAME STANs at the same time
// through one relay; each must get its own answer back (amount and DE 11
// its own), matched on the one upstream connection by the relay's STAN.
// The relay runs plain and durable (every request and answer made
// durable in its log first: the log then holds them all).
func TestRelayMatchesAnswersBySTAN(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "durable"}[durable], func(t *testing.T) { testRelay(t, durable) })
	}
}

func testRelay(t *testing.T, durable bool) {
	is, err := issuer.New(issuer.Config{Name: "card-a", Addr: "127.0.0.1:0", BINs: []string{"9410"},
		DefaultBalance: 1 << 40, Spec: specs.TerminalDialect, Header: "binary2"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })
	cfg := Config{Upstream: is.Addr(), Spec: specs.TerminalDialect, Header: "binary2", Errorf: t.Logf}
	if durable {
		cfg.Log = filepath.Join(t.TempDir(), "relay.log")
	}
	r, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.Serve(ln) }()
	t.Cleanup(func() { _ = ln.Close(); _ = r.Close() })

	const terminals, rounds = 4, 20
	spec := specs.MustLoad(specs.TerminalDialect)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, terminals*rounds)
	for i := range terminals {
		opts := terminal.Options{Addr: ln.Addr().String(), TerminalID: fmt.Sprintf("RT%06d", i+1), Timeout: 10 * time.Second}
		c, err := terminal.Dial(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range rounds {
				stan := fmt.Sprintf("%06d", round+1) // the same on every terminal
				amount := int64(1000*(i+1) + round)
				msg, err := terminal.NewPurchaseMessage(spec, terminal.Purchase{PAN: card("9410", i+1), Amount: amount},
					stan, time.Now(), c.Options())
				if err != nil {
					errs <- err
					return
				}
				resp, err := c.Send(ctx, msg)
				if err != nil {
					errs <- fmt.Errorf("terminal %d round %d: %w", i, round, err)
					return
				}
				gotSTAN, _ := resp.GetString(specs.STAN)
				gotAmount, _ := resp.GetString(specs.Amount)
				rc, _ := resp.GetString(specs.ResponseCode)
				if gotSTAN != stan || gotAmount != fmt.Sprintf("%012d", amount) || rc != "00" {
					errs <- fmt.Errorf("terminal %d round %d: answer STAN %s amount %s code %s, want STAN %s amount %d code 00",
						i, round, gotSTAN, gotAmount, rc, stan, amount)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every request and every answer went through the log (the answers
	// came, so their groups were synced before they left), and the file
	// holds them, frame after frame (it does not wrap in this test).
	frames, groups := r.Journaled()
	if !durable {
		if frames+groups != 0 {
			t.Errorf("a plain relay journaled %d frames in %d groups", frames, groups)
		}
		return
	}
	if want := uint64(2 * terminals * rounds); frames != want || groups == 0 || groups > frames {
		t.Errorf("journaled %d frames in %d groups, want %d frames", frames, groups, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := framesIn(t, cfg.Log); n != 2*terminals*rounds {
		t.Errorf("the log holds %d frames, want %d", n, 2*terminals*rounds)
	}
}

// framesIn counts the binary2-framed messages at the start of the log at
// path, up to the first zero length (the file is zeros past the last).
func framesIn(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for len(b) >= 2 {
		size := int(binary.BigEndian.Uint16(b))
		if size == 0 || 2+size > len(b) {
			break
		}
		n, b = n+1, b[2+size:]
	}
	return n
}

// A relay whose issuer connection ends stops by itself and says so
// (Down), so benchrelay exits rather than stay up unable to relay.
func TestRelayDownWhenUpstreamGoes(t *testing.T) {
	drop := make(chan struct{})
	issuer := testnet.Serve(t, testnet.Listen(t), func(net.Conn) { <-drop }) // the connection closes when this returns
	r, err := Dial(Config{Upstream: issuer.Addr(), Spec: specs.TerminalDialect, Header: "binary2", Errorf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	select {
	case <-r.Down():
		t.Fatal("down before its upstream went")
	default:
	}
	close(drop)
	select {
	case <-r.Down():
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not stop after its upstream went")
	}
}
