package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Registered clients in Redis: each a record under keyClient + id, and the ids in a sorted set by
// when Redis forgets them (pxat), which registerScript counts.
const (
	keyClient  = redisPrefix + "client:"
	keyClients = redisPrefix + "clients"
)

// registerScript forgets the ids expired at ARGV[3] (ms), and unless ARGV[4] live ids remain or
// KEYS[1] is taken, stores the record ARGV[1] under KEYS[1] until ARGV[2] (ms) and adds its id
// ARGV[5] to the set KEYS[2]: one step, so concurrent registrations never exceed the count.
var registerScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) or redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
`)

// extendScript moves the record under KEYS[1], when it is there, to ARGV[1] until ARGV[2] (ms),
// and its id ARGV[3] in the set KEYS[2].
var extendScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PXAT', ARGV[2]) == false then
	return 0
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
`)

// RegisterClient implements RegisteredClients with registerScript.
func (s *Redis) RegisterClient(ctx context.Context, id string, c RegisteredClient, max int) (bool, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("store: redis: encode: %w", err)
	}
	n, err := registerScript.Run(ctx, s.rdb, []string{keyClient + id, keyClients},
		data, pxat(c.ExpiresAt), s.now().UnixMilli(), max, id).Int64()
	if err != nil {
		return false, fmt.Errorf("store: redis: register client: %w", err)
	}
	return n == 1, nil
}

// RegisteredClient implements RegisteredClients.
func (s *Redis) RegisteredClient(ctx context.Context, id string) (RegisteredClient, error) {
	var c RegisteredClient
	data, err := s.rdb.Get(ctx, keyClient+id).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return c, ErrNotFound
	case err != nil:
		return c, fmt.Errorf("store: redis: registered client: %w", err)
	}
	if err := decodeRecord("client", data, &c); err != nil {
		return c, err
	}
	if expired(c.ExpiresAt, s.now()) {
		return RegisteredClient{}, ErrNotFound
	}
	return c, nil
}

// ExtendClient implements RegisteredClients: the record is read, then replaced only if it is still
// there (SET XX), so an extension never brings back a client that expired meanwhile.
func (s *Redis) ExtendClient(ctx context.Context, id string, until time.Time) error {
	c, err := s.RegisteredClient(ctx, id)
	if err != nil {
		return err
	}
	c.ExpiresAt = until
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: redis: encode: %w", err)
	}
	n, err := extendScript.Run(ctx, s.rdb, []string{keyClient + id, keyClients}, data, pxat(until), id).Int64()
	switch {
	case err != nil:
		return fmt.Errorf("store: redis: extend client: %w", err)
	case n == 0:
		return ErrNotFound
	}
	return nil
}
