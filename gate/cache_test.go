package gate

import (
	"crypto/sha256"
	"fmt"
	"github.com/tokengate/tokengate/internal/testclock"
	"testing"
	"time"

	"github.com/tokengate/tokengate/tokens"
)

func TestCacheGetPut(t *testing.T) {
	clk := testclock.New(t0)
	c := NewCache(10, clk.Now)
	claims := &tokens.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Minute)}
	if _, ok := c.Get("tok"); ok {
		t.Errorf("Get(tok) on an empty cache hit")
	}
	c.Put("tok", claims)
	if got, ok := c.Get("tok"); !ok || got != claims {
		t.Errorf("Get(tok) = %v, %v; want the claims put", got, ok)
	}
	if _, ok := c.Get("tok2"); ok {
		t.Errorf("Get(tok2) hit, want a miss")
	}
	// Keyed by the token's hash: the token itself is nowhere in the cache.
	if _, ok := c.entries[sha256.Sum256([]byte("tok"))]; !ok {
		t.Errorf("cache key is not SHA-256 of the token")
	}
	clk.Set(t0.Add(time.Minute))
	if _, ok := c.Get("tok"); ok {
		t.Errorf("Get(tok) hit at exp, want a miss")
	}
	c.Put("late", claims)
	if len(c.entries) != 1 {
		t.Errorf("Put(expired claims) cached them")
	}
}

func TestCacheIsBounded(t *testing.T) {
	clk := testclock.New(t0)
	c := NewCache(3, clk.Now)
	short := &tokens.Claims{ExpiresAt: t0.Add(time.Minute)}
	long := &tokens.Claims{ExpiresAt: t0.Add(time.Hour)}
	c.Put("s1", short)
	c.Put("s2", short)
	c.Put("l1", long)
	for i := range 10 {
		c.Put(fmt.Sprint("l", i+2), long)
		if n := len(c.entries); n > 3 {
			t.Fatalf("cache holds %d entries, max 3", n)
		}
	}
	// A full cache forgets expired tokens before live ones.
	clk.Set(t0.Add(2 * time.Minute))
	c = NewCache(3, clk.Now)
	c.entries[sha256.Sum256([]byte("s1"))] = short
	c.entries[sha256.Sum256([]byte("s2"))] = short
	c.entries[sha256.Sum256([]byte("l1"))] = long
	c.Put("l2", long)
	if _, ok := c.Get("l1"); !ok || len(c.entries) != 2 {
		t.Errorf("after Put into a full cache: %d entries, l1 kept %v; want 2 entries, l1 kept", len(c.entries), ok)
	}
	off := NewCache(0, clk.Now)
	if off.Put("x", long); len(off.entries) != 0 {
		t.Errorf("NewCache(0) cached a token")
	}
}
