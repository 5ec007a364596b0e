package relay

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/kbpay/switch/internal/groupcommit"
)

// durableLog makes every frame the relay passes on durable before it goes:
// a request before it leaves for the issuer, an answer before the
// terminal gets it, as the switch's journal rule asks. It is what a lean
// durable path does besides relaying: the frames waiting together are
// appended to a file in one write and made durable by one fdatasync,
// then the group's frames leave, those bound for one connection in one
// write. Nothing is indexed and nothing reads the file back.
type durableLog struct {
	f   *os.File
	off int64
	in  chan passOn
	// stop is closed (halt) when the log stops taking frames: on close,
	// or when a write or sync failed.
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	// frames and groups count what was made durable (Relay.Journaled).
	frames, groups atomic.Uint64
}

// passOn is a frame to pass on to dst (nil: the issuer) once durable.
type passOn struct {
	dst *termConn
	b   []byte
}

// logSize is the log file, written in full when it is created so that an
// append never allocates blocks (whose metadata the sync would have to
// write too); the appends wrap around in it.
const logSize = 64 << 20

// maxGroup caps the frames that share one write and one sync.
const maxGroup = 256

// openDurableLog creates the log at path, written in full (a MiB of
// zeros at a time) and synced.
func openDurableLog(path string) (*durableLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("relay log: %w", err)
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < logSize && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros, off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("relay log: %w", err)
	}
	return &durableLog{f: f, in: make(chan passOn, 4096), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// pass queues b for dst; false once the log has stopped.
func (l *durableLog) pass(dst *termConn, b []byte) bool {
	select {
	case l.in <- passOn{dst: dst, b: b}:
		return true
	case <-l.stop:
		return false
	}
}

// run takes the waiting frames as one group, makes them durable and
// passes them on, until close; a failed write or sync ends it (and the
// relay: a durable path that cannot journal must not answer).
func (l *durableLog) run(r *Relay) {
	defer close(l.done)
	var group []passOn
	var buf []byte
	for {
		group = group[:0]
		select {
		case p := <-l.in:
			group = append(group, p)
		case <-l.stop:
			return
		}
		group = groupcommit.Take(l.in, group, maxGroup)
		buf = buf[:0]
		for _, p := range group {
			buf = append(buf, p.b...)
		}
		if err := l.append(buf); err != nil {
			r.cfg.Errorf("relay log: %v", err)
			l.halt()
			_ = r.shut()
			return
		}
		l.frames.Add(uint64(len(group)))
		l.groups.Add(1)
		if err := r.passGroup(group); err != nil {
			r.cfg.Errorf("upstream write: %v", err)
			l.halt()
			_ = r.shut()
			return
		}
	}
}

// append writes b at the log's end (wrapping to the start) and syncs it.
func (l *durableLog) append(b []byte) error {
	if len(b) > logSize/2 {
		return fmt.Errorf("a group of %d bytes", len(b))
	}
	if l.off+int64(len(b)) > logSize {
		l.off = 0
	}
	if _, err := l.f.WriteAt(b, l.off); err != nil {
		return err
	}
	l.off += int64(len(b))
	return syscall.Fdatasync(int(l.f.Fd()))
}

// halt stops the log taking frames: a goroutine waiting to pass one
// gives up.
func (l *durableLog) halt() { l.stopOnce.Do(func() { close(l.stop) }) }

// close stops run and closes the file.
func (l *durableLog) close() error {
	l.halt()
	<-l.done
	return l.f.Close()
}

// passGroup writes a durable group's frames: the issuer's in one write,
// each terminal's in one. A terminal's failed write is that terminal's
// (its reader sees the connection end); the issuer's ends the relay.
func (r *Relay) passGroup(group []passOn) error {
	var up []byte
	byTerm := map[*termConn][]byte{}
	for _, p := range group {
		if p.dst == nil {
			up = append(up, p.b...)
			continue
		}
		byTerm[p.dst] = append(byTerm[p.dst], p.b...)
	}
	for t, b := range byTerm {
		t.mu.Lock()
		_, _ = t.c.Write(b)
		t.mu.Unlock()
	}
	if len(up) == 0 {
		return nil
	}
	r.upMu.Lock()
	_, err := r.up.Write(up)
	r.upMu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		return nil // the relay is closing
	}
	return err
}
