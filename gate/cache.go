package gate

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tokengate/tokengate/tokens"
)

// Cache keeps verified access tokens until they expire, so a token seen before costs a hash and a
// map lookup instead of a signature check (some 60 µs for ES256). It is keyed by the
// SHA-256 of the token, never the token itself, so a memory dump yields no usable token; finding
// another string with the same key would mean a SHA-256 collision.
//
// The cache answers "was this signature good", nothing more: on every hit the gate asks the
// verifier whether the issuer and the key that verified it still hold (the cache outlives reloads
// that may replace both), then checks revocation, client and requirements.
type Cache struct {
	max int
	now func() time.Time

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*tokens.Claims
	// nextSweep is when a full cache may next be scanned for expired entries, so a full cache of
	// live tokens costs one scan a second, not one per insertion.
	nextSweep time.Time
}

// sweepEvery bounds how often a full cache is scanned for expired entries.
const sweepEvery = time.Second

// NewCache returns a cache of at most maxEntries tokens (none when maxEntries < 1); now is the clock.
func NewCache(maxEntries int, now func() time.Time) *Cache {
	return &Cache{max: maxEntries, now: now, entries: map[[sha256.Size]byte]*tokens.Claims{}}
}

// Get returns the claims of raw if it was verified before and has not expired. The claims are
// shared: do not modify them.
func (c *Cache) Get(raw string) (*tokens.Claims, bool) {
	key := sha256.Sum256([]byte(raw))
	c.mu.RLock()
	claims, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !c.now().Before(claims.ExpiresAt) {
		return nil, false
	}
	return claims, true
}

// Put remembers that raw verified to claims, until claims.ExpiresAt. When the cache is full it
// first forgets expired tokens, at most once a second, and then an arbitrary one.
func (c *Cache) Put(raw string, claims *tokens.Claims) {
	now := c.now()
	if c.max < 1 || !now.Before(claims.ExpiresAt) {
		return
	}
	key := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = claims
}

// evict makes room for one entry. The caller holds mu.
func (c *Cache) evict(now time.Time) {
	if !now.Before(c.nextSweep) {
		c.nextSweep = now.Add(sweepEvery)
		for k, claims := range c.entries {
			if !now.Before(claims.ExpiresAt) {
				delete(c.entries, k)
			}
		}
	}
	// Go starts map iteration at a random entry: eviction needs no bookkeeping on the read path.
	for k := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k)
	}
}
