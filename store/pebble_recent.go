package store

import "sync"

// recentBytes bounds what recentValues holds: keys and values of some tens of thousands of
// refresh tokens, their families and the keys beside them.
const recentBytes = 16 << 20

// recentValues holds the values of keys that write transactions wrote or read last, and nil for
// a key they found absent, so that a refresh reads the token its previous refresh wrote, and its
// family, without the engine: on pebble a read is a search of the memtables and of every level,
// several times the cost of the map.
//
// It never holds a stale value, because only a write transaction fills it, under the engine's
// writing lock, after its batch is applied: a value read then is the engine's latest, and no
// other transaction changes it meanwhile; nothing else writes the directory, which pebble locks
// against other processes. A view never fills it: a value a view read may be overwritten before
// the view would store it. When full, it forgets arbitrary keys (Go's map order is random).
type recentValues struct {
	mu     sync.RWMutex
	values map[string][]byte
	size   int
}

// get returns the value held for key (nil: known absent), and whether one is held.
func (r *recentValues) get(key []byte) ([]byte, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.values[string(key)]
	return v, ok
}

// learn notes what a write transaction read from the engine, then what it wrote (nil: deleted),
// once its batch is applied. A deleted key is forgotten, not held as absent: a purge deletes
// thousands of records nobody asks for again.
func (r *recentValues) learn(read, wrote map[string][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil {
		r.values = map[string][]byte{}
	}
	for k, v := range read {
		r.hold(k, v)
	}
	for k, v := range wrote {
		if v == nil {
			r.forget(k)
		} else {
			r.hold(k, v)
		}
	}
}

func (r *recentValues) hold(key string, value []byte) {
	r.forget(key)
	if r.size+len(key)+len(value) > recentBytes {
		for k := range r.values {
			r.forget(k)
			if r.size+len(key)+len(value) <= recentBytes {
				break
			}
		}
	}
	r.values[key] = value
	r.size += len(key) + len(value)
}

func (r *recentValues) forget(key string) {
	if v, ok := r.values[key]; ok {
		r.size -= len(key) + len(v)
		delete(r.values, key)
	}
}
