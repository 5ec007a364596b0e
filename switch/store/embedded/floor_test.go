package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/kbpay/switch/internal/groupcommit"
	"github.com/kbpay/switch/switch/store"
)

// BenchmarkJournalFloor is BenchmarkSale's two durable writes per sale
// (the request before it leaves, its outcome before it is answered) under
// four journal designs, in one run: the evidence for the journal's next
// design (docs/performance.md); only "sqlite" is a store.
//
//   - sqlite: this package's journal (BenchmarkSale, sync=FULL).
//   - pebble: the same writes on an LSM key-value store (Pebble): the row
//     (all of store.Txn, encoded), its key in the duplicate index and its
//     in-flight entry; the outcome reads the row back, rewrites it, drops
//     the in-flight entry and adds the RRN and issuer STAN entries. One
//     committer goroutine takes the writes waiting and commits them as one
//     batch (Sync), deciding each on the batch's view, as the SQLite
//     journal's committer does.
//   - pebble-native: the same, each writer committing its own batch (Sync)
//     and Pebble grouping the concurrent WAL syncs itself; the duplicate
//     check holds a lock striped by key across its commit.
//   - log: no index at all: the committer appends each group's records to
//     a preallocated file with one write and one fdatasync (the floor of
//     an append-only journal whose indexes are in memory).
//   - log-direct: the same with one O_DIRECT|O_DSYNC write per group and
//     no fdatasync (the cheapest durable write this package measured on
//     the development machine: BenchmarkDiskSync).
//
// go test -run '^$' -bench BenchmarkJournalFloor -benchtime 20000x -count 3 ./switch/store/embedded/
func BenchmarkJournalFloor(b *testing.B) {
	for _, mode := range []string{"sqlite", "pebble", "pebble-native", "log", "log-direct"} {
		for _, par := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/inflight=%d", mode, par), func(b *testing.B) {
				if mode == "sqlite" {
					benchSale(b, true, par, false, 0)
					return
				}
				benchPebbleFloor(b, mode, par)
			})
		}
	}
}

func benchPebbleFloor(b *testing.B, mode string, par int) {
	f := &pebbleFloor{owner: "test", writes: make(chan *floorWrite, 4096), stop: make(chan struct{}), seed: maphash.MakeSeed()}
	if mode == "log" || mode == "log-direct" {
		f.log, f.page = openLog(b, mode == "log-direct")
	} else {
		opts := &pebble.Options{Logger: quietPebble{}}
		for i := range opts.Levels {
			// A new key is looked up before it is written: without filters
			// that absent key reads a block of every table it might be in.
			opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
		db, err := pebble.Open(b.TempDir(), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() }) // after the committer's (cleanups run last first)
		f.db = db
	}
	record, commits := f.commitAlone, (*atomic.Int64)(nil)
	if mode != "pebble-native" {
		f.stopped.Add(1)
		go f.commitLoop()
		b.Cleanup(func() {
			close(f.stop)
			f.stopped.Wait()
		})
		record, commits = f.submit, &f.commits
	}
	runSales(b, par, commits, func(n int64, rem *int64) error {
		r := benchRequest(n)
		r.State, r.Owner, r.CreatedAt, r.UpdatedAt = store.Forwarded, f.owner, time.Now(), time.Now()
		begin := &floorWrite{begin: &r, done: make(chan struct{})}
		if err := record(begin); err != nil {
			return err
		}
		return record(&floorWrite{id: begin.id, upd: store.Update{State: store.Approved, RC: "00", RRN: fmt.Sprintf("5123%08d", n),
			ApprovalCode: "A1B2C3", Remaining: rem}, done: make(chan struct{})})
	})
}

// pebbleFloor is the least a journal on Pebble does for a sale.
type pebbleFloor struct {
	db      *pebble.DB
	owner   string
	nextID  atomic.Int64
	writes  chan *floorWrite
	stop    chan struct{}
	stopped sync.WaitGroup
	commits atomic.Int64
	stripes [64]sync.Mutex
	log     *os.File // the "log" modes (db nil)
	page    []byte   // "log-direct": page-aligned memory the group is copied into (nil: "log")
	buf     []byte
	off     int64
	seed    maphash.Seed
}

// floorWrite is a Begin (begin set) or a Set of row id.
type floorWrite struct {
	begin *store.Txn
	id    int64
	upd   store.Update
	err   error
	done  chan struct{}
}

func (f *pebbleFloor) submit(w *floorWrite) error {
	f.writes <- w
	<-w.done
	return w.err
}

