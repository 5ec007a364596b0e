// Package specs holds the ISO 8583 message dialects (as JSON specs loaded with
// moov-io's spec importer), field numbers, MTI helpers and the response-code table.
package specs

import (
	"embed"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/moov-io/iso8583"
	moovspecs "github.com/moov-io/iso8583/specs"
)

//go:embed *.json
var builtin embed.FS

// Built-in dialect names. Any other name given to Load is read as a file path.
const (
	// TerminalDialect is ISO 8583:1987 with ASCII fields and LL/LLL prefixes,
	// 8-byte binary bitmaps and binary DE 52/64/128: what conforming POS
	// terminals and VANs speak.
	TerminalDialect = "terminal87"
	// IssuerDialect is the demo issuers' dialect: the same fields, but
	// hex-ASCII bitmaps and hex-ASCII binary fields.
	IssuerDialect = "issuer87"
)

var cache sync.Map // name -> *iso8583.MessageSpec

// Load returns the message spec with the given built-in name (terminal87,
// issuer87) or reads the JSON spec file at that path. Built-in specs are
// parsed once and shared; a spec is immutable after loading.
func Load(nameOrPath string) (*iso8583.MessageSpec, error) {
	if s, ok := cache.Load(nameOrPath); ok {
		return s.(*iso8583.MessageSpec), nil
	}
	var raw []byte
	var err error
	if isBuiltin(nameOrPath) {
		raw, err = builtin.ReadFile(nameOrPath + ".json")
	} else {
		raw, err = os.ReadFile(nameOrPath)
	}
	if err != nil {
		return nil, fmt.Errorf("reading spec %q: %w", nameOrPath, err)
	}
	spec, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("loading spec %q: %w", nameOrPath, err)
	}
	actual, _ := cache.LoadOrStore(nameOrPath, spec)
	return actual.(*iso8583.MessageSpec), nil
}

// Parse imports a JSON message spec and checks that it defines the fields
// every dialect needs (MTI, bitmap, STAN and response code).
func Parse(raw []byte) (*iso8583.MessageSpec, error) {
	spec, err := moovspecs.ImportJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("importing JSON spec: %w", err)
	}
	for _, id := range []int{0, 1, STAN, ResponseCode} {
		if _, ok := spec.Fields[id]; !ok {
			return nil, fmt.Errorf("spec %q does not define field %d", spec.Name, id)
		}
	}
	leanPacking(spec)
	return spec, nil
}

// MustLoad is Load for built-in specs, which are known to be valid.
func MustLoad(name string) *iso8583.MessageSpec {
	s, err := Load(name)
	if err != nil {
		panic(err)
	}
	return s
}

func isBuiltin(name string) bool {
	return !strings.ContainsAny(name, "/\\.") && (name == TerminalDialect || name == IssuerDialect)
}
