// Package embeddedtest opens embedded stores for tests.
package embeddedtest

import (
	"testing"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded"
)

// Open opens an embedded store in a fresh temporary folder (not durable:
// tests need no fsync), as instance "test" unless an option says
// otherwise, and closes it when the test ends.
func Open(t testing.TB, opts ...func(*embedded.Options)) store.Store {
	t.Helper()
	return OpenIn(t, t.TempDir(), opts...)
}

// OpenIn is Open on folder dir: two handles on one folder share the data,
// as two instances share a store.
func OpenIn(t testing.TB, dir string, opts ...func(*embedded.Options)) store.Store {
	t.Helper()
	o := embedded.Options{Instance: store.Instance{Name: "test"}}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := embedded.OpenDir(dir, o)
	if err != nil {
		t.Fatalf("opening the embedded store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Durable makes the store fsync every journal commit.
func Durable(o *embedded.Options) { o.Durable = true }
