// Package credential checks presented secrets and passwords against stored bcrypt hashes, and
// decides what a check costs: only the first check of a good secret costs a bcrypt compare, and
// every failed check costs the same time, whether or not the account exists and whatever kind of
// secret it has.
//
// Success: bcrypt at cost 10 takes ~60 ms of CPU and `caddy hash-password` writes cost 14 (~1.2 s):
// a token endpoint that paid it on every request would manage a few grants per second. Like Caddy's
// basic_auth, successful checks are remembered, keyed by an HMAC with a per-process random key over
// the stored hash, the account and the presented secret, so the cache never holds a secret and a
// changed hash (a config reload) invalidates it. Verified asks the cache alone.
//
// Failure: a failed check lasts at least FailureTime(cost), one bcrypt compare at the dearest
// configured cost, measured once. A caller starts the clock with Begin when a check starts to cost
// and, when it fails, waits out the rest with Attempt.Failed. So an unknown account (nothing to
// compare), a wrong plaintext secret (a constant-time compare) and a wrong bcrypt secret all take
// the same time, and timing tells neither which accounts exist nor how their secrets are stored.
// That wait is a timer: it takes no CPU and no compare slot, so made-up accounts never queue ahead
// of real ones for the bcrypt compares, of which at most a few run at once (the rest queue until
// their context ends). Bounding how many such waits one address may hold is the caller's job.
package credential

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
	"time"

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
	// macs holds HMAC-SHA-256 states keyed with a per-process random key, reused because building
	// one costs more than the cache lookup it serves.
	macs sync.Pool
	// compares bounds concurrent bcrypt compares: a flood of wrong secrets then queues here
	// instead of taking every core from the requests whose secrets are cached.
	compares chan struct{}

	mu       sync.Mutex
	verified map[[32]byte]struct{}
	max      int

	// failureTimes measures each cost's FailureTime once.
	timesMu      sync.Mutex
	failureTimes map[int]func() time.Duration
}

// NewChecker returns a Checker that remembers up to maxEntries verified secrets and runs at most
// parallel bcrypt compares at once.
func NewChecker(maxEntries, parallel int) *Checker {
	c := &Checker{
		compares:     make(chan struct{}, max(parallel, 1)),
		verified:     make(map[[32]byte]struct{}),
		max:          maxEntries,
		failureTimes: make(map[int]func() time.Duration),
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("credential: no randomness: " + err.Error())
	}
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return c
}

// ErrBusy means the context ended while waiting for a free compare slot.
var ErrBusy = errors.New("credential: too many secret checks in progress")

// Check reports whether presented matches hash for account. Only technical trouble (the context
// ending while queued) is an error; a wrong secret is (false, nil).
func (c *Checker) Check(ctx context.Context, hash []byte, account, presented string) (bool, error) {
	k := c.cacheKey(hash, account, presented)
	if c.cached(k) {
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

// Verified reports whether presented was verified against hash for account before: a cache
// lookup, never a compare, so it may run before anything that costs.
func (c *Checker) Verified(hash []byte, account, presented string) bool {
	return c.cached(c.cacheKey(hash, account, presented))
}

func (c *Checker) cached(k [32]byte) bool {
	c.mu.Lock()
	_, ok := c.verified[k]
	c.mu.Unlock()
	return ok
}

// FailureTime is how long a failed check must last for a hash of cost: one bcrypt compare at
// that cost, measured the first time it is asked for (one bcrypt of a random secret), so a caller
// that asks at provision time measures on an idle machine and no request pays for it.
func (c *Checker) FailureTime(cost int) time.Duration {
	cost = min(max(cost, bcrypt.MinCost), bcrypt.MaxCost)
	c.timesMu.Lock()
	measure, ok := c.failureTimes[cost]
	if !ok {
		measure = sync.OnceValue(func() time.Duration { return timeOneBcrypt(cost) })
		c.failureTimes[cost] = measure
	}
	c.timesMu.Unlock()
	return measure()
}

func timeOneBcrypt(cost int) time.Duration {
	var random [16]byte
	rand.Read(random[:])
	start := time.Now()
	if _, err := bcrypt.GenerateFromPassword(random[:], cost); err != nil {
		panic("credential: bcrypt: " + err.Error())
	}
	return time.Since(start)
}

// Attempt is a check under way whose failure must not end sooner than a bcrypt compare at the
// dearest configured cost would.
type Attempt struct {
	failsAt time.Time
}

// Begin starts the clock of a check that may fail: its failure will last FailureTime(cost) from
// now, whatever the check did meanwhile.
func (c *Checker) Begin(cost int) Attempt {
	start := time.Now()
	return Attempt{failsAt: start.Add(c.FailureTime(cost))}
}

// Failed waits until the attempt has lasted its failure time, or until ctx ends: a timer, using no
// CPU and no compare slot.
func (a Attempt) Failed(ctx context.Context) {
	wait := time.Until(a.failsAt)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// cacheKey is the HMAC of the stored hash, account and presented, each prefixed with its length so
// no two triples run together alike.
func (c *Checker) cacheKey(stored []byte, account, presented string) [32]byte {
	m := c.macs.Get().(hash.Hash)
	defer c.macs.Put(m)
	m.Reset()
	writePart(m, stored)
	writePart(m, []byte(account))
	writePart(m, []byte(presented))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func writePart(m hash.Hash, part []byte) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(part)))
	m.Write(n[:])
	m.Write(part)
}
