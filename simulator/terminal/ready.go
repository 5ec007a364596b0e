package terminal

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Readiness is a switch's /readyz answer.
type Readiness struct {
	Ready    bool `json:"ready"`
	Draining bool `json:"draining"`
	Routes   []struct {
		Name    string `json:"name"`
		LinksUp int    `json:"links_up"`
	} `json:"routes"`
}

// AllRoutesUp reports whether the switch is ready and every route has at
// least one signed-on issuer link.
func (r Readiness) AllRoutesUp() bool {
	if !r.Ready {
		return false
	}
	for _, rt := range r.Routes {
		if rt.LinksUp < 1 {
			return false
		}
	}
	return true
}

// WaitReady polls http://admin/readyz until every route is up or ctx ends.
func WaitReady(ctx context.Context, admin string) (Readiness, error) {
	client := &http.Client{Timeout: time.Second}
	var last Readiness
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
		if err != nil {
			return last, fmt.Errorf("readyz request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			lastErr = json.NewDecoder(resp.Body).Decode(&last)
			_ = resp.Body.Close()
			if lastErr == nil && last.AllRoutesUp() {
				return last, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("switch at %s not ready: %w", admin, lastErr)
			}
			return last, fmt.Errorf("switch at %s not ready: routes %+v", admin, last.Routes)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RunReady is `termsim ready [--admin ADDR] [--timeout D]`: exit 0 once the
// switch is ready with every issuer route signed on, 3 when it is not in time.
func RunReady(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ready", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "127.0.0.1:8580", "switch admin address")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait")
	if code, done := ParseFlags(fs, args); done {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := WaitReady(ctx, *admin)
	if err != nil {
		fmt.Fprintf(stderr, "termsim ready: %v\n", err)
		return ExitNoResponse
	}
	for _, rt := range r.Routes {
		fmt.Fprintf(stdout, "route %-10s links up: %d\n", rt.Name, rt.LinksUp)
	}
	return ExitOK
}
