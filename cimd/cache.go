package cimd

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokengate/tokengate/grants"
)

// How long a valid document is reused (RFC 9111 §5.2.2 Cache-Control): for its max-age, at most
// MaxCacheTTL; not at all with no-store, no-cache or max-age=0; DefaultCacheTTL without a max-age.
const (
	DefaultCacheTTL = 5 * time.Minute
	MaxCacheTTL     = 24 * time.Hour
)

// maxCached bounds the documents kept: anyone may send client_ids, each of a new URL.
const maxCached = 1000

// cacheTTL reads how long a response may be reused from its Cache-Control header.
func cacheTTL(h http.Header) time.Duration {
	ttl := DefaultCacheTTL
	for _, directive := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		name, value, _ := strings.Cut(strings.ToLower(strings.TrimSpace(directive)), "=")
		switch name {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			seconds, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err != nil || seconds < 0 {
				continue
			}
			ttl = time.Duration(min(seconds, int64(MaxCacheTTL/time.Second))) * time.Second
		}
	}
	return ttl
}

// cache keeps the clients of valid documents until their reuse ends.
type cache struct {
	mu      sync.Mutex
	entries map[string]cached
	max     int
}

type cached struct {
	client *grants.Client
	until  time.Time
}

func newCache(max int) *cache {
	return &cache{entries: make(map[string]cached), max: max}
}

// get returns the client cached under id, while its reuse lasts.
func (c *cache) get(id string, now time.Time) (*grants.Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.client, true
}

// put keeps client under id until until. A full cache first drops what has ended by now, then
// any one entry.
func (c *cache) put(id string, client *grants.Client, now, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	if len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, key)
			}
		}
	}
	if len(c.entries) >= c.max {
		for key := range c.entries {
			delete(c.entries, key)
			break
		}
	}
	c.entries[id] = cached{client: client, until: until}
}
