package store

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/internal/redistest"
)

// redisServer is a real redis-server that a test started, with a client that inspects it behind
// the store's back.
type redisServer struct {
	*redistest.Server
	// admin reconnects after a restart.
	admin *redis.Client
}

// startRedis starts a redis-server for tb (see redistest.Start).
func startRedis(tb testing.TB, cfg redistest.Config) *redisServer {
	tb.Helper()
	s := &redisServer{Server: redistest.Start(tb, "the Redis backend", cfg)}
	s.admin = redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password, DisableIdentity: true, TLSConfig: s.TLSConfig()})
	tb.Cleanup(func() { s.admin.Close() })
	return s
}

// flush empties the server, so that the next store opened on it starts with nothing.
func (s *redisServer) flush(tb testing.TB) {
	tb.Helper()
	if err := s.admin.FlushAll(ctx).Err(); err != nil {
		tb.Fatalf("FLUSHALL: %v", err)
	}
}

// open opens a Redis store on the server and closes it at cleanup.
func (s *redisServer) open(tb testing.TB, now func() time.Time) *Redis {
	tb.Helper()
	r, err := OpenRedis(s.URL(), now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}
