package route

import (
	"errors"
	"testing"
)

func TestLookupLongestPrefix(t *testing.T) {
	tbl, err := NewTable(map[string][]string{
		"card-a":  {"9410"},
		"card-a2": {"941055"},
		"card-b":  {"9420", "5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pan, want string
		err       error
	}{
		{"9410000000000001", "card-a", nil},
		{"9410550000000001", "card-a2", nil},
		{"9420123412341234", "card-b", nil},
		{"5555555555554444", "card-b", nil},
		{"4111111111111111", "", ErrNoRoute},
		{"94", "", ErrNoRoute},
		{"", "", ErrNoRoute},
	}
	for _, tt := range tests {
		got, err := tbl.Lookup(tt.pan)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.pan, got, err, tt.want, tt.err)
		}
	}
}

func TestNewTableRejectsSharedPrefix(t *testing.T) {
	if _, err := NewTable(map[string][]string{"a": {"9410"}, "b": {"9410"}}); err == nil {
		t.Fatal("two routes owning 9410 accepted")
	}
}

func BenchmarkLookup(b *testing.B) {
	tbl, _ := NewTable(map[string][]string{"a": {"9410"}, "b": {"9420", "942055"}, "c": {"9430"}})
	for b.Loop() {
		if _, err := tbl.Lookup("9420551234567890"); err != nil {
			b.Fatal(err)
		}
	}
}
