package tsp

import (
	"sync"

	"github.com/kbpay/switch/switch/store"
)

// DefaultDomainCache is how many tokens' domains the service keeps in
// memory when Config.DomainCache is 0 (about 100-200 bytes each).
const DefaultDomainCache = 100_000

// domainCache remembers, per token, the parts of its record the payment
// path must know before it records a use: the domain, and whether a use
// is limited (max uses). Neither changes once the token is issued (the
// vault has no statement that updates them, and a token number is never
// reissued: deleted rows stay), so an entry never goes stale and needs no
// invalidation across instances.
// Everything that does change (status, use count) and the expiry are
// checked by the vault's Use in the store on every presentation. It holds
// no card data: token numbers and merchant IDs / entry modes only.
//
// It is bounded: when full, one entry picked by map iteration (effectively
// at random) makes room, so a vault of millions of tokens keeps its hot
// set cached without an LRU list's bookkeeping on every hit.
type domainCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]tokenRules
}

// tokenRules are a token's immutable rules for its use.
type tokenRules struct {
	domain  store.Domain
	maxUses int // 0: no limit
}

func newDomainCache(n int) *domainCache {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = DefaultDomainCache
	}
	return &domainCache{max: n, m: make(map[string]tokenRules, min(n, 1024))}
}

func (c *domainCache) get(token string) (tokenRules, bool) {
	if c == nil {
		return tokenRules{}, false
	}
	c.mu.RLock()
	d, ok := c.m[token]
	c.mu.RUnlock()
	return d, ok
}

func (c *domainCache) put(token string, r tokenRules) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[token]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[token] = r
}

func (c *domainCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
