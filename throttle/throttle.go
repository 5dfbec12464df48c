// Package throttle says when a key (a username, a client and an address, an address) has tried too
// often or too much: Limiter counts failures in a sliding window, so password guessing slows to a
// crawl while a user who types the right password after the window has passed gets in (RFC 6749
// §4.3.2, RFC 9700 §2.4); InFlight bounds the attempts a key has under way at once. Nothing here
// locks anyone out for longer than one window.
package throttle

import (
	"sync"
	"time"
)

// Limiter allows up to Max failures per key within Window. It is safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration
	// maxKeys bounds memory against an attacker inventing keys (usernames, addresses).
	maxKeys int

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, at most max entries
}

// New returns a Limiter that refuses a key once it has failed max times within window, and keeps
// at most maxKeys keys.
func New(max int, window time.Duration, maxKeys int) *Limiter {
	return &Limiter{max: max, window: window, maxKeys: maxKeys, failures: make(map[string][]time.Time)}
}

// Blocked reports whether key has used up its failures at now, and for how long it stays so.
func (l *Limiter) Blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.recent(key, now)
	if len(recent) < l.max {
		return 0, false
	}
	return recent[0].Add(l.window).Sub(now), true
}

// Fail records a failure of key at now.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.recent(key, now)
	if len(recent) == 0 && len(l.failures) >= l.maxKeys {
		l.sweep(now)
	}
	if len(recent) == l.max {
		recent = recent[1:]
	}
	l.failures[key] = append(recent, now)
}

// Forget clears key's failures (after a success).
func (l *Limiter) Forget(key string) {
	l.mu.Lock()
	delete(l.failures, key)
	l.mu.Unlock()
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
