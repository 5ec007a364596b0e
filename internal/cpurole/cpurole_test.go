package cpurole

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
)

// labelsOf is the goroutine profile's text, whose entries show each
// goroutine's labels ("# labels: {...}").
func labelsOf(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRolesReachTheGoroutinesTheyStart(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go func() {
		Set(Journal)
		go func() { <-release }() // inherits the role
		close(started)
		<-release
	}()
	<-started
	ran := make(chan struct{})
	Do(context.Background(), IssuerLink, func(context.Context) {
		go func() {
			close(ran)
			<-release
		}()
	})
	<-ran
	text := labelsOf(t)
	// The labelled goroutine and the one it started: two stacks.
	if n := strings.Count(text, `"role":"journal"`); n < 2 {
		t.Errorf("%d stacks labelled journal, want the goroutine and the one it started:\n%s", n, text)
	}
	if !strings.Contains(text, `"role":"issuer-link"`) {
		t.Errorf("a goroutine started inside Do is not labelled issuer-link:\n%s", text)
	}
}
