package embedded

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// maxStateAge is how long a device token's state, once read, answers its
// uses without reading the file again, when nothing this process did
// changed any token's status meanwhile (tokenStates). It bounds how late a
// use sees what this process could not know of: another handle's flushed
// use counts (figures), or a change made to the file from outside the
// process, which the data folder's lock is there to prevent.
const maxStateAge = time.Second

// tokenStates keeps, for the device tokens (no use limit) this handle has
// used, the record as last read with the use counts this handle flushed
// since, so that a use reads nothing while nothing changed. Every status
// change committed through any handle on the same file in this process
// moves the file's status generation (vaultGenerations) after its commit; a
// state read at an older generation is read again. A use that starts
// after a suspension returned is therefore refused, through any handle, as
// without the cache. Reads and puts happen under the use counts' flush
// lock (shared), and the flush adds what it committed to the kept states
// under it (exclusive): a kept count plus the pending ones is always the
// stored count plus the pending ones.
type tokenStates struct {
	gen *atomic.Uint64

	mu      sync.Mutex
	entries map[string]tokenState
}

type tokenState struct {
	rec  store.TokenRecord
	gen  uint64
	read time.Time // the use's time when read
}

func newTokenStates(gens *vaultGenerations) *tokenStates {
	return &tokenStates{gen: &gens.status, entries: map[string]tokenState{}}
}

// get is token's kept record, if read at the current generation within
// maxStateAge of now, either way (the caller's own copy): a payment's
// time is taken before its Get keeps the state, at the Get's own time.
func (t *tokenStates) get(token string, now time.Time) (store.TokenRecord, bool) {
	gen := t.gen.Load()
	t.mu.Lock()
	st, ok := t.entries[token]
	t.mu.Unlock()
	if !ok || st.gen != gen || now.Sub(st.read) >= maxStateAge || st.read.Sub(now) >= maxStateAge {
		return store.TokenRecord{}, false
	}
	rec := st.rec
	rec.PANCiphertext, rec.PANHash = bytes.Clone(rec.PANCiphertext), bytes.Clone(rec.PANHash)
	return rec, true
}

// put keeps rec, read at generation gen (loaded before the read began) at
// now; when full, one entry picked by map iteration makes room.
func (t *tokenStates) put(rec store.TokenRecord, gen uint64, now time.Time) {
	rec.PANCiphertext, rec.PANHash = bytes.Clone(rec.PANCiphertext), bytes.Clone(rec.PANHash)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= knownTokens {
		for k := range t.entries {
			delete(t.entries, k)
			break
		}
	}
	t.entries[rec.Token] = tokenState{rec: rec, gen: gen, read: now}
}

// flushed adds the use counts a flush committed to the kept records.
// Called under the use counts' flush lock, held exclusively.
func (t *tokenStates) flushed(taken map[string]pendingUses) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, p := range taken {
		st, ok := t.entries[tok]
		if !ok {
			continue
		}
		p.addTo(&st.rec)
		t.entries[tok] = st
	}
}

// statusChanged moves the file's generation: every kept state is read
// again. Called after a status change is committed (or failed: a spare
// move costs one read per token).
func (t *tokenStates) statusChanged() { t.gen.Add(1) }

// vaultGenerations are a vault file's generations in this process, shared
// by every handle on the file: each moves after a commit, before its
// caller hears of it, so a read that starts afterwards knows to look
// again.
type vaultGenerations struct {
	// status moves with every status change: the kept states
	// (tokenStates) are read again.
	status atomic.Uint64
	// writes moves with every commit to the vault file or its use counts
	// file (a token issued, a status changed, a one-time number used, use
	// counts flushed): the token reader's snapshot is taken again.
	writes atomic.Uint64
}

// generationFiles are the vault files opened in this process, each with
// its generations, shared by every handle on the file (found by identity,
// not by name). Entries stay for the process's life: a few in switchd; a
// deleted file's inode reused by a new one only shares generations, which
// costs extra reads, never a missed change.
var generationFiles struct {
	mu    sync.Mutex
	files []generationFile
}

type generationFile struct {
	info os.FileInfo
	gens *vaultGenerations
}

func generationsOf(path string) (*vaultGenerations, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	generationFiles.mu.Lock()
	defer generationFiles.mu.Unlock()
	for _, f := range generationFiles.files {
		if os.SameFile(f.info, info) {
			return f.gens, nil
		}
	}
	gens := new(vaultGenerations)
	generationFiles.files = append(generationFiles.files, generationFile{info: info, gens: gens})
	return gens, nil
}
