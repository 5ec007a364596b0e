// Package cpurole names what a goroutine does in CPU profiles: the pprof
// label "role", which the goroutines it starts inherit, so a profile of
// switchd splits by role (go tool pprof -tags; make bench's CPU by role).
package cpurole

import (
	"context"
	"runtime/pprof"
)

// Key is the label's name.
const Key = "role"

// The roles of switchd's goroutines. A goroutine none of them labels
// (the runtime's own: the scheduler, the garbage collector) has no role.
const (
	// Journal: the journal's committer (group commits, fsyncs).
	Journal = "journal"
	// Vault: the token vault's use writer and token reader.
	Vault = "vault"
	// TerminalConn: terminal and VAN connections: accepting, reading and
	// writing frames, decoding requests.
	TerminalConn = "terminal-conn"
	// Pipeline: a terminal request's stages, from validation to the answer
	// (its waits on the journal, the vault and the issuer are theirs).
	Pipeline = "pipeline"
	// IssuerLink: issuer connections: their read and write loops, answers
	// matched to requests, echo tests, reconnects.
	IssuerLink = "issuer-link"
	// SAF: the store-and-forward workers sending give-backs.
	SAF = "saf"
)

// Set labels the calling goroutine with role, and the goroutines it
// starts from now on.
func Set(role string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(Key, role)))
}

// Do runs fn with the calling goroutine labelled role, then restores its
// labels: the goroutines fn starts keep role.
func Do(ctx context.Context, role string, fn func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(Key, role), fn)
}
