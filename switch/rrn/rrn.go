// Package rrn hands out retrieval reference numbers (DE 37) that are
// unique per switch instance across every route for decades: two digits of
// instance number and a ten-digit durable sequence reserved in blocks.
package rrn

import (
	"context"
	"fmt"
	"sync"

	"github.com/kbpay/switch/internal/zeropad"
)

// Blocks durably reserves blocks of a named sequence (store.Instances).
type Blocks interface {
	ReserveBlock(ctx context.Context, name string, n int64) (first int64, err error)
}

// BlockSize is how many RRNs one durable reservation covers: one journal
// write per this many transactions; a restart skips what is left of it.
const BlockSize = 10_000

// limit is the sequence's range (ten digits); at 1,000 transactions a
// second it lasts more than 300 years before it wraps.
const limit = 10_000_000_000

// sequenceName is the journal sequence behind the RRNs.
const sequenceName = "rrn"

// Sequence is an instance's RRN sequence. It is safe for concurrent use.
type Sequence struct {
	store    Blocks
	instance int

	mu        sync.Mutex
	next, end int64
}

// New returns the sequence of instance (0-99) over store.
func New(store Blocks, instance int) (*Sequence, error) {
	if instance < 0 || instance > 99 {
		return nil, fmt.Errorf("rrn: instance %d outside 0..99", instance)
	}
	return &Sequence{store: store, instance: instance}, nil
}

// Next returns the next RRN: "II" (instance) and ten zeropad. It reserves
// a new block durably when the current one is used up, so a number is
// never handed out before its block is on disk.
func (s *Sequence) Next() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= s.end {
		first, err := s.store.ReserveBlock(context.Background(), sequenceName, BlockSize)
		if err != nil {
			return "", fmt.Errorf("rrn: %w", err)
		}
		s.next, s.end = first, first+BlockSize
	}
	n := s.next
	s.next++
	b := make([]byte, 0, 12)
	b = zeropad.Append(b, uint64(s.instance), 2)
	return string(zeropad.Append(b, uint64(n%limit), 10)), nil
}
