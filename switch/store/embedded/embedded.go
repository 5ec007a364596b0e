package embedded

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kbpay/switch/switch/store"
)

// Store is the embedded store.Store: the journal file and the vault file.
type Store struct {
	j *journal
	v *vault
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the journal and vault files (adding what an older
// journal file lacks) and starts the journal's group committer.
func Open(o Options) (*Store, error) {
	if o.JournalPath == "" || o.VaultPath == "" {
		return nil, errors.New("embedded store: journal and vault paths are required")
	}
	j, err := openJournal(o.JournalPath, o)
	if err != nil {
		return nil, err
	}
	v, err := openVault(o.VaultPath, o)
	if err != nil {
		_ = j.Close()
		return nil, err
	}
	return &Store{j: j, v: v}, nil
}

func (s *Store) Sales() store.Sales         { return s.j }
func (s *Store) GiveBacks() store.GiveBacks { return s.j }
func (s *Store) Queue() store.Queue         { return s.j }
func (s *Store) SAFDesk() store.SAFDesk     { return safDesk{s.j} }
func (s *Store) Lookup() store.Lookup       { return s.j }
func (s *Store) Instances() store.Instances { return s.j }
func (s *Store) ZoneKeys() store.ZoneKeys   { return zoneKeys{s.j} }
func (s *Store) Tokens() store.Tokens       { return s.v }
func (s *Store) Instance() store.Instance   { return s.j.inst }

// HoldGroups changes Options.GroupWait and GroupSize while the journal
// runs (a configuration reload): the committer holds its next groups by
// them.
func (s *Store) HoldGroups(wait time.Duration, size int) { s.j.holdGroups(wait, size) }

// Close stops the committer after the writes already submitted and closes
// both files.
func (s *Store) Close() error {
	if err := errors.Join(s.j.Close(), s.v.Close()); err != nil {
		return fmt.Errorf("closing the embedded store: %w", err)
	}
	return nil
}

// OpenDir opens the store on journal.db and vault.db in folder dir (the
// layout of the default data folder), with o's other options.
func OpenDir(dir string, o Options) (*Store, error) {
	o.JournalPath, o.VaultPath = filepath.Join(dir, "journal.db"), filepath.Join(dir, "vault.db")
	return Open(o)
}