func (f *pebbleFloor) commitLoop() {
	defer f.stopped.Done()
	for {
		var batch []*floorWrite
		select {
		case w := <-f.writes:
			batch = append(batch, w)
		case <-f.stop:
			return
		}
		batch = groupcommit.Take(f.writes, batch, 256)
		var err error
		if f.log != nil {
			err = f.appendLog(batch)
		} else {
			b := f.db.NewIndexedBatch()
			for _, w := range batch {
				w.err = f.apply(b, b, w)
			}
			err = b.Commit(pebble.Sync)
			_ = b.Close()
		}
		f.commits.Add(1)
		for _, w := range batch {
			if err != nil {
				w.err = err
			}
			close(w.done)
		}
	}
}

// appendLog is the "log" mode: no store at all, each group's records
// (a Begin's row, a Set's update) appended to a preallocated file with one
// write and one fdatasync: what a group commit costs without any index.
func (f *pebbleFloor) appendLog(batch []*floorWrite) error {
	f.buf = f.buf[:0]
	for _, w := range batch {
		if w.begin != nil {
			w.begin.ID = f.nextID.Add(1)
			w.id = w.begin.ID
			f.buf = appendTxn(f.buf, *w.begin)
			continue
		}
		f.buf = binary.AppendVarint(f.buf, w.id)
		f.buf = append(f.buf, w.upd.State...)
		f.buf = append(f.buf, w.upd.RC+w.upd.RRN+w.upd.ApprovalCode...)
	}
	if f.page != nil {
		return f.appendDirect()
	}
	if _, err := f.log.WriteAt(f.buf, f.off%(logSize-1<<20)); err != nil {
		return err
	}
	f.off += int64(len(f.buf))
	return syscall.Fdatasync(int(f.log.Fd()))
}

// appendDirect is the "log-direct" mode's write: the group's records
// padded to whole 4 KiB pages and written at the next page boundary
// through O_DIRECT|O_DSYNC, one system call that returns once the pages
// are on the disk (a real log would write its last partial page again
// with the next group, the same cost).
func (f *pebbleFloor) appendDirect() error {
	n := (len(f.buf) + pageSize - 1) / pageSize * pageSize
	if n > len(f.page) {
		return fmt.Errorf("log-direct: a group of %d bytes exceeds the %d-byte buffer", len(f.buf), len(f.page))
	}
	copy(f.page, f.buf)
	clear(f.page[len(f.buf):n])
	off := f.off % (logSize - 1<<20) / pageSize * pageSize
	if _, err := f.log.WriteAt(f.page[:n], off); err != nil {
		return err
	}
	f.off = off + int64(n)
	return nil
}

const (
	pageSize = 4096
	// logSize is the "log" modes' file, written in full before the run so
	// that no append allocates blocks (whose metadata a sync would have to
	// write too): as SQLite reuses its WAL, and as a real log would reuse
	// its segments. The appends wrap around in it.
	logSize = 64 << 20
)

// openLog creates the "log" modes' file, written in full and synced, and
// opens it for the appends: O_DIRECT|O_DSYNC with a page-aligned buffer
// for "log-direct" (skipped where the file system refuses O_DIRECT),
// plainly for "log".
func openLog(b *testing.B, direct bool) (*os.File, []byte) {
	path := filepath.Join(b.TempDir(), "log")
	if err := os.WriteFile(path, make([]byte, logSize), 0o600); err != nil {
		b.Fatal(err)
	}
	flags := os.O_WRONLY
	if direct {
		flags |= syscall.O_DIRECT | syscall.O_DSYNC
	}
	log, err := os.OpenFile(path, flags, 0)
	if direct && errors.Is(err, syscall.EINVAL) {
		b.Skipf("the file system of %s refuses O_DIRECT: %v", path, err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = log.Close() })
	if err := log.Sync(); err != nil {
		b.Fatal(err)
	}
	if !direct {
		return log, nil
	}
	// Anonymous mappings are page-aligned, as O_DIRECT needs.
	page, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Munmap(page) })
	return log, page
}

