package tsp

import "testing"

func TestBearerMatcher(t *testing.T) {
	ok := BearerMatcher("s3cret")
	for header, want := range map[string]bool{
		"Bearer s3cret": true, "Bearer s3cre": false, "Bearer s3cretX": false, "bearer s3cret": false,
		"s3cret": false, "": false, "Bearer ": false,
	} {
		if got := ok(header); got != want {
			t.Errorf("Authorization %q: %v, want %v", header, got, want)
		}
	}
	if BearerMatcher("")("Bearer ") {
		t.Error("an empty bearer token matched")
	}
}
