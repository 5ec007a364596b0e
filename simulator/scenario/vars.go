package scenario

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Lookup resolves a variable name (lower case) to its value.
type Lookup func(name string) (string, bool)

// Expand replaces ${name} with the variable's value and ${name:-default}
// with the value or, when the variable is undefined or empty, the default
// (which may itself hold variables); $$ is a literal $. Names are case
// insensitive. An undefined variable without a default is an error.
func Expand(s string, lookup Lookup) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := closingBrace(s, i+2)
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		inner := s[i+2 : end]
		name, def, hasDef := strings.Cut(inner, ":-")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			return "", fmt.Errorf("empty variable name in %q", s)
		}
		v, ok := lookup(name)
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			d, err := Expand(def, lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(d)
		default:
			return "", fmt.Errorf("undefined variable ${%s} (define it in a *.env file beside the scenarios, as simulator/scenarios/demo-cards.env does, or with --var %s=...)", name, strings.ToUpper(name))
		}
		i = end
	}
	return b.String(), nil
}

// closingBrace finds the } that closes the ${ whose body starts at from,
// allowing nested ${...} in a default.
func closingBrace(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

// ParseVars reads KEY=VALUE lines (the demo-cards.env format, which a
// shell can also source): blank lines and # comments are skipped, an
// `export ` prefix is allowed, and a value in matching single or double
// quotes loses them. Keys are stored in lower case.
func ParseVars(raw []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !identRE.MatchString(k) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.ToLower(k)] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// LoadVars reads a KEY=VALUE file (see ParseVars).
func LoadVars(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vars: %w", err)
	}
	m, err := ParseVars(raw)
	if err != nil {
		return nil, fmt.Errorf("vars %s: %w", path, err)
	}
	return m, nil
}
