package load

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kbpay/switch/card/pan"
)

// maskCard masks a card number or token 6+4; it is the only form in which
// a card reaches output, errors or reports.
func maskCard(s string) string { return pan.Mask(s) }

// ReadCards reads card numbers or tokens, one per line, from the file at
// path. Blank lines and lines starting with '#' are skipped. Errors name the line number and the masked value only.
func ReadCards(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading cards: %w", err)
	}
	defer f.Close()
	return parseCards(f, path)
}

func parseCards(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		// Tolerate "KEY=value" lines (demo-cards.env) and trailing comments.
		if _, v, ok := strings.Cut(s, "="); ok {
			s = strings.TrimSpace(v)
		}
		if i := strings.IndexAny(s, " \t#,"); i >= 0 {
			s = s[:i]
		}
		if len(s) < 12 || len(s) > 19 || !isDigits(s) {
			return nil, fmt.Errorf("%w: %s line %d (%s) is not a 12-19 digit card number or token", ErrConfig, name, line, maskCard(s))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s holds no card numbers", ErrConfig, name)
	}
	return out, nil
}

// DemoBINs are the BIN prefixes of the demo issuers.
var DemoBINs = []string{"9410", "9420", "9430"}

// GenerateCards returns n distinct Luhn-valid 16-digit card numbers spread
// over the given BIN prefixes (the demo issuers give every such number its
// own 1,000,000 KRW balance, so long runs do not run out of money).
func GenerateCards(n int, bins []string) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		bin := bins[i%len(bins)]
		body := fmt.Sprintf("%s%0*d", bin, 15-len(bin), 100000+i/len(bins))
		out = append(out, body+string(pan.CheckDigit(body)))
	}
	return out
}
