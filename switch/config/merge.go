package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseEnv decodes YAML over the defaults and validates the result. Each
// listener and route in the file keeps every default it does not override:
// an item named like a built-in one (listeners terminal and van, routes
// card-a, card-b and prepaid) starts from that item, any other from the
// per-field defaults. The development defaults, the public demo PIN keys,
// are added only in development mode (DevelopmentMode, judged with getenv):
// outside it a listener or route without a pin section has no PIN key.
func ParseEnv(raw []byte, getenv func(string) string) (Config, error) {
	c := Config{InstanceID: InstanceIDAuto} // left out: assigned by the shared store
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parsing YAML: %w", explainUnknownKeys(err))
	}
	d := Default()
	c.Listeners = mergeItems(c.Listeners, d.Listeners, func(l Listener) string { return l.Name })
	c.Routes = mergeItems(c.Routes, d.Routes, func(r IssuerRoute) string { return r.Name })
	c.applyDefaults()
	if dev, _ := c.DevelopmentMode(getenv); dev {
		c.applyDevelopmentDefaults(d)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// mergeItems returns the file's items, each with the fields it leaves
// unset taken from the built-in item of the same name (without its demo
// PIN key, a development default); no items at all means the built-in
// ones.
func mergeItems[T any](file, builtin []T, name func(T) string) []T {
	if file == nil {
		file = append([]T(nil), builtin...)
		for i := range file {
			clearPIN(&file[i])
		}
		return file
	}
	for i := range file {
		for _, b := range builtin {
			if name(file[i]) == name(b) {
				clearPIN(&b)
				fillZero(reflect.ValueOf(&file[i]).Elem(), reflect.ValueOf(b))
			}
		}
	}
	return file
}

func clearPIN(item any) {
	if f := reflect.ValueOf(item).Elem().FieldByName("PIN"); f.IsValid() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// fillZero sets every zero field of dst to src's value.
func fillZero(dst, src reflect.Value) {
	for i := 0; i < dst.NumField(); i++ {
		if f := dst.Field(i); f.IsZero() {
			f.Set(src.Field(i))
		}
	}
}

// applyDevelopmentDefaults gives a listener without a pin section the
// demo key of the built-in listener of its name, and a route without one
// the demo zone PIN key.
func (c *Config) applyDevelopmentDefaults(builtin Config) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		for _, b := range builtin.Listeners {
			if l.PIN == nil && b.Name == l.Name && b.PIN != nil {
				pin := *b.PIN
				l.PIN = &pin
			}
		}
	}
	for i := range c.Routes {
		if c.Routes[i].PIN == nil {
			c.Routes[i].PIN = &PINKey{Key: DemoZonePINKey}
		}
	}
}

// DemoZonePINKey is a route's zone PIN key in development mode when the
// route names none.
const DemoZonePINKey = "zpk-demo"

var unknownField = regexp.MustCompile(`field (\S+) not found in type config\.(\w+)`)

// explainUnknownKeys rewrites yaml's "field x not found in type
// config.Listener" into the operator's words with the nearest known key.
func explainUnknownKeys(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	types := structTypes(reflect.TypeOf(Config{}), map[string]reflect.Type{})
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		lines[i] = e
		m := unknownField.FindStringSubmatchIndex(e)
		if m == nil {
			continue
		}
		key, typ := e[m[2]:m[3]], e[m[4]:m[5]]
		msg := fmt.Sprintf("unknown key %q %s", key, where(typ))
		if s := nearest(key, yamlKeys(types[typ])); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		lines[i] = e[:m[0]] + msg + e[m[1]:]
	}
	return errors.New(strings.Join(lines, "\n"))
}

func where(typ string) string {
	names := map[string]string{"Config": "at the top level", "Listener": "in a listener", "IssuerRoute": "in a route",
		"PINKey": "in a pin section", "MACKey": "in a mac section", "AdminTLS": "in admin.tls", "PKCS11": "in hsm.pkcs11"}
	if w, ok := names[typ]; ok {
		return w
	}
	return "in " + strings.ToLower(typ)
}

// structTypes maps the name of every struct type reachable from t to it.
func structTypes(t reflect.Type, seen map[string]reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t.Name()] != nil || t.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
		return seen
	}
	seen[t.Name()] = t
	for i := 0; i < t.NumField(); i++ {
		structTypes(t.Field(i).Type, seen)
	}
	return seen
}

// yamlKeys are a struct type's YAML keys.
func yamlKeys(t reflect.Type) []string {
	if t == nil {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// nearest is the known key closest to key by edit distance, if it is
// close enough to be a typo.
func nearest(key string, known []string) string {
	best, bestD := "", len(key)/2+2
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// checkAddrPort reports a listen address whose port is not a number in
// 0..65535 (0: any free port).
func checkAddrPort(bad func(string, ...any), where, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return // checkAddr reports it
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil:
		bad("%s: address %q: port %q is not a number", where, addr, port)
	case n < 0 || n > 65535:
		bad("%s: address %q: port %d outside 0..65535", where, addr, n)
	}
}

// checkDuplicateAddrs reports two listeners, or a listener and the admin
// API, on one address (port 0 picks a free port and never collides).
func (c *Config) checkDuplicateAddrs(bad func(string, ...any)) {
	owner := map[string]string{}
	claim := func(who, addr string) {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			return
		}
		if prev, ok := owner[addr]; ok {
			bad("address %s is used by both %s and %s", addr, prev, who)
			return
		}
		owner[addr] = who
	}
	for _, l := range c.Listeners {
		claim("listener "+l.Name, l.Addr)
	}
	claim("admin", c.Admin.Addr)
}

// PINProblems lists what makes PIN transactions fail for want of a key.
// A route without a zone PIN key while some listener takes PINs declines
// every PIN transaction to that route: a problem. A listener without a
// terminal PIN key declines the PIN transactions it receives, which suits
// a listener whose terminals never send PINs: a warning.
func (c *Config) PINProblems() (problems []error, warnings []string) {
	var pinListener string
	for _, l := range c.Listeners {
		if l.PIN == nil {
			warnings = append(warnings, fmt.Sprintf("listener %s has no terminal PIN key (pin.key): PIN transactions it receives are declined", l.Name))
		} else if pinListener == "" {
			pinListener = l.Name
		}
	}
	if pinListener == "" {
		return nil, warnings
	}
	for _, r := range c.Routes {
		if r.PIN == nil {
			problems = append(problems, fmt.Errorf("route %s has no zone PIN key (pin.key) but listener %s accepts PINs: its PIN transactions would be declined", r.Name, pinListener))
		}
	}
	return problems, warnings
}
