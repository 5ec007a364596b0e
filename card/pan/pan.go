// Package pan masks and checks primary account numbers: the only way a card
// number may reach a log line, a metric, an error string or a report.
package pan

import (
	"io"
	"strings"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// Mask keeps the first six and last four digits of a PAN and replaces the
// rest with '*'. Values too short to keep both ends are masked whole.
func Mask(p string) string {
	if len(p) < 13 {
		return strings.Repeat("*", len(p))
	}
	b := []byte(p)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}

// MaskTrack2 masks the PAN part of track 2 data (before '=' or 'D') and
// hides the rest (expiry, service code, discretionary data).
func MaskTrack2(t string) string {
	i := strings.IndexAny(t, "=D")
	if i < 0 {
		return Mask(t)
	}
	return Mask(t[:i]) + "=" + strings.Repeat("*", len(t)-i-1)
}

// Luhn reports whether p is all digits and passes the Luhn (mod 10) check.
func Luhn(p string) bool {
	if len(p) < 2 {
		return false
	}
	sum, digits := luhnSum(p, false)
	return digits && sum%10 == 0
}

// CheckDigit returns the Luhn check digit to append to the digits of partial.
func CheckDigit(partial string) byte {
	sum, _ := luhnSum(partial, true)
	return byte('0' + (10-sum%10)%10)
}

// luhnSum is the Luhn sum of s: from the right, every second digit doubled
// (less 9 above 9), starting with the last digit when doubleLast. digits
// reports whether s held only digits.
func luhnSum(s string, doubleLast bool) (sum int, digits bool) {
	digits = true
	double := doubleLast
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			digits = false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum, digits
}

func hideAll(in string, _ field.Field) string { return strings.Repeat("*", len(in)) }

// Filters are the moov Describe filters that mask card data 6+4 and hide
// tracks, PIN block, ICC data and MACs entirely.
func Filters() []iso8583.FieldFilter {
	maskPAN := func(in string, _ field.Field) string { return Mask(in) }
	maskTrack := func(in string, _ field.Field) string { return MaskTrack2(in) }
	return []iso8583.FieldFilter{
		iso8583.FilterField("2", maskPAN),
		iso8583.FilterField("20", maskPAN),
		iso8583.FilterField("34", maskPAN),
		iso8583.FilterField("35", maskTrack),
		iso8583.FilterField("36", hideAll),
		iso8583.FilterField("45", hideAll),
		iso8583.FilterField("52", hideAll),
		iso8583.FilterField("55", hideAll),
		iso8583.FilterField("64", hideAll),
		iso8583.FilterField("128", hideAll),
	}
}

// Describe writes a human-readable dump of msg with card data masked.
func Describe(msg *iso8583.Message, w io.Writer) error {
	return iso8583.Describe(msg, w, Filters()...)
}

// Scrub masks every run of 13 to 19 digits in s, so that text which may echo
// input (a decoder's error, a peer's message) is safe to log.
func Scrub(s string) string {
	var b []byte
	start := -1
	flush := func(end int) {
		if start >= 0 && end-start >= 13 && end-start <= 19 {
			if b == nil {
				b = []byte(s)
			}
			copy(b[start:end], Mask(s[start:end]))
		}
		start = -1
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(s))
	if b == nil {
		return s
	}
	return string(b)
}
