// Package credential checks presented secrets and passwords against stored bcrypt hashes so that
// only the first check of a good secret costs a bcrypt compare, and a failing check costs the same
// whether or not the account exists.
//
// bcrypt at cost 10 takes ~60 ms of CPU and `caddy hash-password` writes cost 14 (~1.2 s): a token
// endpoint that paid it on every request would manage a few grants per second. Like Caddy's
// basic_auth, successful checks are remembered, keyed by an HMAC with a per-process random key over
// the stored hash, the account and the presented secret, so the cache never holds a secret and a
// changed hash (a config reload) invalidates it.
package credential

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// IsBcryptHash reports whether s looks like a bcrypt hash as `caddy hash-password` prints it.
func IsBcryptHash(s string) bool {
	if len(s) != 60 || s[0] != '$' || s[3] != '$' {
		return false
	}
	switch s[1:3] {
	case "2a", "2b", "2y":
		_, err := bcrypt.Cost([]byte(s))
		return err == nil
	}
	return false
}

// Checker verifies secrets against bcrypt hashes. It is safe for concurrent use and meant to live
// as long as the process (across config reloads), so the cache keeps paying off.
type Checker struct {
	key [32]byte
	// compares bounds concurrent bcrypt compares: a flood of wrong secrets then queues here
	// instead of taking every core from the requests whose secrets are cached.
	compares chan struct{}

	mu       sync.Mutex
	verified map[[32]byte]struct{}
	max      int

	fakeMu sync.Mutex
	fakes  map[int][]byte
}

// NewChecker returns a Checker that remembers up to maxEntries verified secrets and runs at most
// parallel bcrypt compares at once.
func NewChecker(maxEntries, parallel int) *Checker {
	c := &Checker{
		compares: make(chan struct{}, max(parallel, 1)),
		verified: make(map[[32]byte]struct{}),
		max:      maxEntries,
		fakes:    make(map[int][]byte),
	}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("credential: no randomness: " + err.Error())
	}
	return c
}

// ErrBusy means the context ended while waiting for a free compare slot.
var ErrBusy = errors.New("credential: too many secret checks in progress")

// Check reports whether presented matches hash for account. Only technical trouble (the context
// ending while queued) is an error; a wrong secret is (false, nil).
func (c *Checker) Check(ctx context.Context, hash []byte, account, presented string) (bool, error) {
	k := c.cacheKey(hash, account, presented)
	c.mu.Lock()
	_, ok := c.verified[k]
	c.mu.Unlock()
	if ok {
		return true, nil
	}
	select {
	case c.compares <- struct{}{}:
	case <-ctx.Done():
		return false, ErrBusy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(presented))
	<-c.compares
	if err != nil {
		return false, nil
	}
	c.mu.Lock()
	if len(c.verified) >= c.max {
		// Dropping everything is crude but bounded; good secrets are re-verified once each.
		clear(c.verified)
	}
	c.verified[k] = struct{}{}
	c.mu.Unlock()
	return true, nil
}

// CheckMissing spends what a wrong-secret check against a hash of the given cost would, for an
// account that does not exist, so response timing does not tell which accounts exist. It always
// reports false.
func (c *Checker) CheckMissing(ctx context.Context, cost int, presented string) error {
	_, err := c.Check(ctx, c.fakeHash(cost), "", presented)
	return err
}

func (c *Checker) fakeHash(cost int) []byte {
	cost = min(max(cost, bcrypt.MinCost), bcrypt.MaxCost)
	c.fakeMu.Lock()
	defer c.fakeMu.Unlock()
	if h, ok := c.fakes[cost]; ok {
		return h
	}
	var random [16]byte
	rand.Read(random[:])
	h, err := bcrypt.GenerateFromPassword(random[:], cost)
	if err != nil {
		panic("credential: fake hash: " + err.Error())
	}
	c.fakes[cost] = h
	return h
}

func (c *Checker) cacheKey(hash []byte, account, presented string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	for _, part := range [][]byte{hash, []byte(account), []byte(presented)} {
		var n [8]byte
		for i, l := 0, uint64(len(part)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		m.Write(n[:])
		m.Write(part)
	}
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}
