package scenario_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/simulator/scenario"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// Card-data exposures: a full card or token number of our ranges, track 2
// data (number, separator, expiry), or a clear format-0 PIN field.
var (
	fullNumber = regexp.MustCompile(`(^|[^0-9])((9410|9420|9430|9999|4111)[0-9]{12})([^0-9]|$)`)
	track2     = regexp.MustCompile(`[0-9]{13,19}[=D][0-9]{4}`)
	pinField   = regexp.MustCompile(`(?i)0[4-9a-c]1234f{6,}`)
)

func exposures(text string) []string {
	var out []string
	for _, m := range fullNumber.FindAllStringSubmatch(text, -1) {
		if pan.Luhn(m[2]) {
			out = append(out, "full number "+pan.Mask(m[2]))
		}
	}
	if m := track2.FindString(text); m != "" {
		out = append(out, "track 2 data "+pan.MaskTrack2(m))
	}
	if pinField.MatchString(text) {
		out = append(out, "a clear PIN field")
	}
	return out
}

// TestCardDataHygiene runs every shipped scenario suite (purchases, tokens,
// PINs, MACs, cancels, net cancels, reconciliation) with debug logging on
// in the switch and the issuers, then reads everything a person or system
// could see: every log line, /metrics, the admin API's answers, the
// simulator's table and its JUnit report, and asserts that no full card or
// token number, no track data and no PIN appears in any of them.
func TestCardDataHygiene(t *testing.T) {
	s := liveStack(t)
	junit := filepath.Join(t.TempDir(), "suite.xml")
	var stdout, stderr bytes.Buffer
	code := scenario.Command(context.Background(), append([]string{suiteDir},
		s.args("--issuer-admin", s.issuerAdmin, "--admin", s.sw.AdminAddr(), "--junit", junit, "-v")...), &stdout, &stderr)
	if code != scenario.ExitPassed {
		t.Fatalf("suite failed (exit %d):\n%s", code, stdout.String())
	}
	sources := map[string]string{"simulator table": stdout.String(), "simulator stderr": stderr.String()}
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	sources["junit report"] = string(raw)

	get := func(url string, bearer bool) string {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if bearer {
			req.Header.Set("Authorization", "Bearer "+tokenapi.DemoBearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	admin := "http://" + s.sw.AdminAddr()
	sources["/metrics"] = get(admin+"/metrics", false)
	sources["/v1/saf"] = get(admin+"/v1/saf?state=done", true) + get(admin+"/v1/saf?state=review", true)
	sources["/v1/reconciliations"] = get(admin+"/v1/reconciliations", true)
	sources["issuer admin"] = get("http://"+s.issuerAdmin+"/ledger", false) + get("http://"+s.issuerAdmin+"/stats", false)

	var logs strings.Builder
	for _, e := range s.logs.All() {
		fmt.Fprintf(&logs, "%s %s", e.Level, e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&logs, " %s=%v", k, v)
		}
		logs.WriteString("\n")
	}
	sources["logs (debug)"] = logs.String()
	if s.logs.Len() < 50 {
		t.Fatalf("only %d log lines captured: the check would prove little", s.logs.Len())
	}
	if n := strings.Count(sources["simulator table"], " PASS"); n < 50 {
		t.Fatalf("only %d steps passed: the suite did not run as expected", n)
	}
	for name, text := range sources {
		if found := exposures(text); len(found) > 0 {
			t.Errorf("%s exposes card data: %v", name, found[:min(3, len(found))])
		}
	}
}

// TestExposureDetector proves the detector finds what it must.
func TestExposureDetector(t *testing.T) {
	for _, leak := range []string{`"pan":"9410000000000005"`, "track 9410000000000005=30121010", "block 041234FFFFFFFFFF"} {
		if len(exposures(leak)) == 0 {
			t.Errorf("not detected: %s", leak)
		}
	}
	for _, fine := range []string{"941000******0005", "rrn 632907632855", "amount 000000015000", "ts 1795591649.4552665"} {
		if got := exposures(fine); len(got) > 0 {
			t.Errorf("false alarm on %q: %v", fine, got)
		}
	}
}
