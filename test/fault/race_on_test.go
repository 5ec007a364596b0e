//go:build race

package fault

// raceEnabled: the test binary runs under the race detector, so switchd is
// built with it too.
const raceEnabled = true
