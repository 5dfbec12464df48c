// Package throttle says when a key (a username, a client and an address, an address) has tried too
// often or too much: Limiter counts failures in a sliding window, so password guessing slows to a
// crawl while a user who types the right password after the window has passed gets in (RFC 6749
// §4.3.2, RFC 9700 §2.4). Attempts still being checked count as failures until their outcome is
// known (Reserve), so guesses sent at once are limited as if sent one after another; the same
// window limits plain request rates (Allow). InFlight bounds the attempts a key has under way at
// once. Nothing here locks anyone out for longer than one window.
package throttle

import (
	"slices"
	"sync"
	"time"
)

// Limiter allows up to max failures per key within the window (or requests, counted by Allow). It
// is safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration
	// maxKeys bounds memory against an attacker inventing keys (usernames, addresses).
	maxKeys int

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, at most max entries
	// pending counts, per key, the reservations whose attempt is still being checked.
	pending map[string]int
}

// New returns a Limiter that refuses a key once it has failed max times within window, and keeps
// at most maxKeys keys.
func New(max int, window time.Duration, maxKeys int) *Limiter {
	return &Limiter{max: max, window: window, maxKeys: maxKeys,
		failures: make(map[string][]time.Time), pending: make(map[string]int)}
}

// Blocked reports whether key has used up its failures at now, reservations included, and for how
// long it stays so.
func (l *Limiter) Blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blocked(key, now)
}

// Reserve takes one of key's failures for an attempt about to be checked (a password), before its
// outcome is known, so that attempts in flight count as failures: of attempts sent at once, no more
// are checked than one after another would be. When none is left it returns how long until one
// is, and false. Otherwise the caller ends the reservation with Fail, Succeed or Release; until
// then it counts as a failure.
func (l *Limiter) Reserve(key string, now time.Time) (*Reservation, time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait, blocked := l.blocked(key, now); blocked {
		return nil, wait, false
	}
	l.pending[key]++
	return &Reservation{l: l, key: key}, 0, true
}

// blocked is Blocked with l.mu held. When only attempts in flight fill the window, a slot frees
// when they end, which may be a whole window away if they fail.
func (l *Limiter) blocked(key string, now time.Time) (time.Duration, bool) {
	recent := l.recent(key, now)
	over := len(recent) + l.pending[key] - l.max
	if over < 0 {
		return 0, false
	}
	if over < len(recent) {
		return recent[over].Add(l.window).Sub(now), true
	}
	return l.window, true
}

// Allow records a request of key at now, unless max are recorded within the window already: then
// it returns how long until one leaves it, and false. A refused request is not recorded, so a
// flood never pushes the end of the wait further.
func (l *Limiter) Allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait, blocked := l.blocked(key, now); blocked {
		return wait, false
	}
	l.fail(key, now)
	return 0, true
}

// Fail records a failure of key at now.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail(key, now)
}

// fail is Fail with l.mu held.
func (l *Limiter) fail(key string, now time.Time) {
	recent := l.recent(key, now)
	if len(recent) == 0 && len(l.failures) >= l.maxKeys {
		l.sweep(now)
	}
	if len(recent) == l.max {
		recent = recent[1:]
	}
	// Attempts end out of order: an attempt's failure may come after a later one's.
	i := len(recent)
	for i > 0 && recent[i-1].After(now) {
		i--
	}
	l.failures[key] = slices.Insert(recent, i, now)
}

// Reservation is one attempt's hold on a failure of its key, from Reserve until the attempt's
// outcome is known. Only the first of Fail, Succeed and Release has an effect, so a deferred
// Release frees the hold on every path without undoing the outcome recorded before it.
type Reservation struct {
	l    *Limiter
	key  string
	done bool
}

// Fail ends the attempt as a failure at now: the hold becomes a failure of the key.
func (r *Reservation) Fail(now time.Time) {
	r.end(func() { r.l.fail(r.key, now) })
}

// Succeed ends the attempt as a success: the key's failures are forgotten.
func (r *Reservation) Succeed() {
	r.end(func() { delete(r.l.failures, r.key) })
}

// Release ends the attempt without counting it: its outcome says nothing about the key (the
// check could not be made, or a success that must not clear this key's failures).
func (r *Reservation) Release() {
	r.end(func() {})
}

// end frees the hold and records the outcome, once.
func (r *Reservation) end(outcome func()) {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if l.pending[r.key]--; l.pending[r.key] <= 0 {
		delete(l.pending, r.key)
	}
	outcome()
}

// recent drops key's failures older than the window and returns the rest.
func (l *Limiter) recent(key string, now time.Time) []time.Time {
	times := l.failures[key]
	cut := 0
	for cut < len(times) && now.Sub(times[cut]) >= l.window {
		cut++
	}
	if cut == len(times) {
		delete(l.failures, key)
		return nil
	}
	times = times[cut:]
	l.failures[key] = times
	return times
}

// sweep forgets every key with no failure in the window; if the map is still full, it forgets all,
// which only ever errs towards letting a request through.
func (l *Limiter) sweep(now time.Time) {
	for key := range l.failures {
		l.recent(key, now)
	}
	if len(l.failures) >= l.maxKeys {
		clear(l.failures)
	}
}
