package caddymodule

import (
	"net/url"
	"testing"

	"github.com/tokengate/tokengate/internal/redistest"
)

// redisServer is a redis-server that a test started (see redistest.Start).
type redisServer struct {
	*redistest.Server
}

// startRedis starts a redis-server that requires password, if one is given.
func startRedis(tb testing.TB, password string) *redisServer {
	tb.Helper()
	return &redisServer{redistest.Start(tb, "the Redis store", redistest.Config{Password: password})}
}

// url is the server's URL with its password; client names a connection, which makes the URLs of
// two would-be instances differ so that they do not share one pooled store in this process.
func (s *redisServer) url(client string) string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0", RawQuery: url.Values{"client_name": {client}}.Encode()}
	if s.Password != "" {
		u.User = url.UserPassword("", s.Password)
	}
	return u.String()
}
