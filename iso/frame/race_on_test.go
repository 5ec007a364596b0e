//go:build race

package frame

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = true
