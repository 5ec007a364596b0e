package upstream

import (
	"errors"
	"strconv"
	"sync"

	"github.com/kbpay/switch/internal/zeropad"
)

// ErrSTANsExhausted means every STAN of a route is owned: 999,999 requests
// in flight or waiting in the store-and-forward queue. Nothing is sent.
var ErrSTANsExhausted = errors.New("every issuer STAN of the route is in use")

// maxSTAN is the largest DE 11 (n 6); 000000 is never used.
const maxSTAN = 999_999

// stanPool hands out a route's DE 11 values. A STAN is owned while a
// request carrying it is in flight (and for a quarantine after it went
// unanswered, since a late answer may still come) and while a pending
// store-and-forward item will repeat it; an owned STAN is never handed
// out again, so an answer can only ever match the request it belongs to.
// Ownership is counted: an in-flight cancel that times out and is queued
// for repeat is owned twice until both let go.
//
// Instances sharing a store each take their own partition of the space
// (STAN mod parts == part), so two instances never send the same DE 11
// to one issuer: a host that recognises repeats by DE 11 + DE 7 cannot
// take one instance's give-back for a repeat of another's.
type stanPool struct {
	mu          sync.Mutex
	last        uint32
	part, parts uint32
	owned       map[uint32]int
}

func newSTANPool(start uint32) *stanPool {
	return &stanPool{last: start % maxSTAN, parts: 1, owned: map[uint32]int{}}
}

// partition restricts the pool to the STANs n with n mod parts == part.
func (p *stanPool) partition(part, parts uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part, p.parts = part%max(parts, 1), max(parts, 1)
}

// acquire returns the next STAN of the pool's partition after the last
// one handed out that nobody owns, and owns it once.
func (p *stanPool) acquire() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range maxSTAN {
		p.last = p.last%maxSTAN + 1
		if p.last%p.parts == p.part && p.owned[p.last] == 0 {
			p.owned[p.last] = 1
			return zeropad.Pad(uint64(p.last), 6), nil
		}
	}
	return "", ErrSTANsExhausted
}

// hold owns stan once more (a store-and-forward item that will repeat it).
func (p *stanPool) hold(stan string) {
	n, ok := parseSTAN(stan)
	if !ok {
		return
	}
	p.mu.Lock()
	p.owned[n]++
	p.mu.Unlock()
}

// release gives up one ownership of stan.
func (p *stanPool) release(stan string) {
	n, ok := parseSTAN(stan)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.owned[n]; c <= 1 {
		delete(p.owned, n)
	} else {
		p.owned[n] = c - 1
	}
}

// inUse reports how many STANs are owned.
func (p *stanPool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.owned)
}

// parseSTAN reads a DE 11 value with or without its zero padding.
func parseSTAN(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || n > maxSTAN {
		return 0, false
	}
	return uint32(n), true
}
