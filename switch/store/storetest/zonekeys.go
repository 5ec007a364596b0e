package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kbpay/switch/switch/store"
)

// testZoneKeysLatestAcrossInstances: a key change one instance records is
// the route's latest for every instance on the data, as recorded (the key
// under the ZMK, its KCV, version, who and when); a later record of the
// route supersedes it, other routes keep theirs, and a route without any
// is ErrNotFound.
func testZoneKeysLatestAcrossInstances(t *testing.T, open Open) {
	a, b := as(open, instA), as(open, instB)
	if _, err := b.ZoneKeys().Latest(ctx, "card-a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest key change of a route without any: %v, want ErrNotFound", err)
	}
	first := store.ZoneKey{Route: "card-a", Label: "zpk-card-a", ZMK: "zmk-card-a", Version: 2,
		Wrapped: bytes.Repeat([]byte{0xA1}, 16), KCV: []byte{1, 2, 3}, Instance: instA, At: t0}
	second := first
	second.Version, second.Wrapped, second.KCV, second.Instance, second.At = 3, bytes.Repeat([]byte{0xB2}, 24), []byte{4, 5, 6}, instB, t0.Add(1)
	other := first
	other.Route, other.Label = "card-b", "zpk-card-b"
	for _, rec := range []struct {
		by store.Store
		k  store.ZoneKey
	}{{a, first}, {a, other}} {
		if err := rec.by.ZoneKeys().Record(ctx, rec.k); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s store.Store, want store.ZoneKey) int64 {
		t.Helper()
		got, err := s.ZoneKeys().Latest(ctx, want.Route)
		if err != nil {
			t.Fatalf("latest key change of %s: %v", want.Route, err)
		}
		if got.ID == 0 || got.Label != want.Label || got.ZMK != want.ZMK || got.Version != want.Version ||
			!bytes.Equal(got.Wrapped, want.Wrapped) || !bytes.Equal(got.KCV, want.KCV) ||
			got.Instance != want.Instance || !got.At.Equal(want.At.Truncate(1e6)) {
			t.Fatalf("latest key change of %s: %+v, want %+v", want.Route, got, want)
		}
		return got.ID
	}
	firstID := check(b, first)
	if err := b.ZoneKeys().Record(ctx, second); err != nil {
		t.Fatal(err)
	}
	if id := check(a, second); id <= firstID {
		t.Fatalf("a later key change has id %d, not after %d", id, firstID)
	}
	check(a, other)
}
