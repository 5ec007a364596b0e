package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPprofLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", "[::]:6060", "192.0.2.1:6060", "localhost:6060", ":6060"} {
		if err := startPprof(addr, "", &bytes.Buffer{}); !errors.Is(err, errPprofNotLoopback) {
			t.Errorf("%q: got %v, want errPprofNotLoopback", addr, err)
		}
	}
	if err := startPprof("", "", &bytes.Buffer{}); err != nil {
		t.Errorf("unset: %v, want nothing served", err)
	}
}

func TestPprofServes(t *testing.T) {
	var out bytes.Buffer
	if err := startPprof("127.0.0.1:0", "", &out); err != nil {
		t.Fatal(err)
	}
	// "switchd: profiling on http://127.0.0.1:NNNNN/debug/pprof/ (...)"
	f := strings.Fields(out.String())
	if len(f) < 4 {
		t.Fatalf("no address announced: %q", out.String())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(f[3] + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cmdline: %s", resp.Status)
	}
}
