package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	exampleFile   = "../../deploy/switchd.example.yaml"
	referenceFile = "../../docs/configuration.md"
)

// keyPaths lists every configuration key as a dotted path, lists marked
// with [] (listeners[].pin.key), from the yaml tags of t.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)):
			out = append(out, keyPaths(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), path+"[].")...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// commentedKey is a key line commented out in the example ("# tls:"),
// the first key of a list item included ("#   - addr: ...").
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ?(\s*)((?:- )?[a-z_0-9]+:.*)$`)

// hasPath reports whether the YAML node holds the dotted path (for a
// list, in any of its items).
func hasPath(n *yaml.Node, path string) bool {
	if n.Kind == yaml.DocumentNode {
		return hasPath(n.Content[0], path)
	}
	head, rest, _ := strings.Cut(path, ".")
	key, list := strings.CutSuffix(head, "[]")
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != key {
			continue
		}
		v := n.Content[i+1]
		if rest == "" {
			return true
		}
		if !list {
			return hasPath(v, rest)
		}
		for _, item := range v.Content {
			if hasPath(item, rest) {
				return true
			}
		}
	}
	return false
}

// TestExampleAndReferenceCoverEveryKey: a configuration field missing from
// deploy/switchd.example.yaml (active or commented out) or from
// docs/configuration.md fails here.
func TestExampleAndReferenceCoverEveryKey(t *testing.T) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	reference, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	var all yaml.Node
	if err := yaml.Unmarshal(commentedKey.ReplaceAll(example, []byte("$1$2$3")), &all); err != nil {
		t.Fatalf("example with its commented keys: %v", err)
	}
	paths := keyPaths(reflect.TypeOf(Config{}), "")
	if len(paths) < 50 {
		t.Fatalf("only %d keys found: %v", len(paths), paths)
	}
	for _, p := range paths {
		if !hasPath(&all, p) {
			t.Errorf("%s is missing from %s", p, exampleFile)
		}
		if !strings.Contains(string(reference), "`"+p+"`") {
			t.Errorf("%s is missing from %s (as `%s`)", p, referenceFile, p)
		}
	}
}

// TestExampleShowsTheDefaults: the example, as shipped, is exactly the
// built-in configuration.
func TestExampleShowsTheDefaults(t *testing.T) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnv(example, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseEnv(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the example differs from the defaults:\n got %+v\nwant %+v", got, want)
	}
}
