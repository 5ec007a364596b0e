package payswitch_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/config"
)

const chromiumPath = "/usr/bin/chromium"

// consoleTools finds node and Debian's chromium and makes sure the e2e
// folder has playwright-core (npm ci from the committed lock file). It
// skips without them, unless CI=true: then they must be there.
func consoleTools(t *testing.T, dir string) string {
	t.Helper()
	missing := func(what string, err error) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (CI must run the console's browser test; .ci/run installs chromium, nodejs and npm)", what, err)
		}
		t.Skipf("%s: %v", what, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node", err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing("chromium", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			missing("npm", err)
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			missing("npm ci in "+dir+": "+string(out), err)
		}
	}
	return node
}

// TestConsoleInChromium: an operator logs in to the console in headless
// Chromium, sees every route, finds a sale by its RRN with its masked card
// and history, and resolves a reversal stuck in manual review with a
// reason; without a session the console shows the login page, a forged
// CSRF token is refused, a pasted card number comes back masked. The
// screenshot goes to artifacts/ (CI keeps it).
func TestConsoleInChromium(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("console", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	node := consoleTools(t, dir)
	h, rrn := newReviewHarness(t, "sw-console")
	var review []safJSON
	waitFor(t, 10*time.Second, "reversal in manual review", func() bool {
		return h.adminCall("GET", "/v1/saf?state=review", nil, &review) == 200 && len(review) == 1
	})

	artifacts := os.Getenv("CONSOLE_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join("..", "artifacts", "console")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs(filepath.Join(artifacts, "console-overview.png"))
	_ = os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "console.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CONSOLE_URL=http://"+h.sw.AdminAddr(), "CONSOLE_TOKEN="+config.DemoAdminToken, "CONSOLE_ROUTES=card-a,card-b",
		"SALE_RRN="+rrn, "SALE_CARD_MASKED="+pan.Mask(cardB), "SALE_CARD_FULL="+cardB,
		"SAF_ID="+strconv.FormatInt(review[0].ID, 10), "CONSOLE_SCREENSHOT="+shot)
	out, err := cmd.CombinedOutput()
	t.Logf("browser walk:\n%s", out)
	if err != nil {
		t.Fatalf("the browser walk failed: %v", err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}

	var got []safJSON
	if h.adminCall("GET", "/v1/saf?state=resolved", nil, &got) != 200 || len(got) != 1 ||
		!strings.Contains(got[0].LastError, "e2e-operator (console, ") || !strings.Contains(got[0].LastError, "ticket 7") {
		t.Fatalf("resolved items %+v", got)
	}
	var actions []string
	for _, e := range h.logs.FilterMessage("console audit").All() {
		actions = append(actions, e.ContextMap()["action"].(string))
	}
	for _, want := range []string{"login refused", "login", "refused", "SAF resolve", "logout"} {
		if !strings.Contains(","+strings.Join(actions, ",")+",", ","+want+",") {
			t.Errorf("audit log %v lacks %q", actions, want)
		}
	}
	for _, e := range h.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " "))
		}
		if strings.Contains(line, cardB) || strings.Contains(line, cardA) {
			t.Fatalf("a log line holds a full card number: %s", line)
		}
	}
}