// commitAlone commits w in a batch of its own; a Begin holds its key's
// stripe from the duplicate check to the commit.
func (f *pebbleFloor) commitAlone(w *floorWrite) error {
	if w.begin != nil {
		mu := &f.stripes[maphash.String(f.seed, keyOf(w.begin.Key))%uint64(len(f.stripes))]
		mu.Lock()
		defer mu.Unlock()
	}
	b := f.db.NewBatch()
	defer b.Close()
	if err := f.apply(f.db, b, w); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// apply writes w into b, reading what it decides on from r.
func (f *pebbleFloor) apply(r pebbleReader, b *pebble.Batch, w *floorWrite) error {
	if t := w.begin; t != nil {
		key := []byte(keyOf(t.Key))
		if _, c, err := r.Get(key); err == nil {
			_ = c.Close()
			return store.ErrDuplicate
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		t.ID = f.nextID.Add(1)
		w.id = t.ID
		id := binary.BigEndian.AppendUint64(nil, uint64(t.ID))
		if err := b.Set(rowKey(t.ID), appendTxn(nil, *t), nil); err != nil {
			return err
		}
		if err := b.Set(key, id, nil); err != nil {
			return err
		}
		return b.Set(append([]byte("f/"+t.Owner+"/"), id...), nil, nil)
	}
	v, c, err := r.Get(rowKey(w.id))
	if err != nil {
		return err
	}
	t, err := decodeTxn(v)
	_ = c.Close()
	if err != nil {
		return err
	}
	t.State, t.RC, t.RRN, t.ApprovalCode, t.UpdatedAt = w.upd.State, w.upd.RC, w.upd.RRN, w.upd.ApprovalCode, time.Now()
	if w.upd.Remaining != nil {
		t.Remaining = *w.upd.Remaining
	}
	id := binary.BigEndian.AppendUint64(nil, uint64(t.ID))
	if err := b.Set(rowKey(t.ID), appendTxn(nil, t), nil); err != nil {
		return err
	}
	if err := b.Delete(append([]byte("f/"+t.Owner+"/"), id...), nil); err != nil {
		return err
	}
	if err := b.Set([]byte("r/"+t.RRN), id, nil); err != nil {
		return err
	}
	return b.Set([]byte("i/"+t.Route+"/"+t.IssuerSTAN), id, nil)
}

func keyOf(k store.Key) string {
	return "k/" + k.TerminalID + "/" + k.STAN + "/" + k.TxTime + "/" + k.MTI
}

func rowKey(id int64) []byte { return binary.BigEndian.AppendUint64([]byte("t/"), uint64(id)) }

// appendTxn encodes t's fields, strings length-prefixed, in field order.
func appendTxn(dst []byte, t store.Txn) []byte {
	for _, s := range []string{t.TerminalID, t.STAN, t.TxTime, t.MTI, t.Listener, t.MerchantID, t.ProcCode, t.Currency,
		t.MaskedPAN, t.Token, t.PANKey, string(t.PANCiphertext), t.CardExpiry, t.Route, t.IssuerSTAN, t.IssuerTxTime,
		t.RRN, t.ApprovalCode, t.RC, string(t.State), t.AuthKey, t.ContentHash, t.Owner} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, n := range []int64{t.ID, t.Amount, int64(t.PANKeyVersion), t.Remaining, t.OriginalID, t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli()} {
		dst = binary.AppendVarint(dst, n)
	}
	return dst
}

// decodeTxn reads what appendTxn wrote.
func decodeTxn(b []byte) (store.Txn, error) {
	var t store.Txn
	var ct, state string
	for _, s := range []*string{&t.TerminalID, &t.STAN, &t.TxTime, &t.MTI, &t.Listener, &t.MerchantID, &t.ProcCode, &t.Currency,
		&t.MaskedPAN, &t.Token, &t.PANKey, &ct, &t.CardExpiry, &t.Route, &t.IssuerSTAN, &t.IssuerTxTime,
		&t.RRN, &t.ApprovalCode, &t.RC, &state, &t.AuthKey, &t.ContentHash, &t.Owner} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return t, errors.New("row: truncated")
		}
		*s, b = string(b[k:k+int(n)]), b[k+int(n):]
	}
	t.PANCiphertext, t.State = []byte(ct), store.State(state)
	var version, created, updated int64
	for _, n := range []*int64{&t.ID, &t.Amount, &version, &t.Remaining, &t.OriginalID, &created, &updated} {
		v, k := binary.Varint(b)
		if k <= 0 {
			return t, errors.New("row: truncated")
		}
		*n, b = v, b[k:]
	}
	t.PANKeyVersion, t.CreatedAt, t.UpdatedAt = int(version), time.UnixMilli(created), time.UnixMilli(updated)
	return t, nil
}

// quietPebble drops Pebble's informational log lines.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
