package load

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/simulator/internal/clitest"
	"github.com/kbpay/switch/switch/pan"
)

func TestMainCLI(t *testing.T) {
	s := startSynth(t, time.Millisecond)
	dir := t.TempDir()
	pansFile := filepath.Join(dir, "pans.txt")
	if err := os.WriteFile(pansFile, []byte("# cards\n9410000000000005\n\n9420000000000003\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badFile, []byte("9410000000000005\n94100000000000X5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reportDir := filepath.Join(dir, "report")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string // substrings of stdout
		wantErr  []string // substrings of stderr
	}{
		{"open loop with report", []string{"--switch", s.addr, "--rate", "100", "--duration", "500ms", "--terminals", "2",
			"--mix", "purchase=90,cancel=8,refund=2", "--pans", pansFile, "--report", reportDir, "--seed", "5"},
			ExitOK, []string{"open loop, uniform arrivals, target 100.0 TPS", "p99.9", "response codes", "net cancels"}, []string{"report written"}},
		{"closed loop", []string{"--switch", s.addr, "--closed", "2", "--count", "30", "--cards", "10", "--quiet"},
			ExitOK, []string{"closed loop, 2 in flight", "sent 30, answered 30"}, nil},
		{"json", []string{"--switch", s.addr, "--rate", "50", "--count", "5", "--json", "--arrivals", "poisson"},
			ExitOK, []string{`"achieved_tps"`, `"series"`}, nil},
		{"remote refused", []string{"--switch", "192.0.2.1:8583", "--rate", "10", "--duration", "1s"},
			ExitUsage, nil, []string{"127.0.0.0/8", "--allow-remote"}},
		{"no duration", []string{"--switch", s.addr, "--rate", "10"}, ExitUsage, nil, []string{"--duration is required"}},
		{"no rate", []string{"--switch", s.addr, "--duration", "1s"}, ExitUsage, nil, []string{"--rate"}},
		{"rate and closed", []string{"--switch", s.addr, "--rate", "1", "--closed", "1", "--duration", "1s"}, ExitUsage, nil, []string{"not both"}},
		{"too long", []string{"--rate", "1", "--duration", "2h"}, ExitUsage, nil, []string{"longer than 1h"}},
		{"bad mix", []string{"--rate", "1", "--duration", "1s", "--mix", "purchase=90,void=10"}, ExitUsage, nil, []string{"void"}},
		{"two card sources", []string{"--rate", "1", "--duration", "1s", "--pans", pansFile, "--cards", "3"}, ExitUsage, nil, []string{"one of --pans"}},
		{"bad pan file", []string{"--rate", "1", "--duration", "1s", "--pans", badFile}, ExitUsage, nil, []string{"line 2"}},
		{"nothing listening", []string{"--switch", closedAddr(t), "--rate", "1", "--duration", "1s", "--timeout", "1s"}, ExitNoConnect, nil, []string{"cannot connect"}},
		{"timeouts exit 1", []string{"--switch", s.addr, "--rate", "20", "--count", "10", "--timeout", "1ms", "--no-net-cancel"}, ExitFailures, []string{"timeouts"}, nil},
		{"stray argument", []string{"--rate", "1", "--duration", "1s", "extra"}, ExitUsage, nil, []string{"unexpected arguments"}},
		{"help", []string{"-h"}, ExitOK, nil, []string{"Usage: termsim load", "--allow-remote", "FORBIDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr := clitest.Run(t, Main, tt.args, tt.wantCode, tt.wantOut, tt.wantErr)
			checkNoPAN(t, stdout+stderr)
			// A bytes.Buffer is not a terminal: no progress line.
			if strings.Contains(stderr, "\r") {
				t.Errorf("progress line written to a non-terminal")
			}
		})
	}
	raw, err := os.ReadFile(filepath.Join(reportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Run.Cards != 2 || len(rep.Run.CardsMasked) != 2 || rep.Run.CardsMasked[0] != pan.Mask("9410000000000005") {
		t.Errorf("cards in report: %d %v", rep.Run.Cards, rep.Run.CardsMasked)
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("purchase=90, cancel=8,refund=2")
	if err != nil || m != (Mix{90, 8, 2}) {
		t.Errorf("got %+v %v", m, err)
	}
	if m, err := ParseMix("sale=1,reversal=1"); err != nil || m != (Mix{1, 1, 0}) {
		t.Errorf("aliases: %+v %v", m, err)
	}
	for _, bad := range []string{"", "purchase", "purchase=-1", "purchase=x", "void=1", "purchase=0", "purchase=1,sale=2"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestCards(t *testing.T) {
	cards := GenerateCards(30, DemoBINs)
	seen := map[string]bool{}
	for _, c := range cards {
		if !pan.Luhn(c) || len(c) != 16 || seen[c] {
			t.Errorf("generated card %s: Luhn %v, length %d, repeat %v", pan.Mask(c), pan.Luhn(c), len(c), seen[c])
		}
		seen[c] = true
	}
	for _, c := range DemoCards {
		if !pan.Luhn(c) {
			t.Errorf("demo card %s fails Luhn", pan.Mask(c))
		}
	}
	got, err := parseCards(strings.NewReader("CARD_A=9410000000000005\n# x\n9420000000000003 # comment\n"), "f")
	if err != nil || len(got) != 2 || got[1] != "9420000000000003" {
		t.Errorf("parseCards: %v %v", len(got), err)
	}
	if _, err := parseCards(strings.NewReader("9410000000000099999999\n"), "f"); err == nil || strings.Contains(err.Error(), "9410000000000099999999") {
		t.Errorf("bad line: %v (must be refused, masked)", err)
	}
}

func TestFormatLive(t *testing.T) {
	line := formatLive(live{elapsed: 5 * time.Second, sent: 500, tps: 100, p99: 2.5, timeouts: 1, errors: 2}, 10*time.Second, 0, 3)
	for _, want := range []string{"[##########----------]", "5.0s", "sent 500", "tps 100", "p99 2.50ms", "in-flight 3", "timeouts 1", "errors 2"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if line := formatLive(live{p99: -1}, time.Second, 0, 0); !strings.Contains(line, "p99 -") {
		t.Errorf("no answers yet: %q", line)
	}
}

func TestProgressWritesUpdatingLine(t *testing.T) {
	s := startSynth(t, time.Millisecond)
	var buf syncBuffer
	_, err := Run(context.Background(), Config{Addr: s.addr, Rate: 100, Duration: 700 * time.Millisecond, Terminals: 1,
		Progress: &buf, ProgressInterval: 50 * time.Millisecond, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\r") < 5 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("progress output: %q", out)
	}
}
