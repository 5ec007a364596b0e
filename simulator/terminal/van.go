package terminal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/kbpay/switch/specs"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// RunVAN is `termsim van`: a VAN's few long-lived links (over TLS with
// --tls-ca, mutual with --tls-cert/--tls-key), each signed on (0800/001),
// carrying --requests purchases of as many terminals (DE 41 V0000001...)
// interleaved over the links, --concurrency in flight; then each link
// signs off. It prints the count per response code and returns ExitOK
// when every answer is --expect, ExitMismatch when one is not and
// ExitNoResponse when one never came.
func RunVAN(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("termsim van", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf linkFlags
	lf.register(fs)
	var pans stringList
	fs.Var(&pans, "pan", "card `number` (repeat: sales take turns over them; printed nowhere)")
	links := fs.Int("links", 2, "VAN `links` (connections) to open")
	requests := fs.Int("requests", 1000, "purchases to send in all")
	concurrency := fs.Int("concurrency", 200, "purchases in flight at once over all links")
	amount := fs.Int64("amount", 100, "amount of each purchase, minor units")
	expect := fs.String("expect", "00", "response `code` every purchase must get")
	caFile := fs.String("tls-ca", "", "PEM `file` of the CA the switch's certificate chains to: connect over TLS")
	certFile := fs.String("tls-cert", "", "client certificate PEM `file` (mutual TLS)")
	keyFile := fs.String("tls-key", "", "client key PEM `file` (mutual TLS)")
	serverName := fs.String("tls-server-name", "", "`name` the switch's certificate must carry (default the --switch host)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if len(pans) == 0 || *links < 1 || *requests < 1 || *concurrency < 1 {
		fmt.Fprintln(stderr, "termsim van: --pan is required; --links, --requests and --concurrency must be positive")
		return ExitUsage
	}
	opts := lf.options(stderr)
	if *caFile != "" {
		cfg, err := vanTLS(*caFile, *certFile, *keyFile, *serverName)
		if err != nil {
			fmt.Fprintf(stderr, "termsim van: %v\n", err)
			return ExitUsage
		}
		opts.TLS = cfg
	}
	clients, err := openVANLinks(ctx, opts, *links)
	if err != nil {
		fmt.Fprintf(stderr, "termsim van: %v\n", err)
		return ExitNoResponse
	}
	defer func() {
		for _, c := range clients {
			_, _ = c.Send(ctx, vanNetMgmt(c, specs.NetMgmtSignOff))
			_ = c.Close()
		}
	}()
	start := time.Now()
	counts, failed := sendInterleaved(ctx, clients, pans, *requests, *concurrency, *amount)
	elapsed := time.Since(start)
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	fmt.Fprintf(stdout, "%d purchases over %d links in %v (%.0f/s)\n", *requests, len(clients), elapsed.Round(time.Millisecond), float64(*requests)/elapsed.Seconds())
	for _, c := range codes {
		fmt.Fprintf(stdout, "  DE 39 %s: %d\n", c, counts[c])
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "  no answer: %d\n", failed)
		return ExitNoResponse
	}
	if counts[*expect] != *requests {
		return ExitMismatch
	}
	return ExitOK
}

func vanTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate", caFile)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// openVANLinks dials n links and signs each on.
func openVANLinks(ctx context.Context, opts Options, n int) ([]*Client, error) {
	var clients []*Client
	for i := range n {
		c, err := Dial(ctx, opts)
		if err == nil {
			var resp *iso8583.Message
			if resp, err = c.Send(ctx, vanNetMgmt(c, specs.NetMgmtSignOn)); err == nil {
				if rc, _ := resp.GetString(specs.ResponseCode); rc != "00" {
					err = fmt.Errorf("sign-on answered %q", rc)
				}
			}
			if err != nil {
				_ = c.Close()
			}
		}
		if err != nil {
			for _, c := range clients {
				_ = c.Close()
			}
			return nil, fmt.Errorf("link %d: %w", i+1, err)
		}
		clients = append(clients, c)
	}
	return clients, nil
}

func vanNetMgmt(c *Client, code string) *iso8583.Message {
	m := iso8583.NewMessage(c.Spec())
	m.MTI(specs.MTINetworkMgmt)
	_ = m.Field(specs.TransmissionDateTime, time.Now().UTC().Format("0102150405"))
	_ = m.Field(specs.STAN, c.NextSTAN())
	_ = m.Field(specs.NetworkMgmtCode, code)
	return m
}

// sendInterleaved sends n purchases, request i on link i%len(clients)
// from terminal V<i>, conc at a time; it counts answers by DE 39 and
// requests that got none.
func sendInterleaved(ctx context.Context, clients []*Client, pans []string, n, conc int, amount int64) (map[string]int, int) {
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		failed int
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				c := clients[i%len(clients)]
				opts := c.Options()
				opts.TerminalID = fmt.Sprintf("V%07d", i%10_000_000)
				rc := "--"
				msg, err := NewPurchaseMessage(c.Spec(), Purchase{PAN: pans[i%len(pans)], Amount: amount}, c.NextSTAN(), time.Now(), opts)
				if err == nil {
					var resp *iso8583.Message
					if resp, err = c.Send(ctx, msg); err == nil {
						rc, _ = resp.GetString(specs.ResponseCode)
					}
				}
				mu.Lock()
				if err != nil {
					failed++
				} else {
					counts[rc]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts, failed
}
