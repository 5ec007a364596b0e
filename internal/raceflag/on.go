//go:build race

// Package raceflag tells whether the binary runs under the race detector.
package raceflag

// Enabled: built with -race.
const Enabled = true
