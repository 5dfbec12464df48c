package throttle

import "sync"

// InFlight bounds how many attempts per key (an address) may be under way at once, so one source
// cannot hold an unbounded number of slow checks however it spreads them over accounts. It is safe
// for concurrent use; a key with nothing under way takes no memory.
type InFlight struct {
	max int

	mu      sync.Mutex
	running map[string]int
}

// NewInFlight returns an InFlight that admits at most max attempts per key at once.
func NewInFlight(max int) *InFlight {
	return &InFlight{max: max, running: make(map[string]int)}
}

// Enter admits one more attempt of key, unless max are already under way. Every admitted attempt
// must Leave.
func (f *InFlight) Enter(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[key] >= f.max {
		return false
	}
	f.running[key]++
	return true
}

// Leave ends an attempt Enter admitted.
func (f *InFlight) Leave(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[key] <= 1 {
		delete(f.running, key)
		return
	}
	f.running[key]--
}
